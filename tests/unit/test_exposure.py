"""Exposure: where the console may serve and behind which login (backend/console/exposure.py), and
app.py's gate (AppTest)."""

from __future__ import annotations

import ast
import hmac
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import streamlit as st
from pydantic import SecretStr
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from backend.console import exposure
from backend.console.exposure import Exposure, assess, decide, is_loopback, oidc_providers, password_matches
from backend.console.login_limit import LoginLimiter
from backend.settings import PROJECT_ROOT, Settings
from pages import _gate

AUTH = {
    "redirect_uri": "https://console.example/oauth2callback",
    "cookie_secret": "a-long-random-cookie-secret",
    "client_id": "console",
    "client_secret": "oidc-client-secret",
    "server_metadata_url": "https://login.example/.well-known/openid-configuration",
}


def exposed(address: str | None = "0.0.0.0", **changes: Any) -> Exposure:
    values: dict[str, Any] = {
        "address": address,
        "xsrf_protection": True,
        "auth_section": None,
        "console_password": False,
        "authlib_installed": True,
    }
    return Exposure(**{**values, **changes})


# -- the pure rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]
)
def test_loopback_addresses(address):
    assert is_loopback(address)


@pytest.mark.parametrize(
    "address", [None, "", " ", "0.0.0.0", "::", "192.0.2.2", "fd00::2", "console.example", "128.0.0.1"]
)
def test_addresses_beyond_this_machine(address):
    # Unset or empty: Streamlit listens on every interface. A host name may resolve to any of them.
    assert not is_loopback(address)


def test_loopback_serves_as_is_with_no_login_configured():
    decision = decide(exposed("127.0.0.1"))
    assert decision.mode == "open"
    assert decision.reason == "The console listens on 127.0.0.1: only this machine reaches it."


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1"])
def test_on_loopback_a_configured_login_applies_too(address):
    # The usual HTTPS setup: a TLS proxy forwarding to 127.0.0.1 serves the console to other machines.
    decision = decide(exposed(address, console_password=True))
    assert decision.mode == "password"
    assert decision.reason == (
        f"The console listens on {address} and a login is configured, which applies here too "
        "(a proxy may forward other machines to this address): enter the console password to use it."
    )
    assert decide(exposed(address, auth_section=AUTH)).mode == "oidc"
    assert decide(exposed(address, auth_section=AUTH, authlib_installed=False)).mode == "refused"
    partial = {key: value for key, value in AUTH.items() if key != "client_secret"}
    incomplete = decide(exposed(address, auth_section=partial))
    assert incomplete.mode == "refused"
    assert "[auth] has no client_secret" in incomplete.reason


@pytest.mark.parametrize("address", [None, "", "0.0.0.0", "192.0.2.2"])
def test_beyond_loopback_without_authentication_it_refuses_and_says_how_to_fix(address):
    decision = decide(exposed(address))
    assert decision.mode == "refused"
    assert "no authentication is configured" in decision.reason
    for fix in ("console_password", ".streamlit/secrets.toml", "[auth]", "st.login", 'server.address = "127.0.0.1"'):
        assert fix in decision.reason
    if not address:
        assert "all interfaces (server.address is not set)" in decision.reason


def test_beyond_loopback_a_console_password_asks_for_it():
    decision = decide(exposed(console_password=True))
    assert decision.mode == "password"
    assert decision.reason == "The console listens on 0.0.0.0 (all interfaces), so other machines can reach it " + (
        "under the names in server.allowedHosts (localhost, 127.0.0.1, ::1; add the name they use there): "
        "enter the console password to use it."
    )


def test_beyond_loopback_a_complete_auth_section_uses_st_login():
    decision = decide(exposed(auth_section=AUTH))
    assert (decision.mode, decision.providers) == ("oidc", ("default",))
    named = {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": "s", "google": dict(AUTH), "okta": dict(AUTH)}
    assert decide(exposed(auth_section=named)).providers == ("google", "okta")
    # OIDC wins over a password: both set, the stronger login is used.
    assert decide(exposed(auth_section=AUTH, console_password=True)).mode == "oidc"


def test_an_incomplete_auth_section_is_refused_with_what_is_missing_even_with_a_password():
    partial = {key: value for key, value in AUTH.items() if key not in ("cookie_secret", "client_secret")}
    decision = decide(exposed(auth_section=partial, console_password=True))
    assert decision.mode == "refused"
    assert "[auth] has no cookie_secret" in decision.reason
    assert "[auth] has no client_secret" in decision.reason


def test_oidc_problems_mirror_streamlits_own_checks():
    assert oidc_providers(AUTH) == (("default",), [])
    with_kwargs = {**AUTH, "client_kwargs": {"prompt": "login"}}
    assert oidc_providers(with_kwargs) == (("default",), [])
    _, problems = oidc_providers({**AUTH, "redirect_uri": "https://console.example/"})
    assert problems == ["[auth] redirect_uri must end with /oauth2callback"]
    _, problems = oidc_providers({"redirect_uri": AUTH["redirect_uri"], "cookie_secret": "s"})
    assert problems == [
        "[auth] names no provider (client_id, client_secret, server_metadata_url, in [auth] or [auth.NAME])"
    ]
    _, problems = oidc_providers(
        {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": "s", "my_idp": {"client_id": "c"}}
    )
    assert problems == [
        "[auth.my_idp]: Streamlit does not accept an underscore in a provider name",
        "[auth.my_idp] has no client_secret, server_metadata_url",
    ]


def test_oidc_without_authlib_is_refused_saying_what_to_install():
    decision = decide(exposed(auth_section=AUTH, authlib_installed=False))
    assert decision.mode == "refused"
    assert "Authlib" in decision.reason


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"])
def test_xsrf_protection_off_is_refused_everywhere(address):
    decision = decide(exposed(address, xsrf_protection=False, console_password=True))
    assert decision.mode == "refused"
    assert "server.enableXsrfProtection = true" in decision.reason


def test_an_auth_section_turns_xsrf_protection_on_as_streamlit_does():
    assert decide(exposed(xsrf_protection=False, auth_section=AUTH)).mode == "oidc"


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize("auth", ["x", 1, ["client_id"]])
def test_auth_that_is_not_a_table_is_refused_saying_so(address, auth):
    decision = decide(exposed(address, auth_section=auth, console_password=True))
    assert decision.mode == "refused"
    assert "auth in Streamlit's secrets is a single value, not an [auth] section" in decision.reason


def test_assess_reads_the_password_only_without_an_auth_section(monkeypatch):
    monkeypatch.setattr(exposure, "authlib_installed", lambda: True)
    reads: list[str] = []

    def read() -> SecretStr:
        reads.append("read")
        return SecretStr("assess-canary")

    for address in ("127.0.0.1", "0.0.0.0"):
        decision, password = assess(address, True, None, read)
        assert (decision.mode, password) == ("password", SecretStr("assess-canary"))
        decision, password = assess(address, True, AUTH, read)
        assert (decision.mode, password) == ("oidc", None)
    assert reads == ["read", "read"]
    assert assess("127.0.0.1", True, None, lambda: None)[0].mode == "open"
    assert assess("127.0.0.1", True, None, lambda: SecretStr(""))[0].mode == "open"


def test_password_comparison():
    assert password_matches("correct horse", SecretStr("correct horse"))
    assert not password_matches("correct hors", SecretStr("correct horse"))
    assert not password_matches("", SecretStr(""))  # an empty password is no password
    assert not password_matches("", None)
    assert password_matches("pässwörd", SecretStr("pässwörd"))
    assert not exposure.password_set(SecretStr(""))


def test_password_comparison_compares_digests_of_one_length(monkeypatch):
    # hmac.compare_digest returns early when the lengths differ: it sees SHA-256 digests, never the password.
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert not password_matches("short", SecretStr("a much longer password"))
    assert password_matches("a much longer password", SecretStr("a much longer password"))
    assert [(len(a), len(b)) for a, b in seen] == [(32, 32), (32, 32)]
    assert all(b"password" not in a + b for a, b in seen)


@pytest.mark.usefixtures("no_outside_settings")
def test_the_console_password_is_a_masked_setting_from_the_environment_or_the_secrets_file(monkeypatch, tmp_path):
    assert Settings().console_password is None
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('console_password = "from-file-canary"\n')
    monkeypatch.setenv("TWEETSTREAM_SECRETS_FILE", str(secrets))
    settings = Settings()
    assert settings.console_password == SecretStr("from-file-canary")
    assert "from-file-canary" not in repr(settings)
    monkeypatch.setenv("TWEETSTREAM_CONSOLE_PASSWORD", "from-env-canary")
    assert Settings().console_password == SecretStr("from-env-canary")


# -- `python -m backend.console.exposure check` ---------------------------------------------------------------


def check(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command as `make run` runs it: in the project's folder, where Streamlit reads .streamlit/config.toml
    (a subprocess: Streamlit's config and secrets are process-wide)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETSTREAM_", "STREAMLIT_"))}
    return subprocess.run(
        [sys.executable, "-m", "backend.console.exposure", "check", *args],
        cwd=PROJECT_ROOT,
        env={**clean, "TWEETSTREAM_SECRETS_FILE": os.devnull, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_reads_the_address_as_streamlit_run_would():
    default = check()
    assert (default.returncode, default.stdout) == (
        0,
        "The console listens on 127.0.0.1: only this machine reaches it.\n",
    )
    everywhere = check("--server.address", "0.0.0.0")
    assert everywhere.returncode == 2
    assert everywhere.stderr.startswith("error: The console listens on 0.0.0.0 (all interfaces)")
    assert "no authentication is configured" in everywhere.stderr
    assert check(STREAMLIT_SERVER_ADDRESS="192.0.2.2").returncode == 2
    with_password = check(STREAMLIT_SERVER_ADDRESS="192.0.2.2", TWEETSTREAM_CONSOLE_PASSWORD="check-canary")
    assert with_password.returncode == 0
    assert "enter the console password" in with_password.stdout
    assert "check-canary" not in with_password.stdout + with_password.stderr
    no_xsrf = check("--server.address=127.0.0.1", "--server.enableXsrfProtection", "false")
    assert no_xsrf.returncode == 2
    assert "XSRF protection is off" in no_xsrf.stderr
    # Behind a TLS proxy to 127.0.0.1: the configured password applies there too.
    proxied = check(TWEETSTREAM_CONSOLE_PASSWORD="check-canary")
    assert proxied.returncode == 0
    assert proxied.stdout.startswith("The console listens on 127.0.0.1 and a login is configured")
    assert proxied.stdout.endswith("enter the console password to use it.\n")


@pytest.mark.parametrize("allowed_hosts", [(), ("*",), (" ",)])
def test_loopback_without_a_login_is_refused_when_any_host_would_be_accepted(allowed_hosts):
    # Issue 19, item 1: a page the user visits could point its own name at 127.0.0.1 (DNS rebinding).
    decision = decide(exposed("127.0.0.1", allowed_hosts=allowed_hosts))
    assert decision.mode == "refused"
    assert "would accept any Host header" in decision.reason and "DNS rebinding" in decision.reason
    assert 'allowedHosts = ["localhost", "127.0.0.1", "::1"]' in decision.reason
    assert "add that name without its port to server.allowedHosts" in decision.reason  # how to add a proxy's name


def test_loopback_names_and_a_proxys_name_serve_as_before_and_a_login_needs_no_host_list():
    assert decide(exposed("127.0.0.1", allowed_hosts=("localhost", "127.0.0.1", "console.example"))).mode == "open"
    assert decide(exposed("127.0.0.1", allowed_hosts=(), console_password=True)).mode == "password"
    assert decide(exposed("0.0.0.0", allowed_hosts=(), console_password=True)).mode == "password"


def test_a_host_listed_with_its_port_is_refused_since_it_would_never_match():
    decision = decide(exposed("127.0.0.1", allowed_hosts=("localhost:8501", "127.0.0.1")))
    assert decision.mode == "refused"
    assert "lists localhost:8501" in decision.reason and "without its port" in decision.reason


def test_check_reads_allowed_hosts_as_streamlit_run_would_and_ignores_the_port():
    # The project's config.toml lists the loopback names; any port passed on the command line works with them.
    assert check("--server.port", "9123").returncode == 0
    anything = check("--server.allowedHosts", "*", "--server.port", "9123")
    assert anything.returncode == 2
    assert "would accept any Host header" in anything.stderr
    from_env = check(STREAMLIT_SERVER_ALLOWED_HOSTS="*")
    assert from_env.returncode == 2
    proxy = check("--server.allowedHosts", "localhost", "--server.allowedHosts", "console.example")
    assert proxy.returncode == 0


# -- app.py's gate, in-process (AppTest) --------------------------------------------------------------


@pytest.fixture
def options(monkeypatch, tmp_path, no_outside_settings) -> dict[str, Any]:
    """Streamlit's options as the gate reads them (st.get_option), with the test's overrides."""
    monkeypatch.setenv("TWEETSTREAM_STATE_DIR", str(tmp_path))
    _gate.limiter.clear()  # server-wide: every test starts with no wrong password counted
    overrides: dict[str, Any] = {}
    real = st.get_option
    monkeypatch.setattr(st, "get_option", lambda name: overrides[name] if name in overrides else real(name))
    return overrides


@pytest.fixture
def listen(monkeypatch, options) -> dict[str, Any]:
    """``options``, with every AppTest run starting at app.py.

    AppTest starts every run as a fresh server would: in Streamlit's "pages directory" mode, which
    runs the page of the previous run without app.py. A real server leaves that mode at app.py's first
    st.navigation call, and every later run starts with app.py (and its gate): as here.
    """
    original_init = PagesManager.__init__

    def init(self: PagesManager, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
    return options


def console(secrets: dict[str, Any] | None = None) -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60)
    # Never the developer's secrets files (AppTest uses this dict instead when it is not empty).
    at.secrets = secrets or {"unused": "x"}
    return at


def shows_the_console(at: AppTest) -> bool:
    return [t.value for t in at.title] == ["Tweet stream console"] and any(
        "X / Twitter → Apache Kafka" in m.value for m in at.markdown
    )


def test_gate_on_loopback_changes_nothing(listen):
    listen["server.address"] = "127.0.0.1"
    at = console()
    at.run()
    assert not at.exception
    assert shows_the_console(at)
    assert not at.text_input


def test_gate_refuses_beyond_loopback_without_authentication_showing_only_why(listen):
    listen["server.address"] = "0.0.0.0"
    at = console()
    at.run()
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith("The console listens on 0.0.0.0 (all interfaces), so other machines")
    assert "console_password" in at.error[0].value
    # Nothing else: no page, no sidebar, no navigation.
    assert len(at.main.children) == 1
    assert not at.sidebar.children
    assert not shows_the_console(at)


def test_gate_asks_for_the_console_password_refuses_a_wrong_one_and_opens_on_the_right_one(listen, monkeypatch):
    listen["server.address"] = "0.0.0.0"
    monkeypatch.setenv("TWEETSTREAM_CONSOLE_PASSWORD", "gate-canary-9f3")
    at = console()
    at.run()
    assert not at.exception
    field = at.text_input(key="console-password")
    assert field.label == "Console password"
    assert field.proto.type == field.proto.PASSWORD
    assert not at.sidebar.children
    assert not shows_the_console(at)

    field.input("gate-canary-9f").run()
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong password: the console stays closed."]
    assert not shows_the_console(at)

    at.text_input(key="console-password").input("gate-canary-9f3")
    at.button[0].click().run()
    assert not at.exception
    assert not at.error
    assert shows_the_console(at)
    assert at.sidebar.children  # the live state
    assert "gate-canary-9f3" not in str(at._tree)
    at.run()  # signed in for the rest of the session
    assert shows_the_console(at)


def test_gate_with_st_login_shows_a_login_button_until_logged_in(listen, monkeypatch):
    listen["server.address"] = "0.0.0.0"
    monkeypatch.setattr(exposure, "authlib_installed", lambda: True)
    at = console({"auth": AUTH})
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert not shows_the_console(at)

    at = console({"auth": AUTH})
    at.user = {"is_logged_in": True, "email": "someone@example.com"}
    at.run()
    assert not at.exception
    assert shows_the_console(at)
    assert "Log out" in [b.label for b in at.sidebar.button]


def test_gate_with_st_login_but_no_authlib_refuses(listen, monkeypatch):
    listen["server.address"] = "0.0.0.0"
    monkeypatch.setattr(exposure, "authlib_installed", lambda: False)
    at = console({"auth": AUTH})
    at.run()
    assert "Authlib" in at.error[0].value
    assert not shows_the_console(at)


def test_gate_on_loopback_asks_for_a_configured_password(listen, monkeypatch):
    # A TLS proxy forwarding to 127.0.0.1 would otherwise serve the console to anyone without the password.
    listen["server.address"] = "127.0.0.1"
    monkeypatch.setenv("TWEETSTREAM_CONSOLE_PASSWORD", "loopback-canary")
    at = console()
    at.run()
    assert not at.exception
    assert at.text_input(key="console-password").label == "Console password"
    assert not at.sidebar.children
    assert not shows_the_console(at)
    at.text_input(key="console-password").input("loopback-canary")
    at.button[0].click().run()
    assert shows_the_console(at)


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"])
def test_gate_refuses_auth_that_is_not_a_table_without_crashing(listen, address):
    listen["server.address"] = address
    at = console({"auth": "x"})
    at.run()
    assert not at.exception
    assert len(at.error) == 1
    assert "not an [auth] section" in at.error[0].value
    assert not shows_the_console(at)


def wrong_password(at: AppTest) -> None:
    at.text_input(key="console-password").input("not-the-password")
    at.button[0].click().run()


def test_gate_answers_a_wrong_password_after_a_second_and_after_5_refuses_any_in_every_session(listen, monkeypatch):
    # Issue 19, item 3: the count was per session, so a new session started afresh.
    listen["server.address"] = "0.0.0.0"
    monkeypatch.setenv("TWEETSTREAM_CONSOLE_PASSWORD", "throttle-canary")
    monkeypatch.setattr(_gate.limiter(), "lockout_s", 2.0)  # 30 s in use; short here to see it end
    at = console()
    at.run()
    began = time.monotonic()
    wrong_password(at)
    assert time.monotonic() - began >= _gate.WRONG_PASSWORD_DELAY_S == 1.0
    assert [e.value for e in at.error] == ["Wrong password: the console stays closed."]

    monkeypatch.setattr(_gate, "WRONG_PASSWORD_DELAY_S", 0.0)
    for _ in range(3):
        wrong_password(at)
        assert [e.value for e in at.error] == ["Wrong password: the console stays closed."]
    wrong_password(at)  # the fifth
    assert [e.value for e in at.error] == [
        "Wrong password, and too many of them: the console refuses any password for 2 s."
    ]

    at.text_input(key="console-password").input("throttle-canary")
    at.button[0].click().run()  # refused too, without being compared
    assert [e.value for e in at.error] == ["Too many wrong passwords: the console refuses any password for 2 s."]
    assert not shows_the_console(at)

    other = console()  # another tab: a new session, same server
    other.run()
    assert [e.value for e in other.error] == ["Too many wrong passwords: the console refuses any password for 2 s."]
    other.text_input(key="console-password").input("throttle-canary")
    other.button[0].click().run()
    assert not shows_the_console(other)

    time.sleep(2.1)  # the lockout is over
    other.text_input(key="console-password").input("throttle-canary")
    other.button[0].click().run()
    assert not other.error
    assert shows_the_console(other)


def test_the_limit_counts_per_client_address_and_over_all_clients():
    now = [0.0]
    limiter = LoginLimiter(per_client=5, overall=20, lockout_s=30.0, clock=lambda: now[0])
    assert [limiter.attempt("10.0.0.1") for _ in range(5)] == [0.0] * 5
    assert limiter.attempt("10.0.0.1") == 30.0  # refused, not compared
    assert limiter.locked_s("10.0.0.2") == 0.0  # another address is not locked by it
    for address in range(2, 17):  # 15 more wrong ones from other addresses: 20 in all
        assert limiter.attempt(f"10.0.0.{address}") == 0.0
    assert limiter.locked_s("10.0.0.99") == 30.0  # now everyone waits
    now[0] = 31.0
    assert limiter.attempt("10.0.0.99") == 0.0
    limiter.succeeded("10.0.0.99")
    assert limiter.locked_s("10.0.0.99") == 0.0


def test_the_limit_holds_for_parallel_sessions():
    # 20 sessions from one address guessing at once: only 5 guesses are compared, the rest refused.
    limiter = LoginLimiter()
    barrier = threading.Barrier(20)
    compared: list[int] = []

    def guess(_session: int) -> None:
        barrier.wait()
        for _ in range(4):
            if limiter.attempt("127.0.0.1") == 0.0:
                compared.append(1)

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(guess, range(20)))
    assert len(compared) == 5


def test_a_fragment_checks_admission_before_it_draws(listen, monkeypatch):
    # Issue 19, item 4: a fragment's rerun skips app.py's gate; after Log out it must draw nothing.
    listen["server.address"] = "0.0.0.0"
    monkeypatch.setenv("TWEETSTREAM_CONSOLE_PASSWORD", "fragment-canary")

    def script() -> None:
        import streamlit as st

        from pages import _gate

        @st.fragment
        @_gate.admitted_only
        def live() -> None:
            st.write("broker 127.0.0.1:9092, producer running")

        live()

    at = AppTest.from_function(script, default_timeout=30)
    at.secrets = {"unused": "x"}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.markdown  # not signed in
    at.session_state[_gate.SIGNED_IN] = True
    at.run()
    assert [m.value for m in at.markdown] == ["broker 127.0.0.1:9092, producer running"]
    _gate.log_out()  # what the sidebar's Log out does
    at.session_state[_gate.SIGNED_IN] = False
    at.run()
    assert not at.markdown


def test_every_fragment_of_the_pages_checks_admission_first():
    unguarded = []
    for path in sorted((PROJECT_ROOT / "pages").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if any(d.startswith("st.fragment") for d in decorators) and not any(
                d.endswith("admitted_only") for d in decorators
            ):
                unguarded.append(f"{path.name}:{node.name}")
    assert unguarded == []


def test_st_login_users_beyond_the_allow_list_are_refused(listen, monkeypatch):
    # Issue 19, item 11: with OIDC, anyone the identity provider accepted got in.
    listen["server.address"] = "0.0.0.0"
    monkeypatch.setattr(exposure, "authlib_installed", lambda: True)
    monkeypatch.setenv("TWEETSTREAM_CONSOLE_ALLOWED_EMAILS", '["ann@example.com", "@staff.example"]')
    for email, verified, shown in (
        ("ann@example.com", True, True),
        ("Bob@Staff.Example", None, True),
        ("eve@elsewhere.example", True, False),
        ("eve@staff.example", False, False),  # the provider has not verified it
    ):
        at = console({"auth": AUTH})
        at.user = {"is_logged_in": True, "email": email, "email_verified": verified}
        at.run()
        assert not at.exception
        assert shows_the_console(at) is shown, email
        if not shown:
            assert at.error[0].value.startswith(f"{email} may not use this console")
            assert [b.label for b in at.button] == ["Log out"]


@pytest.mark.parametrize(
    ("email", "verified", "allowed", "expected"),
    [
        ("ann@example.com", True, (), True),
        ("ann@example.com", True, ("ANN@example.com",), True),
        ("ann@example.com", True, ("example.com",), True),
        ("ann@example.com", True, ("@example.com",), True),
        ("ann@sub.example.com", True, ("@example.com",), False),
        ("ann@example.com.evil", True, ("@example.com",), False),
        ("ann@example.com", False, ("@example.com",), False),
        (None, True, ("@example.com",), False),
        ("a@b@example.com", True, ("@example.com",), False),
    ],
)
def test_email_allow_list(email, verified, allowed, expected):
    assert exposure.email_allowed(email, verified, allowed) is expected


def test_log_out_in_password_mode_asks_for_the_password_again(listen, monkeypatch):
    listen["server.address"] = "0.0.0.0"
    monkeypatch.setenv("TWEETSTREAM_CONSOLE_PASSWORD", "logout-canary")
    at = console()
    at.run()
    at.text_input(key="console-password").input("logout-canary")
    at.button[0].click().run()
    assert shows_the_console(at)
    at.sidebar.button(key="console-logout").click().run()
    assert not at.exception
    assert not shows_the_console(at)
    assert at.text_input(key="console-password").label == "Console password"


# -- the gate at the top of every page: a page run without app.py (a fresh server's first request) ------


def only_the_refusal(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value.split(",")[0] for e in at.error] == ["The console listens on 0.0.0.0 (all interfaces)"]
    assert "refuses to serve" in at.error[0].value
    assert len(at.main.children) == 1  # nothing but the refusal
    assert not at.sidebar.children
    assert not (at.title or at.header or at.subheader or at.markdown or at.caption)
    for kind in ("button", "text_input", "number_input", "selectbox", "radio", "toggle", "checkbox", "text_area"):
        assert not getattr(at, kind), f"{kind}: {getattr(at, kind)}"


@pytest.mark.parametrize("page", ["pages/setup.py", "pages/topics.py"])
def test_a_page_run_on_its_own_beyond_loopback_without_authentication_shows_only_the_refusal(options, page):
    # No `listen` fixture: the page itself is Streamlit's main script, as in pages-directory mode.
    options["server.address"] = "0.0.0.0"
    at = AppTest.from_file(str(PROJECT_ROOT / page), default_timeout=60)
    at.secrets = {"unused": "x"}
    at.run()
    only_the_refusal(at)

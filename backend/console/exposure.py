"""Whether the console may serve, from where it listens and what authentication is configured.

On loopback it may serve without a login, anywhere else only behind one (why: docs/design.md, "Exposure and login").
``decide`` is the pure rule; ``assess`` feeds it for pages/_gate.py and for ``python -m backend.console.exposure
check``, which ``make run`` calls: exit 0 the console may serve, 2 it would refuse (the reason on stderr).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import ipaddress
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr

# What Streamlit's st.login requires (streamlit.auth_util.validate_auth_credentials): two shared keys
# in [auth], and per provider (the keys of [auth] itself, or a table [auth.NAME]) three more.
OIDC_SHARED_KEYS = ("redirect_uri", "cookie_secret")
OIDC_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
DEFAULT_PROVIDER = "default"  # the provider whose keys sit directly in [auth]; st.login() without a name
# Tables of [auth] that are settings of the default provider, not providers of their own.
_NOT_PROVIDERS = frozenset({"client_kwargs"})

HOW_TO_FIX = (
    "To serve it beyond this machine, configure authentication: set console_password in "
    ".streamlit/secrets.toml (or the file TWEETSTREAM_SECRETS_FILE names, or the TWEETSTREAM_CONSOLE_PASSWORD "
    "variable), or add an [auth] section for st.login (OIDC: redirect_uri, cookie_secret, client_id, "
    "client_secret, server_metadata_url) to .streamlit/secrets.toml. Or listen on this machine only: "
    'server.address = "127.0.0.1" in .streamlit/config.toml.'
)

# What server.allowedHosts defaults to in .streamlit/config.toml: the loopback names. Streamlit compares the
# Host header's name only (its port is ignored), so any --server.port works with them.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
HOW_TO_ADD_A_HOST = (
    "To reach the console under another name (a TLS proxy's, or this machine's address on the network), add that "
    'name without its port to server.allowedHosts in .streamlit/config.toml (e.g. allowedHosts = ["localhost", '
    '"127.0.0.1", "::1", "console.example.com"]) or pass --server.allowedHosts NAME to streamlit run.'
)

Mode = Literal["open", "password", "oidc", "refused"]


@dataclass(frozen=True)
class Exposure:
    """What decides: Streamlit's options and secrets, and whether a console password is set."""

    address: str | None  # server.address; empty or unset: Streamlit listens on all interfaces
    xsrf_protection: bool  # server.enableXsrfProtection
    auth_section: Any  # ``auth`` of Streamlit's secrets: None when absent; a table, or refused
    console_password: bool  # a non-empty console_password is configured
    authlib_installed: bool  # st.login needs Authlib >= 1.3.2
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # server.allowedHosts; empty: Streamlit accepts any Host


@dataclass(frozen=True)
class Decision:
    mode: Mode  # open: serve as is; password / oidc: serve after that login; refused: serve nothing
    reason: str  # one paragraph: where it listens and what follows (for "refused": why, and how to fix it)
    providers: tuple[str, ...] = ()  # for "oidc": the st.login providers to offer


def is_loopback(address: str | None) -> bool:
    """Whether ``server.address`` keeps the server on this machine: 127.0.0.0/8, ::1 or localhost.

    Unset or empty means all interfaces. Any other host name counts as not loopback: it may
    resolve to any interface.
    """
    host = (address or "").strip().strip("[]")
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def describe(address: str | None) -> str:
    """Where the server listens, in words."""
    host = (address or "").strip()
    if not host:
        return "all interfaces (server.address is not set)"
    if host in ("0.0.0.0", "::", "[::]"):
        return f"{host} (all interfaces)"
    return host


def accepts_any_host(allowed_hosts: Sequence[str]) -> bool:
    """Whether Streamlit's websocket takes any Host header: an empty server.allowedHosts, or one with "*"."""
    patterns = [host.strip() for host in allowed_hosts if host.strip()]
    return not patterns or "*" in patterns


def hosts_with_a_port(allowed_hosts: Sequence[str]) -> list[str]:
    """Entries such as "localhost:8501": Streamlit compares names without their port, so they never match."""
    return [host for host in allowed_hosts if ":" in host.strip().strip("[]") and host.count(":") == 1]


def oidc_providers(auth: Mapping[str, Any]) -> tuple[tuple[str, ...], list[str]]:
    """The complete st.login providers of an [auth] section, and what is wrong with it (empty: nothing)."""
    problems = [f"[auth] has no {key}" for key in OIDC_SHARED_KEYS if not auth.get(key)]
    redirect_uri = auth.get("redirect_uri")
    if redirect_uri and not str(redirect_uri).endswith("/oauth2callback"):
        problems.append("[auth] redirect_uri must end with /oauth2callback")
    sections: dict[str, Mapping[str, Any]] = {
        name: value for name, value in auth.items() if isinstance(value, Mapping) and name not in _NOT_PROVIDERS
    }
    if any(key in auth for key in OIDC_PROVIDER_KEYS):
        sections = {DEFAULT_PROVIDER: auth, **sections}
    if not sections:
        problems.append(f"[auth] names no provider ({', '.join(OIDC_PROVIDER_KEYS)}, in [auth] or [auth.NAME])")
    for name, section in sections.items():
        where = "[auth]" if section is auth else f"[auth.{name}]"
        if "_" in name:  # Streamlit refuses provider names with an underscore
            problems.append(f"{where}: Streamlit does not accept an underscore in a provider name")
        missing = [key for key in OIDC_PROVIDER_KEYS if not section.get(key)]
        if missing:
            problems.append(f"{where} has no {', '.join(missing)}")
    return tuple(sections), problems


def decide(exposure: Exposure) -> Decision:
    """Whether and how the console may serve."""
    # Streamlit turns XSRF protection on by itself when [auth] exists (server_util.is_xsrf_enabled).
    xsrf = exposure.xsrf_protection or exposure.auth_section is not None
    # Off is refused on loopback too: the hostile page that forges a request (a file upload into a
    # session) runs in the user's own browser, on this machine, where loopback does not keep it out.
    if not xsrf:
        return Decision(
            "refused",
            "The console refuses to serve: XSRF protection is off (server.enableXsrfProtection = false). "
            "Set server.enableXsrfProtection = true in .streamlit/config.toml (or drop the option that turns it off).",
        )
    where = describe(exposure.address)
    auth = exposure.auth_section
    with_port = hosts_with_a_port(exposure.allowed_hosts)
    if with_port:
        return Decision(
            "refused",
            f"The console refuses to serve: server.allowedHosts lists {', '.join(with_port)}, but Streamlit compares "
            "the Host header's name without its port, so no browser would get in. Write the names without a port "
            "(the port, from config.toml or --server.port, needs no entry).",
        )
    if is_loopback(exposure.address):
        if auth is None and not exposure.console_password:
            # Without a login, the Host check is what keeps a web page the user visits from pointing its own
            # name at 127.0.0.1 (DNS rebinding) and driving the console through the user's browser.
            if accepts_any_host(exposure.allowed_hosts):
                return Decision(
                    "refused",
                    f"The console listens on {where} without a login, but it would accept any Host header "
                    '(server.allowedHosts is empty or "*"): a web page you visit could point its own name at '
                    "this address (DNS rebinding) and drive the console. Set allowedHosts = "
                    '["localhost", "127.0.0.1", "::1"] under [server] in .streamlit/config.toml. ' + HOW_TO_ADD_A_HOST,
                )
            return Decision("open", f"The console listens on {where}: only this machine reaches it.")
        # A configured login applies here too: a TLS proxy forwarding to 127.0.0.1 (the usual HTTPS
        # setup) serves the console to every machine that reaches the proxy.
        reachable = (
            f"The console listens on {where} and a login is configured, which applies here too "
            "(a proxy may forward other machines to this address)"
        )
    else:
        reachable = f"The console listens on {where}, so other machines can reach it"
        if not accepts_any_host(exposure.allowed_hosts):
            # The loopback names alone keep other machines out: say where to add theirs.
            names = ", ".join(exposure.allowed_hosts)
            reachable += f" under the names in server.allowedHosts ({names}; add the name they use there)"
    if auth is not None:
        if not isinstance(auth, Mapping):  # `auth = "..."`: Streamlit counts it as [auth], st.login fails
            return Decision(
                "refused",
                f"{reachable}, and auth in Streamlit's secrets is a single value, not an [auth] section: "
                "write it as an [auth] section for st.login in .streamlit/secrets.toml, or remove it.",
            )
        # A half-written [auth] is refused, not passed over for the password: it says what is missing.
        providers, problems = oidc_providers(auth)
        if problems:
            return Decision(
                "refused",
                f"{reachable}, and the [auth] section for st.login is incomplete: {'; '.join(problems)}. "
                "Complete it in .streamlit/secrets.toml (see Streamlit's st.login documentation).",
            )
        if not exposure.authlib_installed:
            return Decision(
                "refused",
                f"{reachable}; an [auth] section is configured, but st.login needs Authlib 1.3.2 or newer: "
                "install it (pip install 'Authlib>=1.3.2') into the console's environment.",
            )
        return Decision("oidc", f"{reachable}: log in to use it.", providers)
    if exposure.console_password:
        return Decision("password", f"{reachable}: enter the console password to use it.")
    return Decision("refused", f"{reachable}, and no authentication is configured: it refuses to serve. {HOW_TO_FIX}")


def email_allowed(email: str | None, verified: bool | None, allowed: Sequence[str]) -> bool:
    """Whether an st.login user may use the console: ``allowed`` lists addresses ("ann@example.com") and
    domains ("@example.com" or "example.com"); empty lets in anyone the identity provider accepts. An address
    the provider says it has not verified (``email_verified`` false) matches nothing: anyone can type one."""
    if not allowed:
        return True
    if not email or verified is False or email.count("@") != 1:
        return False
    address = email.strip().lower()
    domain = address.split("@")[1]
    for entry in (item.strip().lower() for item in allowed):
        if entry == address or (entry.lstrip("@") == domain and "@" not in entry.lstrip("@")):
            return True
    return False


def password_set(password: SecretStr | None) -> bool:
    """An empty password is no password: it would let anyone in."""
    return password is not None and password.get_secret_value() != ""


def password_matches(given: str, expected: SecretStr | None) -> bool:
    """Compares SHA-256 digests in constant time (hmac.compare_digest): the time taken tells neither how
    much matched nor the password's length."""
    if not password_set(expected):
        return False
    assert expected is not None
    return hmac.compare_digest(_digest(given), _digest(expected.get_secret_value()))


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def assess(
    address: str | None,
    xsrf_protection: bool,
    auth: Any,
    read_password: Callable[[], SecretStr | None],
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
) -> tuple[Decision, SecretStr | None]:
    """The decision for these options (``allowed_hosts``: server.allowedHosts) and ``auth`` of the secrets
    (None: absent), and the console password when it decides anything. ``read_password`` is called only then:
    without an [auth] section (which wins over a password), wherever the console listens."""
    password = read_password() if auth is None else None
    decision = decide(
        Exposure(
            address=address,
            xsrf_protection=xsrf_protection,
            auth_section=auth,
            console_password=password_set(password),
            authlib_installed=auth is not None and authlib_installed(),
            allowed_hosts=tuple(allowed_hosts),
        )
    )
    return decision, password


def authlib_installed() -> bool:
    from streamlit.auth_util import is_authlib_installed

    return is_authlib_installed()


# -- `python -m backend.console.exposure check`: what `streamlit run app.py` would do, before it starts ----------


_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})  # what click (streamlit run's parser) accepts
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in _TRUE | _FALSE:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return lowered in _TRUE


def streamlit_view(flags: Mapping[str, Any]) -> tuple[str | None, bool, Any, tuple[str, ...]]:
    """server.address, server.enableXsrfProtection, ``auth`` of the secrets and server.allowedHosts as
    ``streamlit run`` with these flags would see them from this folder: Streamlit's own parser reads
    ~/.streamlit/config.toml and ./.streamlit/config.toml, then the secrets files that config names. Like
    ``streamlit run`` (whose command-line parser reads them), STREAMLIT_SERVER_ADDRESS,
    STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION and STREAMLIT_SERVER_ALLOWED_HOSTS (names separated by
    spaces, as click splits a list) count where no flag is given."""
    from streamlit import config
    from streamlit.runtime.secrets import secrets_singleton

    options = dict(flags)
    for name, variable, parse in (
        ("server.address", "STREAMLIT_SERVER_ADDRESS", str),
        ("server.enableXsrfProtection", "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION", _boolean),
        ("server.allowedHosts", "STREAMLIT_SERVER_ALLOWED_HOSTS", str.split),
    ):
        if name not in options and variable in os.environ:
            options[name] = parse(os.environ[variable])
    config.get_config_options(force_reparse=True, options_from_flags=options)
    address = config.get_option("server.address")
    xsrf = bool(config.get_option("server.enableXsrfProtection"))
    allowed_hosts = tuple(config.get_option("server.allowedHosts") or ())
    auth = secrets_singleton.get("auth") if secrets_singleton.load_if_toml_exists() else None
    return address, xsrf, auth, allowed_hosts


def check(flags: Mapping[str, Any]) -> tuple[int, str]:
    """The exit code (0 or 2) and the line to print."""
    from backend.settings import load_settings, secrets_file

    address, xsrf, auth, allowed_hosts = streamlit_view(flags)
    try:
        decision, _password = assess(address, xsrf, auth, lambda: load_settings().console_password, allowed_hosts)
    except ValueError as error:  # the settings hide their inputs in errors: no secret is printed
        return 2, f"The console's settings cannot be read: {error}\nFix them in {secrets_file()} or TWEETSTREAM_*."
    return (2 if decision.mode == "refused" else 0), decision.reason


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.console.exposure", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="exit 2 when the console would refuse to serve (see --help)")
    checking.add_argument("--server.address", dest="address", help="as for streamlit run (default: its config)")
    checking.add_argument(
        "--server.enableXsrfProtection", dest="xsrf", type=_boolean, help="as for streamlit run: true or false"
    )
    checking.add_argument(
        "--server.allowedHosts", dest="allowed_hosts", action="append", help="as for streamlit run: once per name"
    )
    # Accepted so that a streamlit run command line can be checked as it is: ports do not change the decision.
    checking.add_argument("--server.port", dest="port", type=int, help="as for streamlit run (does not matter)")
    args = parser.parse_args(argv)
    flags: dict[str, Any] = {}
    if args.allowed_hosts is not None:
        flags["server.allowedHosts"] = args.allowed_hosts
    if args.address is not None:
        flags["server.address"] = args.address
    if args.xsrf is not None:
        flags["server.enableXsrfProtection"] = args.xsrf
    code, line = check(flags)
    print(f"{'error: ' if code else ''}{line}", file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""The exposure gate (backend/console/exposure.py decides): app.py and every page call require() first, since
Streamlit may run a page without app.py (its pages-directory mode, before app.py's first run)."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec

import streamlit as st
from pydantic import SecretStr

from backend.console import exposure
from backend.console.login_limit import LoginLimiter
from backend.settings import Settings, load_settings, secrets_file

SIGNED_IN = "console-signed-in"  # session state: this session gave the console password
WRONG_PASSWORD_DELAY_S = 1.0  # the server waits this long before answering a wrong password
P = ParamSpec("P")
# Absolute: a page run as Streamlit's main script (pages-directory mode, AppTest) resolves paths from pages/.
APP = Path(__file__).resolve().parent.parent / "app.py"


def settings() -> Settings:
    """The console's settings, read afresh at every rerun (the profile may have been saved since).

    Settings that cannot be read stop the page with the reason: nothing else can work without them.
    """
    try:
        return load_settings()
    except ValueError as error:  # pydantic's ValidationError, or a secrets file that is not TOML
        st.error(
            f"The console's settings cannot be read: {error}\n\nFix the TWEETSTREAM_* environment "
            f"variables or {secrets_file()}, then reload this page."
        )
        st.stop()


@st.cache_resource(show_spinner=False)
def limiter() -> LoginLimiter:
    """One count of password attempts for the whole server: a new tab or session does not reset it."""
    return LoginLimiter()


def client_address() -> str:
    """The address this session's websocket came from (behind a proxy: the proxy's, shared by its clients)."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "unknown"


def exposure_decision() -> tuple[exposure.Decision, SecretStr | None]:
    """What backend/console/exposure.py decides for this server, and the console password when it is needed."""
    auth = st.secrets.get("auth") if st.secrets.load_if_toml_exists() else None
    return exposure.assess(
        st.get_option("server.address"),
        bool(st.get_option("server.enableXsrfProtection")),
        auth,  # not a table (`auth = "x"`): decide refuses it
        lambda: settings().console_password,
        tuple(st.get_option("server.allowedHosts") or ()),
    )


def admitted(decision: exposure.Decision) -> bool:
    """Whether this session may see the console."""
    if decision.mode == "oidc":
        return bool(st.user.is_logged_in) and oidc_user_allowed()
    if decision.mode == "password":
        return bool(st.session_state.get(SIGNED_IN))  # per Streamlit session: a new tab or a reload asks again
    return decision.mode == "open"


def oidc_user_allowed() -> bool:
    """Whether the signed-in user's e-mail is on console_allowed_emails (empty: anyone the provider accepts)."""
    return exposure.email_allowed(
        st.user.get("email"), st.user.get("email_verified"), settings().console_allowed_emails
    )


def admitted_only(body: Callable[P, None]) -> Callable[P, None]:
    """For the body of every st.fragment: a fragment's rerun runs only its function, not app.py and this gate,
    so after Log out a hand-made message could still rerun it; it checks admission first and draws nothing."""

    @functools.wraps(body)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        decision, _password = exposure_decision()
        if admitted(decision):
            body(*args, **kwargs)

    return guarded


def gate(decision: exposure.Decision, password: SecretStr | None) -> None:
    """Why the console is refused, or its login."""
    if decision.mode == "refused":
        st.error(decision.reason, icon=":material/block:")
        return
    st.title("Tweet stream console")
    st.info(decision.reason)
    if decision.mode == "oidc":
        if st.user.is_logged_in:  # but not on the allow-list
            st.error(
                f"{st.user.get('email') or 'This account'} may not use this console (console_allowed_emails "
                "does not list it, or the provider has not verified the address). Log out to sign in as someone else."
            )
            st.button("Log out", on_click=st.logout, key="console-logout-refused")
            return
        for provider in decision.providers:
            default = provider == exposure.DEFAULT_PROVIDER
            st.button(
                "Log in" if default else f"Log in with {provider}",
                on_click=st.login,
                args=(None if default else provider,),
                key=f"console-login-{provider}",
            )
        return
    # clear_on_submit: the typed password does not stay in the widget's state or the page.
    with st.form("console-login", clear_on_submit=True):
        given = st.text_input("Console password", type="password", key="console-password")
        submitted = st.form_submit_button("Open the console")
    client = client_address()
    if not submitted:
        locked_s = limiter().locked_s(client)
        if locked_s > 0:
            st.error(_locked(locked_s))
        return
    # Counted before it is compared: parallel sessions cannot all slip in before the first wrong one counts.
    locked_s = limiter().attempt(client)
    if locked_s > 0:  # nothing typed now is compared
        st.error(_locked(locked_s))
        return
    if exposure.password_matches(given, password):
        limiter().succeeded(client)
        st.session_state[SIGNED_IN] = True
        st.rerun()
    time.sleep(WRONG_PASSWORD_DELAY_S)  # server side: every wrong guess waits for its answer
    locked_s = limiter().locked_s(client)
    if locked_s > 0:  # this one was compared, and started the lockout (or came in just before it)
        st.error(f"Wrong password, and too many of them: the console refuses any password for {math.ceil(locked_s)} s.")
    else:
        st.error("Wrong password: the console stays closed.")


def _locked(seconds: float) -> str:
    return f"Too many wrong passwords: the console refuses any password for {math.ceil(seconds)} s."


def log_out() -> None:
    """The sidebar's Log out in password mode: this session asks for the password again."""
    st.session_state.pop(SIGNED_IN, None)


def require() -> exposure.Decision:
    """Stop this run unless the session may see the console (app.py and every page call it first)."""
    decision, password = exposure_decision()
    if admitted(decision):
        return decision
    # st.navigation even here, and before the gate draws anything. Until it has been called once in
    # the server's process, Streamlit is in its "pages directory" mode, where a URL such as /setup runs
    # pages/setup.py without app.py, hence without the gate. Its one page is app.py itself; drawn after
    # it, the form keeps its first submit (drawn before, the browser loses it). A URL naming a page
    # gets Streamlit's "Page not found" notice beside the gate.
    st.navigation([st.Page(APP, title="Tweet stream console", default=True)], position="hidden")
    gate(decision, password)
    st.stop()

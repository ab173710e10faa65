"""The exposure gate (backend/console/exposure.py decides): app.py and every page call require() first, since
Streamlit may run a page without app.py (its pages-directory mode, before app.py's first run)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import streamlit as st
from pydantic import SecretStr

from backend.console import exposure
from pages import _live

SIGNED_IN = "console-signed-in"  # session state: this session gave the console password
FAILURES = "console-password-failures"  # session state: wrong passwords since the last lockout
LOCKED_UNTIL = "console-locked-until"  # session state: time.monotonic() until which the form refuses
WRONG_PASSWORD_DELAY_S = 1.0  # the server waits this long before answering a wrong password
MAX_FAILURES = 5  # wrong passwords in a session before the form refuses any for LOCKOUT_S
LOCKOUT_S = 30.0
# Absolute: a page run as Streamlit's main script (pages-directory mode, AppTest) resolves paths from pages/.
APP = Path(__file__).resolve().parent.parent / "app.py"


def exposure_decision() -> tuple[exposure.Decision, SecretStr | None]:
    """What backend/console/exposure.py decides for this server, and the console password when it is needed."""
    auth = st.secrets.get("auth") if st.secrets.load_if_toml_exists() else None
    return exposure.assess(
        st.get_option("server.address"),
        bool(st.get_option("server.enableXsrfProtection")),
        auth,  # not a table (`auth = "x"`): decide refuses it
        lambda: _live.settings().console_password,
        tuple(st.get_option("server.allowedHosts") or ()),
    )


def admitted(decision: exposure.Decision) -> bool:
    """Whether this session may see the console."""
    if decision.mode == "oidc":
        return bool(st.user.is_logged_in)
    if decision.mode == "password":
        return bool(st.session_state.get(SIGNED_IN))  # per Streamlit session: a new tab or a reload asks again
    return decision.mode == "open"


def gate(decision: exposure.Decision, password: SecretStr | None) -> None:
    """Why the console is refused, or its login."""
    if decision.mode == "refused":
        st.error(decision.reason, icon=":material/block:")
        return
    st.title("Tweet stream console")
    st.info(decision.reason)
    if decision.mode == "oidc":
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
    locked_s = st.session_state.get(LOCKED_UNTIL, 0.0) - time.monotonic()
    if locked_s > 0:  # nothing typed now is compared
        st.error(f"{MAX_FAILURES} wrong passwords: the console refuses any password for {math.ceil(locked_s)} s more.")
    elif submitted:
        if exposure.password_matches(given, password):
            st.session_state[FAILURES] = 0
            st.session_state[SIGNED_IN] = True
            st.rerun()
        # Counted before the wait: a submit during it interrupts this run at its next st call.
        failures = st.session_state.get(FAILURES, 0) + 1
        locked = failures >= MAX_FAILURES
        st.session_state[FAILURES] = 0 if locked else failures
        if locked:
            st.session_state[LOCKED_UNTIL] = time.monotonic() + LOCKOUT_S
        time.sleep(WRONG_PASSWORD_DELAY_S)  # server side: every wrong guess waits for its answer
        if locked:
            st.error(f"{MAX_FAILURES} wrong passwords: the console refuses any password for {LOCKOUT_S:g} s.")
        else:
            st.error("Wrong password: the console stays closed.")


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

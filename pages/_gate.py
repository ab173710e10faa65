"""The exposure gate (backend/exposure.py decides): app.py and every page call require() first, since
Streamlit may run a page without app.py (its pages-directory mode, before app.py's first run)."""

from __future__ import annotations

import streamlit as st
from pydantic import SecretStr

from backend import exposure
from pages import _live

SIGNED_IN = "console-signed-in"  # session state: this session gave the console password


def exposure_decision() -> tuple[exposure.Decision, SecretStr | None]:
    """What backend/exposure.py decides for this server, and the console password when it is needed."""
    auth = st.secrets.get("auth") if st.secrets.load_if_toml_exists() else None
    return exposure.assess(
        st.get_option("server.address"),
        bool(st.get_option("server.enableXsrfProtection")),
        auth,  # not a table (`auth = "x"`): decide refuses it
        lambda: _live.settings().console_password,
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
    if submitted:
        if exposure.password_matches(given, password):
            st.session_state[SIGNED_IN] = True
            st.rerun()
        st.error("Wrong password: the console stays closed.")


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
    st.navigation([st.Page("app.py", title="Tweet stream console", default=True)], position="hidden")
    gate(decision, password)
    st.stop()

"""The tweet stream console: Streamlit entry point. The exposure gate, navigation and the sidebar's live state;
pages are in pages/."""

import streamlit as st

from pages import _gate, _live

st.set_page_config(page_title="Tweet stream console", layout="wide")

decision = _gate.require()
navigation = st.navigation(
    [
        st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page("pages/setup.py", title="Setup", icon=":material/build:"),
        st.Page("pages/producer.py", title="Producer", icon=":material/upload:"),
        st.Page("pages/consumer.py", title="Consumer", icon=":material/bolt:"),
        st.Page("pages/topics.py", title="Topics", icon=":material/topic:"),
    ],
    # At the top: the sidebar is for the live state. config.toml hides Streamlit's own listing
    # of pages/, which it would otherwise show in the sidebar until app.py's first run.
    position="top",
)
if decision.mode in ("oidc", "password"):
    log_out = st.logout if decision.mode == "oidc" else _gate.log_out
    st.sidebar.button("Log out", on_click=log_out, key="console-logout")
_live.sidebar()
navigation.run()

"""The tweet stream console: Streamlit entry point. Navigation only; each page lives in pages/."""

import streamlit as st

st.set_page_config(page_title="Tweet stream console", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/overview.py", title="Overview", default=True),
    ]
)
navigation.run()

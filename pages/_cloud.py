"""The Producer and Consumer pages' "On Azure Databricks" panel: the cloud job's newest run, Start, Stop.

Shown only when the Azure wizard has made the jobs (the target hands their controls). Not a page itself.
"""

from __future__ import annotations

import streamlit as st

from backend.console.job_controls import DatabricksJobControls
from backend.console.supervisor import JobName
from pages import _gate, _live

REFRESH_S = 10.0  # each refresh asks the workspace once


def panel(controls: DatabricksJobControls | None, name: JobName) -> None:
    if controls is None:  # the wizard has not made the jobs
        return
    st.subheader("On Azure Databricks")
    st.caption(controls.describe(name))
    buttons = controls.buttons(name)
    left, right = st.columns(2)
    if left.button(buttons.start, key=buttons.start_key):
        with st.spinner(buttons.starting):
            outcome = controls.start(name)
        _live.say(outcome.kind, outcome.headline)
    if right.button(buttons.stop, key=buttons.stop_key):
        with st.spinner(buttons.stopping):
            outcome = controls.stop(name)
        _live.say(outcome.kind, outcome.headline)

    @st.fragment(run_every=REFRESH_S)
    @_gate.admitted_only
    def status() -> None:
        view = controls.view(name)
        if view.error is not None:
            st.error(view.error)
            return
        st.markdown(f"**Run state: {view.state}** (asked every {REFRESH_S:.0f} s)")
        if view.status is None:
            st.write("The job has not run yet.")
            return
        st.dataframe(view.rows(), hide_index=True)
        if view.status.run_page_url:
            st.markdown(f"[The run in Databricks]({view.status.run_page_url})")
        if view.status.error:
            st.error(f"The run failed: {view.status.error}")
        if view.status.logs_tail:
            st.code(view.status.logs_tail, language=None)

    status()

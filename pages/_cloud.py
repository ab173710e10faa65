"""The Producer and Consumer pages' "On Azure Databricks" panel: the cloud job's newest run, Start, Stop.

Shown only when the Azure wizard has made the jobs (its deployment record). Not a page itself.
"""

from __future__ import annotations

import streamlit as st

from backend.azure import cloud_jobs
from backend.settings import Settings

REFRESH_S = 10.0  # each refresh asks the workspace once


def topic(settings: Settings) -> str | None:
    """The topic the wizard's jobs use, or None without a deployment."""
    deployment = cloud_jobs.cloud_deployment(settings)
    return deployment.topic if deployment is not None else None


def panel(settings: Settings, name: cloud_jobs.CloudJob) -> None:
    deployment = cloud_jobs.cloud_deployment(settings)
    if deployment is None:
        return
    st.subheader("On Azure Databricks")
    st.caption(
        f"The {name} job the Azure wizard made (job {deployment.jobs[name]}) in workspace "
        f"`{deployment.workspace_url}`, on cluster `{deployment.cluster_id}`, topic `{deployment.topic}` "
        f"on the HDInsight brokers `{deployment.bootstrap_servers}`."
    )
    left, right = st.columns(2)
    if left.button("Start on Databricks", key=f"cloud-{name}-start"):
        with st.spinner("Asking Databricks to run the job…"):
            started, message = cloud_jobs.start(settings, deployment, name)
        (st.success if started else st.warning)(message)
    if right.button("Stop on Databricks", key=f"cloud-{name}-stop"):
        with st.spinner("Cancelling the run and waiting until Databricks says it ended…"):
            stopped, message = cloud_jobs.stop(settings, deployment, name)
        (st.success if stopped else st.warning)(message)

    @st.fragment(run_every=REFRESH_S)
    def status() -> None:
        view = cloud_jobs.job_view(settings, deployment, name)
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

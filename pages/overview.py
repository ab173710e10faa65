"""Overview: what the console is, and the state of the local Kafka broker."""

import streamlit as st

from backend.console import targets
from backend.kafka import local_broker
from backend.settings import load_settings
from pages import _gate

_gate.require()

st.title("Tweet stream console")
st.markdown(
    """
Set up, run and watch a tweet stream pipeline:
**X / Twitter → Apache Kafka → Apache Spark Structured Streaming → live charts**.

It follows the architecture of *Event stream processing architecture on Azure with Apache Kafka
and Spark* (Kafka on Azure HDInsight, Spark on Azure Databricks, peered virtual networks) and
runs the same pipeline on this machine: a real Kafka broker on 127.0.0.1 and Spark in local mode.
"""
)

settings = load_settings()
note = targets.description(settings).overview_note  # what the pages show on this target, where worth saying
if note is not None:
    st.info(note)

st.subheader("Local Kafka broker")
if settings.bootstrap_servers:
    st.info(f"The active connection profile is another cluster, `{settings.bootstrap}`: see the Setup page.")
broker = local_broker.LocalBroker.from_settings(settings)
status = local_broker.status(broker)
if status.running:
    st.success(f"Running at `{status.bootstrap}` (pid {status.pid}).")
else:
    st.warning(
        f"Stopped. Start it with `make run`, or `python -m backend.kafka.local_broker start`; "
        f"it will listen on `{status.bootstrap}`."
    )
st.caption(f"Data, pid and log files: `{broker.kafka_dir}`")

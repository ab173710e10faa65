"""Overview: the pipeline at a glance (a live diagram with each hop's health), one click to a running demo
pipeline, and the state of the local Kafka broker."""

import time
from collections.abc import Callable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from backend.aggregates.interfaces import ReadError
from backend.console import demo, pipeline, views
from backend.console.job_controls import Outcome
from backend.console.pipeline import Fix
from backend.kafka import local_broker
from backend.kafka.topic_names import DEFAULT_TOPIC
from pages import _gate, _live

_gate.require()

st.title("Tweet stream console")
st.markdown(
    "Set up, run and watch a tweet stream pipeline: "
    "**X / Twitter → Apache Kafka → Apache Spark Structured Streaming → live charts**, on this machine "
    "(a real Kafka broker on 127.0.0.1 and Spark in local mode) or on Azure (HDInsight Kafka and Databricks)."
)

settings = _live.settings()
target = _live.target(settings)
monitor = _live.monitor(settings)
note = target.description.overview_note  # what the pages show on this target, where worth saying
if note is not None:
    st.info(note)
on_azure = settings.pipeline_target == "azure"


def run_with_status(label: str, action: Callable[..., Outcome], done: str) -> None:
    """Run ``action`` (demo.start or demo.stop) inside st.status, its steps written as they come."""
    with st.status(label, expanded=True) as box:
        outcome = action(settings, monitor, lambda step: st.write(f"… {step}"))
        box.update(label=outcome.headline if outcome.kind != "success" else done, state=_STATES[outcome.kind])
    _live.flash("overview", outcome.kind, outcome.headline, outcome.detail)
    st.rerun()


_STATES = {"success": "complete", "info": "complete", "warning": "error", "error": "error"}

if not on_azure:
    start_column, stop_column, _ = st.columns([1.3, 1, 3])
    snapshot = monitor.snapshot()
    both_running = snapshot.producer.running and snapshot.consumer.running
    if start_column.button(
        "Start demo pipeline",
        type="primary",
        disabled=both_running,
        key="overview-demo-start",
        help=f"Starts the local broker if needed, creates the topic if missing, then synthetic tweets at "
        f"{demo.DEMO_RATE:g} events/s and the Spark job with its defaults.",
    ):
        run_with_status("Starting the demo pipeline…", demo.start, "Demo pipeline started")
    if stop_column.button(
        "Stop pipeline",
        disabled=not (snapshot.producer.running or snapshot.consumer.running),
        key="overview-demo-stop",
    ):
        run_with_status("Stopping the pipeline (the Spark job ends its micro-batch)…", demo.stop, "Pipeline stopped")
    _live.show_flash("overview")


def fix_button(node: pipeline.Node, column: DeltaGenerator) -> None:
    """The button (or link) that fixes ``node``."""
    fix: Fix | None = node.fix
    key = f"overview-fix-{node.key}"
    if fix == "setup":
        column.page_link("pages/setup.py", label="Open Setup", icon=":material/build:")
    elif fix == "consumer-page":
        column.page_link("pages/consumer.py", label="Open Consumer", icon=":material/bolt:")
    elif fix == "start-broker" and column.button("Start broker", key=key):
        with st.spinner("Starting the local Kafka broker…"):
            try:
                local_broker.start(local_broker.LocalBroker.from_settings(settings))
            except local_broker.BrokerError as error:
                _live.flash("overview", "error", "The broker did not start.", str(error))
        monitor.refresh()
        st.rerun(scope="app")
    elif fix in ("start-producer", "start-consumer"):
        name = "producer" if fix == "start-producer" else "consumer"
        if column.button("Start producer" if name == "producer" else "Start Spark job", key=key):
            with st.spinner("Starting…"):
                outcome = demo.start_one(settings, monitor, name)
            _live.flash("overview", outcome.kind, outcome.headline, outcome.detail)
            monitor.refresh()
            st.rerun(scope="app")


run_every = _live.live_interval("overview")


@st.fragment(run_every=run_every)
@_gate.admitted_only
def diagram() -> None:
    snapshot = monitor.snapshot()
    rates = monitor.producer_rates()
    try:
        newest = target.reader.latest_window_start()
    except ReadError:  # a SQL warehouse still starting: the store's node says no window yet
        newest = None
    facts = pipeline.facts(
        snapshot,
        rates[-1].per_second if rates and snapshot.producer.running else None,
        newest,
        target.controls.fixed_topic or DEFAULT_TOPIC,
        broker_is_local=monitor.is_local,
    )
    nodes = pipeline.azure_nodes(facts) if on_azure else pipeline.local_nodes(facts)
    st.graphviz_chart(pipeline.dot(nodes), width="stretch")
    st.caption(
        f"Green: healthy · grey: stopped · red: failing · amber: falling behind. Updated {views.clock(time.time())}."
    )
    for node in pipeline.problems(nodes):
        line, button = st.columns([4, 1])
        text = f"**{views.plain(node.title)}**: {views.plain(node.problem or '', 200)}"
        alert = next((a for a in snapshot.alerts if a.where == node.key and a.title == node.problem), None)
        if alert is not None:  # since when, and what to do
            text += f" (since {views.clock(alert.since)}). {views.plain(alert.what_to_do, 200)}"
        (line.error if node.health == "failing" else line.warning)(text, icon=":material/error:")
        fix_button(node, button)


st.subheader("The pipeline now")
diagram()

st.subheader("Local Kafka broker")


@st.fragment(run_every=run_every)  # live, like the diagram: a broker that dies shows as stopped here too
@_gate.admitted_only
def broker_state() -> None:
    if settings.bootstrap_servers:
        st.info(f"The active connection profile is another cluster, `{settings.bootstrap}`: see the Setup page.")
    broker = local_broker.LocalBroker.from_settings(settings)
    status = local_broker.status(broker)
    if status.running:
        st.success(f"Running at `{status.bootstrap}` (pid {status.pid}).")
    else:
        st.warning(
            f"Stopped. Start it with **Start demo pipeline** above, on Setup, or with "
            f"`python -m backend.kafka.local_broker start`; it will listen on `{status.bootstrap}`."
        )
    st.caption(f"Data, pid and log files: `{broker.kafka_dir}`")


broker_state()

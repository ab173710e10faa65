"""Producer: choose the source and the rate, start and stop the job, watch what it sends."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from backend.console import charts, supervisor, targets, uploads, views
from backend.console.job_requests import ProducerRequest, check_producer
from backend.console.monitor import ALL_MESSAGES
from backend.kafka.topic_names import DEFAULT_TOPIC
from backend.options.producer import DEFAULT_RATE
from pages import _cloud, _gate, _live

_gate.require()

settings = _live.settings()
target = _live.target(settings)
monitor = _live.monitor(settings)
controls = target.controls  # processes on this machine, or runs on Databricks

st.title("Producer")
st.caption(
    "Sends tweets to a Kafka topic (key: the tweet id; value: the X API v2 JSON envelope). `python -m jobs.producer`"
)
_cloud.panel(targets.databricks_controls(settings), "producer")  # only when the Azure wizard made the jobs

if controls.takes_options:  # else the job runs on Databricks: its panel above starts and stops it
    view = monitor.snapshot().producer

    with st.expander("Source and rate", expanded=not view.running):
        source = st.radio(
            "Source",
            ["synthetic", "replay", "x"],
            format_func={
                "synthetic": "Synthetic tweets (generated)",
                "replay": "Replay a file",
                "x": "X API (live)",
            }.get,
            horizontal=True,
            key="producer-source",
        )
        left, right = st.columns(2)
        topic = left.text_input("Topic", value=DEFAULT_TOPIC, key="producer-topic")
        # No min_value or max_value on these: Streamlit would keep the last valid value under one typed
        # out of range, and Start would run with it; the producer's own check refuses it, saying why.
        rate = right.number_input(
            "Rate (events/s; 0 = as fast as possible)", value=DEFAULT_RATE, step=10.0, key="producer-rate"
        )
        count = left.number_input("Stop after (events; 0 = run until Stop)", value=0, step=1000, key="producer-count")
        create_topic = right.checkbox("Create the topic if it does not exist (4 partitions)", value=True)
        malformed_rate = 0.0
        replay_file = None
        loop = False
        speed = None
        query = None
        x_mode = "stream"
        if source == "synthetic":
            malformed_rate = st.number_input(
                "Fraction of deliberately broken values (0 to 1)",
                value=0.0,
                step=0.01,
                key="producer-malformed",
            )
        elif source == "replay":
            uploaded = st.file_uploader(
                "Upload a file (JSON Lines or a JSON array of v2 envelopes or v1.1 statuses; .gz allowed)",
                key="producer-upload",
            )
            path_text = st.text_input("…or a path on this machine", key="producer-path")
            if uploaded is not None:
                replay_file = uploads.save_upload(settings.state_dir, uploaded.name, uploaded.getvalue())
                st.caption(f"Uploaded to `{replay_file}` ({replay_file.stat().st_size:,} bytes)")
            elif path_text.strip():
                replay_file = uploads.expand_path(path_text.strip())
            loop = st.checkbox("Loop: start again at the end of the file", key="producer-loop")
            if st.checkbox("Replay the original timing", key="producer-original-timing"):
                speed = st.number_input("…this many times faster", value=10.0, key="producer-speed")
        else:
            if settings.x_bearer_token is not None:
                st.success("An X API bearer token is set (X_BEARER_TOKEN).")
            else:
                st.warning(
                    "No X API bearer token is set. Set the X_BEARER_TOKEN environment variable, or "
                    "`x_bearer_token` in .streamlit/secrets.toml, then restart the console."
                )
            x_mode = st.radio("Mode", ["stream", "search"], horizontal=True, key="producer-x-mode")
            query = (
                st.text_input("Rule or query", placeholder="#Azure lang:en -is:retweet", key="producer-query") or None
            )

    request = ProducerRequest(
        source=source,
        topic=topic.strip(),
        rate=None if speed is not None else float(rate),  # the file's own timing paces a replay at --speed
        count=int(count) or None,
        create_topic=create_topic,
        malformed_rate=float(malformed_rate),
        file=replay_file,
        loop=loop,
        speed=float(speed) if speed is not None else None,
        query=query,
        x_mode=x_mode,
    )

    _live.job_buttons(
        controls,
        monitor,
        "producer",
        lambda: check_producer(request, settings),
    )

run_every = _live.live_interval("producer")


@st.fragment(run_every=run_every)
@_gate.admitted_only
def cloud_live() -> None:
    """On Azure: what Kafka says arrives (the producer's own counters stay on Databricks)."""
    _live.banner(target, monitor)
    cloud_topic = controls.fixed_topic or ""
    sample = monitor.snapshot().kafka
    if not sample.reachable:
        st.warning(f"Kafka's metrics cannot be read: {views.markdown_text(sample.error or 'no answer')}")
    columns = st.columns(3)
    messages_in, bytes_in = sample.all_messages_in_per_s, sample.all_bytes_in_per_s
    columns[0].metric(
        "Into Kafka, all topics (messages/s)", "unknown" if messages_in is None else f"{messages_in:,.1f}"
    )
    columns[1].metric("Into Kafka, all topics (bytes/s)", "unknown" if bytes_in is None else f"{bytes_in:,.0f}")
    topic_points = monitor.topic_rates().get(cloud_topic, [])
    columns[2].metric(
        f"Into `{cloud_topic}` (messages/s)", f"{topic_points[-1].per_second:,.1f}" if topic_points else "unknown"
    )
    if sample.brokers:
        st.caption("Brokers: " + ", ".join(f"{host} {state}" for host, state in sorted(sample.brokers.items())))
    if sample.offsets_note:
        st.caption(sample.offsets_note)
    series = {name: points for name, points in monitor.all_topics_rates().items() if points}
    series_messages = {name: points for name, points in series.items() if name == ALL_MESSAGES}
    if topic_points:
        series_messages[cloud_topic] = topic_points
    frame = views.series_frame(series_messages, "series", "messages/s")
    if not frame.empty:
        figure = charts.rates_figure(
            frame, "messages/s", "Messages per second into Kafka, last 15 minutes", colour_by="series"
        )
        st.plotly_chart(figure, key="producer-cloud-rate-chart")
    else:
        st.caption("Messages per second into Kafka: no samples yet.")


@st.fragment(run_every=run_every)
@_gate.admitted_only
def live() -> None:
    current = monitor.snapshot().producer
    status = current.status or {}
    st.subheader(f"Now: {views.job_line(current)}")
    if status:
        st.caption(
            f"Source {status.get('source')} → topic `{status.get('topic')}` at {status.get('bootstrap')} · "
            f"status written {views.age(time.time() - float(status.get('updated_at', 0)))}"
        )
    columns = st.columns(5)
    columns[0].metric("Sent (events)", f"{status.get('sent', 0):,}")
    columns[1].metric("Acknowledged (events)", f"{status.get('acked', 0):,}")
    columns[2].metric("Failed (events)", f"{status.get('failed', 0):,}")
    columns[3].metric("Skipped (inputs)", f"{status.get('skipped', 0):,}")
    columns[4].metric("Now (events/s)", f"{status.get('acked_per_s', 0.0):,.1f}" if current.running else "0")
    if status.get("broker_connected") is False and current.running:
        st.warning("The producer has lost its connection to Kafka; it keeps retrying.")
    if status.get("last_error"):
        st.error("Last error")
        st.text(str(status["last_error"]))
    if status.get("failed_file"):
        st.caption(f"Failed events are kept in `{status['failed_file']}` (replayable with --source replay).")

    points = monitor.producer_rates()
    if points:
        figure = charts.rates_figure(
            views.rates_frame(points, "events/s"), "events/s", "Acknowledged events per second, last 15 minutes"
        )
        st.plotly_chart(figure, key="producer-rate-chart")
    else:
        st.caption("Acknowledged events per second, last 15 minutes: no samples yet (the history starts with the job).")

    sample = status.get("sample") or []
    st.markdown(f"**Latest messages** (up to {len(sample)} shown; text as sent, never rendered)")
    if sample:
        # A dataframe shows every cell as plain text: a tweet's HTML or Markdown is never rendered.
        st.dataframe(pd.DataFrame(sample, columns=["id", "text"]), hide_index=True, key="producer-sample")

    lines = supervisor.log_tail(settings.state_dir, "producer", 200)
    with st.expander(f"Job log (last {len(lines)} lines)"):
        st.code("\n".join(lines) or "(no log yet)", language=None)


if controls.reports_counters:
    live()
else:
    cloud_live()

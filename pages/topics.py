"""Topics: partitions, message counts and live messages/s per topic and partition; a message browser."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import time as day_time

import pandas as pd
import streamlit as st

from backend.console import charts, views
from backend.kafka import browser
from backend.kafka.clients import client_config
from pages import _gate, _live

_gate.require()

settings = _live.settings()
target = _live.target(settings)
monitor = _live.monitor(settings)

st.title("Topics")
st.caption(target.description.topics_caption)

run_every = _live.live_interval("topics")


@st.fragment(run_every=run_every)
@_gate.admitted_only
def overview() -> None:
    _live.banner(target, monitor)
    snapshot = monitor.snapshot()
    ok, line = views.kafka_line(snapshot)
    if not ok:
        st.warning(f"Kafka: {line}")
        return
    rates = monitor.topic_rates()
    table = views.topics_frame(snapshot.kafka, rates)
    if snapshot.kafka.offsets_note:
        st.caption(snapshot.kafka.offsets_note)
    if table.empty:
        st.info(target.description.no_topics)
        return
    st.dataframe(table, hide_index=True, key="topics-table")
    live_rates = {topic: points for topic, points in rates.items() if topic in snapshot.kafka.topics}
    frame = views.series_frame(live_rates, "topic", "messages/s")
    if not frame.empty:
        frame["topic"] = frame["topic"].map(views.plotly_text)  # a cluster's topic names in the legend
        figure = charts.rates_figure(
            frame, "messages/s", "Messages per second, last 15 minutes", colour_by="topic", height=charts.HEIGHT
        )
        st.plotly_chart(figure, key="topics-rate-chart")

    chosen = st.selectbox("Partitions of", sorted(snapshot.kafka.topics), key="topics-partitions-of")
    partitions = snapshot.kafka.topics.get(chosen, {})
    partition_rates = monitor.partition_rates(chosen)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "partition": p,
                    "first offset": o.low,
                    "end offset": o.high,
                    "messages": o.messages,
                    "messages/s (now)": round(partition_rates[p][-1].per_second, 1) if partition_rates.get(p) else None,
                }
                for p, o in sorted(partitions.items())
            ]
        ),
        hide_index=True,
        key="topics-partitions",
    )
    frame = views.series_frame({str(p): points for p, points in partition_rates.items()}, "partition", "messages/s")
    if not frame.empty:
        title = f"{views.plotly_text(chosen)}: messages per second per partition"
        figure = charts.rates_figure(frame, "messages/s", title, colour_by="partition", height=charts.HEIGHT)
        st.plotly_chart(figure, key="partitions-rate-chart")


overview()

st.header("Message browser")
if target.description.browser_unavailable is not None:
    st.info(target.description.browser_unavailable)
    st.stop()
known_topics = sorted(monitor.snapshot().kafka.topics)
with st.form("browse"):
    left, middle, right = st.columns(3)
    topic = left.selectbox("Topic", known_topics, key="browse-topic") if known_topics else left.text_input("Topic")
    partition_choice = middle.text_input("Partition (empty: all)", key="browse-partition")
    limit = right.number_input(
        f"Messages (at most {browser.MAX_MESSAGES})", min_value=1, max_value=browser.MAX_MESSAGES, value=50
    )
    start_kind = left.radio("From", ["the latest", "an offset", "a time (UTC)"], horizontal=True, key="browse-from")
    offset = middle.number_input("Offset", min_value=0, value=0, step=1, key="browse-offset")
    day = right.date_input("Day (UTC)", key="browse-day")
    moment = right.time_input("Time (UTC)", value=day_time(0, 0), key="browse-time")
    search_text = st.text_input("Only messages containing (plain text, case-insensitive)", key="browse-search")
    submitted = st.form_submit_button("Read messages")

if submitted:
    problem = None
    partition = None
    if partition_choice.strip():
        try:
            partition = int(partition_choice)
            if partition < 0:
                raise ValueError
        except ValueError:
            problem = f"Partition must be a whole number ≥ 0 or empty (got '{partition_choice}')."
    if problem is not None:
        st.error(problem)
    elif not topic:
        st.error("Choose a topic.")
    else:
        if start_kind == "an offset":
            start: browser.Start = browser.FromOffset(int(offset))
        elif start_kind == "a time (UTC)":
            start = browser.FromTimestamp(int(datetime.combine(day, moment, tzinfo=UTC).timestamp() * 1000))
        else:
            start = browser.Latest(int(limit))
        try:
            with st.spinner("Reading…"):
                result = browser.read_messages(client_config(settings), topic, partition, start, int(limit))
        except browser.BrowseError as error:
            st.error(str(error))
        else:
            found = browser.search(result.messages, search_text) if search_text else result.messages
            summary = f"{len(result.messages)} messages read"
            if search_text:
                summary += f", {len(found)} contain '{search_text}'"
            st.caption(summary + ("; more follow (limit reached)." if result.truncated else "."))
            for note in result.notes:
                st.caption(note)
            for message in found:
                stamp = (
                    datetime.fromtimestamp(message.timestamp_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                    if message.timestamp_ms is not None
                    else "no timestamp"
                )
                key = views.plain(message.key or "(none)")
                with st.expander(f"partition {message.partition} · offset {message.offset} · {stamp} · key {key}"):
                    # st.code shows the value as text: nothing in it is rendered or executed.
                    st.code(message.pretty, language="json" if message.is_json else None)
                    st.caption(f"{message.value_bytes:,} bytes")

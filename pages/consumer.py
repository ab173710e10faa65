"""Consumer: start and stop the Spark job, watch its progress and lag, and chart what the tweets say."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from backend.aggregates.interfaces import ReadError
from backend.console import charts, history, targets, views
from backend.console.job_requests import ConsumerRequest, check_consumer
from backend.console.monitor import trigger_ms as monitor_trigger
from pages import _cloud, _gate, _live

_gate.require()

settings = _live.settings()
target = _live.target(settings)
monitor = _live.monitor(settings)
store = target.reader  # the SQLite store here, or the Delta tables through the SQL warehouse on Azure
controls = target.controls  # processes on this machine, or runs on Databricks

st.title("Consumer")
st.caption(
    "Spark Structured Streaming reads the topic, counts tweets per event-time window and writes the "
    "aggregates to the store, exactly once. `python -m jobs.consumer`"
)
_cloud.panel(targets.databricks_controls(settings), "consumer")  # only when the Azure wizard made the jobs

# On Databricks the job's options were fixed by the wizard (its panel above starts and stops it).
if controls.takes_options:
    view = monitor.snapshot().consumer

    with st.expander("Job options", expanded=not view.running):
        left, middle, right = st.columns(3)
        defaults = ConsumerRequest()  # the job's own defaults
        topic = left.text_input("Topic", value=defaults.topic, key="consumer-topic")
        starting = middle.radio(
            "A new checkpoint starts at", ["earliest", "latest"], horizontal=True, key="consumer-starting"
        )
        trigger = right.text_input("Micro-batch every", value=defaults.trigger, key="consumer-trigger")
        window = left.text_input("Window length", value=defaults.window, key="consumer-window")
        watermark = middle.text_input(
            "Watermark (lateness allowed)", value=defaults.watermark, key="consumer-watermark"
        )
        # No min_value (see the Producer page's rate): the job's own check refuses a negative one.
        max_offsets = right.number_input(
            "Records per micro-batch at most (0 = all available)", value=0, step=10_000, key="consumer-max"
        )
        skip_data_loss = left.checkbox(
            "Skip records lost to retention",
            value=False,
            key="consumer-skip-data-loss",
            help="Off (the default): the job stops, saying so, when records it has not read yet are gone from the "
            "topic (aged out by its retention). On: it goes on from the earliest records still there.",
        )

    request = ConsumerRequest(
        topic=topic.strip(),
        starting_offsets=starting,
        window=window,
        watermark=watermark,
        trigger=trigger,
        max_offsets_per_trigger=int(max_offsets) or None,
        on_data_loss="skip" if skip_data_loss else "fail",
    )

    _live.job_buttons(
        controls,
        monitor,
        "consumer",
        lambda: check_consumer(request, settings),
    )

run_every = _live.live_interval("consumer")


@st.fragment(run_every=run_every)
@_gate.admitted_only
def progress() -> None:
    _live.banner(target, monitor)
    snapshot = monitor.snapshot()
    status = controls.status("consumer", snapshot) or {}
    now = controls.now("consumer", snapshot)
    if now is not None:
        st.subheader(f"Now: {now}")
    if status.get("last_error"):
        st.error("Last error")
        st.text(str(status["last_error"]))
    latest = snapshot.latest_progress
    columns = st.columns(4)
    if latest is None:
        st.caption("No micro-batch recorded yet.")
    else:
        columns[0].metric("Input (rows/s)", f"{latest.input_rows_per_second:,.1f}")
        columns[1].metric("Processed (rows/s)", f"{latest.processed_rows_per_second:,.1f}")
        columns[2].metric("Batch duration (ms)", f"{latest.batch_duration_ms:,}")
        columns[3].metric("Last batch (rows)", f"{latest.input_rows:,}")
        st.caption(f"Batch {latest.batch_id}, recorded {views.age(time.time() - latest.recorded_at)}.")

    job_topic = controls.fixed_topic or str(status.get("topic") or request.topic)
    # Offsets of another query (the job restarted on another topic or checkpoint) say nothing here.
    same_query = latest is not None and status.get("query_id") in (None, latest.query_id)
    lag = views.lag_frame(snapshot.kafka, job_topic, latest if same_query else None)
    aged = views.aged_out(snapshot.kafka, job_topic, latest if same_query else None)
    if aged:
        where = ", ".join(f"partition {partition}: {count:,}" for partition, count in aged.items())
        if status.get("on_data_loss") == "skip":
            what_next = (
                "The job runs with *Skip records lost to retention*: it goes on from the earliest records still there."
            )
        else:
            what_next = (
                "The job stops when it meets them; to go on from the earliest records still there, start it "
                "with *Skip records lost to retention*."
            )
        st.error(
            f"**{sum(aged.values()):,} records aged out of `{job_topic}` before the Spark job read them** ({where}). "
            f"The topic's retention is shorter than the job's pause. {what_next} Raise the topic's retention "
            "(retention.ms) to keep this from happening again.",
            icon=":material/warning:",
        )
    st.markdown(f"**Lag per partition of `{job_topic}`** (the topic's end offset minus the job's processed offset)")
    if snapshot.kafka.offsets_note:  # why the end offsets are missing (the job on Databricks samples them)
        st.caption(snapshot.kafka.offsets_note)
    if not snapshot.kafka.reachable:
        st.caption(f"Kafka not reachable: {views.markdown_text(snapshot.kafka.error or '')}")
    elif lag.empty and snapshot.kafka.offsets_note:
        pass
    elif lag.empty:
        st.caption(f"No topic `{job_topic}` on {monitor.describe()}.")
    else:
        unread = int(lag["lag (records)"].isna().sum())
        if unread == len(lag):
            st.caption("Lag: known after the job's first micro-batch.")
        else:
            total = int(lag["lag (records)"].sum())  # over the partitions the job has read from
            note = f" ({unread} partitions not read from yet)" if unread else ""
            st.caption(f"Total lag: {total:,} records{note}.")
        st.dataframe(lag, hide_index=True, key="consumer-lag")

    try:
        dead_letters()
    except ReadError as error:  # a SQL warehouse that refused or is still starting: said, not a traceback
        st.warning(f"Dead letters cannot be read now: {error}", icon=":material/hourglass_empty:")


def dead_letters() -> None:
    dead = store.dead_letter_count()
    st.markdown(f"**Dead letters** (records that break the message contract): {dead:,}")
    if dead:
        sample = pd.DataFrame(
            [(d.partition, d.offset, d.error, (d.raw or "")[:300]) for d in store.dead_letter_sample(20)],
            columns=["partition", "offset", "reason", "value (start)"],
        )
        st.dataframe(sample, hide_index=True, key="consumer-dead-letters")


progress()

st.header("History")
history_range = st.selectbox(
    "Time range (back from now)",
    list(history.RANGES_S),
    index=list(history.RANGES_S).index(history.DEFAULT_RANGE),
    key="consumer-history-range",
    help="For every history chart below: the Spark job's own progress report of each micro-batch.",
)


@st.fragment(run_every=run_every)
@_gate.admitted_only
def history_charts() -> None:
    try:
        reports = history.latest_query(history.read(store, history_range, time.time()))
    except ReadError as error:
        st.warning(f"The history cannot be read now: {error}", icon=":material/hourglass_empty:")
        return
    if not reports:
        st.caption(f"No micro-batch recorded in the {history_range}.")
        return
    frame = history.frame(reports, history.watermark_gaps(store, reports))
    consumer_view = monitor.snapshot().consumer
    trigger_ms = monitor_trigger(consumer_view.arguments) if consumer_view.running else None
    st.caption(f"{len(frame):,} batches shown, from batch {frame['batch'].iloc[0]} to {frame['batch'].iloc[-1]}.")
    left, right = st.columns(2)
    left.plotly_chart(charts.throughput_figure(frame), key="history-throughput")
    right.plotly_chart(
        charts.batch_duration_figure(frame, None if trigger_ms is None else trigger_ms / 1000), key="history-duration"
    )
    left, right = st.columns(2)
    if frame["addBatch (s)"].notna().any():
        left.plotly_chart(charts.operations_figure(frame.dropna(subset=["addBatch (s)"])), key="history-operations")
    else:
        left.caption("Operation durations: not kept by this store.")
    gaps = frame.dropna(subset=["watermark gap (s)"])
    if not gaps.empty:
        right.plotly_chart(charts.watermark_figure(gaps), key="history-watermark")
    else:
        right.caption("Watermark gap: none in this range (no batch with tweets yet, or a store without the ledger).")
    lag = history.lag_frame(reports)
    if not lag.empty:
        st.plotly_chart(charts.lag_figure(lag), key="history-lag")
    else:
        st.caption("Lag per partition over time: not kept by this store.")


history_charts()

st.header("What the tweets say")
range_label = st.selectbox(
    "Time range (back from the newest window)",
    list(views.TIME_RANGES),
    index=list(views.TIME_RANGES).index(views.DEFAULT_TIME_RANGE),
    key="consumer-range",
)


def download(frame: pd.DataFrame, name: str, key: str) -> None:
    st.download_button(
        f"Download {name} (CSV)",
        # A callable: the CSV is built when the button is clicked, not at every redraw.
        lambda: views.csv_bytes(frame),  # formulas neutralised: the cells are anyone's tweets
        file_name=f"{name}.csv",
        mime="text/csv",
        key=key,
        on_click="ignore",
    )


def bars(frame: pd.DataFrame, label: str, title: str, key: str) -> None:
    st.plotly_chart(charts.bars_figure(frame, label, title), key=key)


@st.fragment(run_every=run_every)
@_gate.admitted_only
def aggregates() -> None:
    try:
        draw_aggregates()
    except ReadError as error:  # a SQL warehouse that refused or is still starting: said, not a traceback
        st.warning(f"The aggregates cannot be read now: {error}", icon=":material/hourglass_empty:")


def draw_aggregates() -> None:
    newest = store.latest_window_start()
    if newest is None:
        st.info("No aggregates yet: start the producer and the Spark job.")
        return
    since, _ = views.time_range(range_label, newest)
    windows = pd.DataFrame([w.__dict__ for w in store.windows(since)])
    start_times = pd.to_datetime(windows["window_start"])
    st.caption(
        f"{len(windows):,} windows from {start_times.min():%Y-%m-%d %H:%M} to {start_times.max():%Y-%m-%d %H:%M} "
        f"UTC; {int(windows['tweets'].sum()):,} tweets; {store.late_tweets(since):,} arrived after their window "
        "had closed."
    )

    window_s = (pd.to_datetime(windows["window_end"].iloc[0]) - start_times.iloc[0]).total_seconds() or 60.0
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.windows_figure(windows, window_s), key="chart-windows")
        download(windows, "tweets_per_window", "csv-windows")
    with right:
        st.plotly_chart(charts.sentiment_figure(windows, window_s), key="chart-sentiment")
        download(windows[["window_start", "sentiment_avg", "tweets"]], "sentiment_per_window", "csv-sentiment")

    left, right = st.columns(2)
    with left:
        hashtags = pd.DataFrame(
            [(r.key, r.tweets) for r in store.top_hashtags(since, limit=20)], columns=["hashtag", "tweets"]
        )
        if hashtags.empty:
            st.caption("No hashtags in this range.")
        else:
            bars(hashtags, "hashtag", "Top 20 hashtags", "chart-hashtags")
        download(hashtags, "top_hashtags", "csv-hashtags")
    with right:
        languages = pd.DataFrame([(r.key, r.tweets) for r in store.languages(since)], columns=["language", "tweets"])
        bars(languages.head(15), "language", "Languages (top 15)", "chart-languages")
        download(languages, "languages", "csv-languages")


aggregates()

"""Pure helpers that turn the backend's state into what the pages draw: lines of text, tables, ranges.

No Streamlit here: the pages stay thin and these are unit-tested without services.
"""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd

from backend.aggregates.records import Progress
from backend.console.monitor import KafkaSample, RatePoint, Snapshot, aged_out_per_partition, lag_per_partition
from backend.console.supervisor import JobView

# The Consumer page's time ranges, counted back from the newest window in the store (not from
# the clock: a replayed file's tweets may be years old).
TIME_RANGES: dict[str, timedelta | None] = {
    "last 15 minutes": timedelta(minutes=15),
    "last hour": timedelta(hours=1),
    "last 6 hours": timedelta(hours=6),
    "last 24 hours": timedelta(hours=24),
    "everything": None,
}
DEFAULT_TIME_RANGE = "last hour"


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:])")


def plain(text: str, limit: int = 80) -> str:
    """``text`` made safe for a Streamlit label (labels are Markdown): specials escaped, one line, cut."""
    one_line = " ".join(text.split())
    cut = one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
    return _MARKDOWN_SPECIALS.sub(r"\\\1", cut)


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def clock(seconds: float) -> str:
    return utc(seconds).strftime("%H:%M:%S UTC")


def age(seconds_ago: float) -> str:
    """'4 s ago', '3 min ago', '2 h ago'."""
    seconds_ago = max(0.0, seconds_ago)
    if seconds_ago < 120:
        return f"{seconds_ago:.0f} s ago"
    if seconds_ago < 7200:
        return f"{seconds_ago / 60:.0f} min ago"
    return f"{seconds_ago / 3600:.0f} h ago"


def job_line(view: JobView) -> str:
    """One line for the sidebar and the page header: state, pid and since when."""
    if view.running and view.pid is not None and view.started_at is not None:
        return f"{view.state} · pid {view.pid} · since {clock(view.started_at)}"
    return view.state


# Spreadsheets run a cell that starts with these as a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def markdown_text(text: str) -> str:
    """Text from outside (a broker's error) for st.markdown, st.error...: shown as typed, one line, never a
    link, emphasis, colour or icon (``plain`` without the cut)."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", " ".join(text.split()))


def plotly_text(text: str) -> str:
    """Text from outside for a plotly title, legend or label: plotly reads <a>, <b>, <br>... there as markup."""
    return html.escape(text)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as CSV, each text cell a spreadsheet would run as a formula made plain text by a leading "'"
    (OWASP's advice): hashtags and languages come from anyone's tweets."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object:
            safe[column] = safe[column].map(
                lambda cell: f"'{cell}" if isinstance(cell, str) and cell.startswith(_FORMULA_START) else cell
            )
    # Every text cell quoted: a bare carriage return inside one would otherwise split the row.
    return safe.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode("utf-8")


def kafka_line(snapshot: Snapshot) -> tuple[bool, str]:
    """Whether Kafka answers, and one line saying so."""
    kafka = snapshot.kafka
    if kafka.reachable:
        topics = len(kafka.topics)
        line = f"{snapshot.bootstrap} · {topics} topic{'s' if topics != 1 else ''}"
        if snapshot.local_broker is not None and not snapshot.local_broker.running:
            line += " (a broker this console did not start)"
        return True, line
    if snapshot.local_broker is not None and not snapshot.local_broker.running:
        return False, f"local broker stopped ({snapshot.bootstrap})"
    if kafka.sampled_at == 0.0:
        return False, f"{snapshot.bootstrap} · checking…"
    return False, markdown_text(kafka.error) if kafka.error else f"{snapshot.bootstrap} unreachable"


def rates_frame(points: Sequence[RatePoint], column: str = "per second") -> pd.DataFrame:
    """A time series for a line chart: one row per sample, time in UTC."""
    return pd.DataFrame({"time (UTC)": [utc(p.at) for p in points], column: [p.per_second for p in points]})


def series_frame(series: dict[str, Sequence[RatePoint]], label: str, column: str) -> pd.DataFrame:
    """Several rate series in long form (time, label, value), e.g. one per topic or partition."""
    rows = [(utc(p.at), name, p.per_second) for name, points in series.items() for p in points]
    return pd.DataFrame(rows, columns=["time (UTC)", label, column])


def lag_frame(kafka: KafkaSample, topic: str, progress: Progress | None) -> pd.DataFrame:
    """Per partition: the topic's end offset, the job's processed offset and the lag between them."""
    partitions = kafka.topics.get(topic, {})
    end = {partition: offsets.high for partition, offsets in partitions.items()}
    processed = progress.end_offsets if progress is not None else {}
    lag = lag_per_partition(end, processed)
    return pd.DataFrame(
        {
            "partition": list(lag),
            "end offset": [end[p] for p in lag],
            "processed up to": pd.array([processed.get(str(p)) for p in lag], dtype="Int64"),
            "lag (records)": pd.array([lag[p] for p in lag], dtype="Int64"),  # <NA>: not read yet
        }
    )


def aged_out(kafka: KafkaSample, topic: str, progress: Progress | None) -> dict[int, int]:
    """Per partition, records retention deleted before the job read them (only partitions with some)."""
    return aged_out_per_partition(kafka.topics.get(topic, {}), progress.end_offsets if progress is not None else None)


def topics_frame(kafka: KafkaSample, rates: dict[str, Sequence[RatePoint]]) -> pd.DataFrame:
    rows = []
    for topic, partitions in sorted(kafka.topics.items()):
        points = rates.get(topic, ())
        rows.append(
            {
                "topic": topic,
                "partitions": len(partitions),
                "messages": sum(p.messages for p in partitions.values()),
                "messages/s (now)": round(points[-1].per_second, 1) if points else None,
            }
        )
    return pd.DataFrame(rows, columns=["topic", "partitions", "messages", "messages/s (now)"])


def time_range(label: str, newest_window_start: str | None) -> tuple[str | None, str | None]:
    """``(since, until)`` window-start bounds for the store's reads; None means unbounded."""
    span = TIME_RANGES[label]
    if span is None or newest_window_start is None:
        return None, None
    newest = datetime.strptime(newest_window_start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (newest - span + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), None

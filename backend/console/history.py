"""The Consumer page's history: the Spark job's own progress records as tables for the charts.

Spark's UI keeps the last 100 progress updates; the store keeps every one, so the history reaches
as far back as the time range asks (sampled down to ``MAX_POINTS`` for long ranges). Pure but for
``read``: unit-tested in tests/unit/test_charts.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd

from backend.aggregates.interfaces import AggregatesReader
from backend.aggregates.records import Progress
from backend.aggregates.sqlite_store import AggregatesStore
from backend.console.charts import OPERATIONS

RANGES_S: dict[str, float] = {
    "last 5 minutes": 300,
    "last 15 minutes": 900,
    "last hour": 3600,
    "last 6 hours": 6 * 3600,
    "last 24 hours": 24 * 3600,
}
DEFAULT_RANGE = "last 15 minutes"
MAX_POINTS = 600


def read(reader: AggregatesReader, range_label: str, now: float) -> list[Progress]:
    """The progress reports of the range, oldest first. The SQLite store samples them in SQL; other
    readers (the SQL warehouse) give their latest MAX_POINTS, cut to the range."""
    since = now - RANGES_S[range_label]
    if isinstance(reader, AggregatesStore):
        return reader.progress_since(since, MAX_POINTS)
    return sorted((p for p in reader.progress(MAX_POINTS) if p.recorded_at >= since), key=lambda p: p.recorded_at)


def latest_query(reports: Sequence[Progress]) -> list[Progress]:
    """The reports of the newest query only: another checkpoint's batch ids and offsets do not line up."""
    if not reports:
        return []
    query = reports[-1].query_id
    return [p for p in reports if p.query_id == query]


def frame(reports: Sequence[Progress]) -> pd.DataFrame:
    """One row per batch: rates, duration, each operation's duration and the watermark gap (in seconds)."""
    rows = []
    for p in reports:
        row: dict[str, object] = {
            "time": datetime.fromtimestamp(p.recorded_at, tz=UTC),
            "batch": p.batch_id,
            "input rows/s": p.input_rows_per_second,
            "processed rows/s": p.processed_rows_per_second,
            "batch duration (s)": p.batch_duration_ms / 1000,
            "watermark gap (s)": None if p.watermark_gap_ms is None else p.watermark_gap_ms / 1000,
        }
        for name in OPERATIONS:
            row[f"{name} (s)"] = p.durations_ms.get(name, 0) / 1000 if p.durations_ms else None
        rows.append(row)
    columns = ["time", "batch", "input rows/s", "processed rows/s", "batch duration (s)", "watermark gap (s)"]
    return pd.DataFrame(rows, columns=columns + [f"{name} (s)" for name in OPERATIONS])


def lag_frame(reports: Sequence[Progress]) -> pd.DataFrame:
    """Per batch and partition: the records the topic held beyond what the batch read (Spark's
    latestOffset minus endOffset), in long form. Empty where the reports do not keep latestOffset."""
    rows = [
        (
            datetime.fromtimestamp(p.recorded_at, tz=UTC),
            int(partition),
            max(0, latest - p.end_offsets.get(partition, latest)),
        )
        for p in reports
        for partition, latest in sorted(p.latest_offsets.items(), key=lambda item: int(item[0]))
    ]
    return pd.DataFrame(rows, columns=["time", "partition", "lag (records)"])

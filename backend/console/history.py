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
MAX_POINTS = 240  # a chart no wider than ~1000 px shows no more; each point costs the rerun time


def read(reader: AggregatesReader, range_label: str, now: float) -> list[Progress]:
    """The progress reports of the range, oldest first. The SQLite store samples them in SQL; other
    readers (the SQL warehouse) give their latest MAX_POINTS, cut to the range."""
    since = now - RANGES_S[range_label]
    if isinstance(reader, AggregatesStore):
        return reader.progress_since(since, MAX_POINTS)
    return sorted((p for p in reader.progress(MAX_POINTS) if p.recorded_at >= since), key=lambda p: p.recorded_at)


def watermark_gaps(reader: AggregatesReader, reports: Sequence[Progress]) -> dict[int, int]:
    """Per batch, its newest event time minus its watermark (ms), from the job's ledger in the SQLite
    store (the Delta tables' reader does not offer it: none)."""
    if not reports or not isinstance(reader, AggregatesStore):
        return {}
    return reader.watermark_gaps(reports[-1].query_id, min(p.batch_id for p in reports))


def latest_query(reports: Sequence[Progress]) -> list[Progress]:
    """The reports of the newest query only: another checkpoint's batch ids and offsets do not line up."""
    if not reports:
        return []
    query = reports[-1].query_id
    return [p for p in reports if p.query_id == query]


def frame(reports: Sequence[Progress], gaps: dict[int, int] | None = None) -> pd.DataFrame:
    """One row per batch: rates, duration, each operation's duration and the watermark gap (``gaps``), in seconds."""
    gaps = gaps or {}
    rows = []
    for p in reports:
        row: dict[str, object] = {
            "time": datetime.fromtimestamp(p.recorded_at, tz=UTC),
            "batch": p.batch_id,
            "input rows/s": p.input_rows_per_second,
            "processed rows/s": p.processed_rows_per_second,
            "batch duration (s)": p.batch_duration_ms / 1000,
            "watermark gap (s)": gaps[p.batch_id] / 1000 if p.batch_id in gaps else None,
        }
        for name in OPERATIONS:
            row[f"{name} (s)"] = p.durations_ms.get(name, 0) / 1000 if p.durations_ms else None
        rows.append(row)
    columns = ["time", "batch", "input rows/s", "processed rows/s", "batch duration (s)", "watermark gap (s)"]
    return pd.DataFrame(rows, columns=columns + [f"{name} (s)" for name in OPERATIONS])


def lag_frame(reports: Sequence[Progress]) -> pd.DataFrame:
    """Per batch and partition: the records waiting when the batch was triggered (Spark's latestOffset
    minus the batch's start offset), in long form. Empty where the reports do not keep latestOffset."""
    rows = [
        (
            datetime.fromtimestamp(p.recorded_at, tz=UTC),
            int(partition),
            max(0, latest - p.start_offsets.get(partition, 0)),
        )
        for p in reports
        for partition, latest in sorted(p.latest_offsets.items(), key=lambda item: int(item[0]))
    ]
    return pd.DataFrame(rows, columns=["time", "partition", "lag (records)"])

"""The Delta sink's pure parts: the rows a micro-batch appends to each table (no Spark here;
the tables themselves are written by the consumer's integration tests, in real Spark with Delta)."""

from __future__ import annotations

import json

import pytest

from backend.aggregates.delta_store import (
    BATCH_TABLES,
    batch_rows,
    ledger_row,
    progress_row,
    topic_offset_rows,
    window_ms_of,
)
from backend.aggregates.interfaces import DELTA_TABLES, check_table_prefix
from backend.aggregates.records import MAX_RAW_CHARS, BatchResult, DeadLetter, KeyCount, Progress, WindowCounts


def columns(table: str) -> int:
    """How many columns DELTA_TABLES gives ``table`` (its DDL has no commas inside a type)."""
    return len(DELTA_TABLES[table].split(","))


RESULT = BatchResult(
    query_id="q-1",
    batch_id=7,
    windows=[
        WindowCounts("2026-11-27T18:00:00Z", "2026-11-27T18:01:00Z", 3, 1, 1, 0, 0.75),
        WindowCounts("2026-11-27T18:01:00Z", "2026-11-27T18:02:00Z", 2, 0, 0, 1, -0.5),
    ],
    hashtags=[KeyCount("2026-11-27T18:00:00Z", "kafka", 2)],
    languages=[KeyCount("2026-11-27T18:00:00Z", "en", 3), KeyCount("2026-11-27T18:01:00Z", "und", 2)],
    late=[KeyCount("2026-11-27T17:00:00Z", "", 4)],
    dead_letters=[
        DeadLetter("tweets", 1, 42, "not JSON", "x" * (MAX_RAW_CHARS + 10)),
        DeadLetter("tweets", 0, 3, "empty value", None),
    ],
    max_event_time_ms=1_795_806_100_000,
    watermark_ms=1_795_805_980_000,
)


def test_every_table_of_a_batch_gets_its_rows_with_the_query_and_batch_ids() -> None:
    rows = batch_rows(RESULT, committed_at=1000.5, window_ms=60_000)

    assert list(rows) == list(BATCH_TABLES) and BATCH_TABLES[-1] == "batches"  # the ledger last
    for table, table_rows in rows.items():
        for row in table_rows:
            assert len(row) == columns(table), table  # the columns' order and number of DELTA_TABLES
            assert row[:2] == ("q-1", 7), table
    assert rows["tweets_per_window"][0] == (
        *("q-1", 7, "2026-11-27T18:00:00Z", "2026-11-27T18:01:00Z"),
        *(3, 1, 1, 0, 0.75),
    )
    assert rows["hashtags_per_window"] == [("q-1", 7, "2026-11-27T18:00:00Z", "kafka", 2)]
    assert [r[3:] for r in rows["languages_per_window"]] == [("en", 3), ("und", 2)]
    assert rows["late_tweets_per_window"] == [("q-1", 7, "2026-11-27T17:00:00Z", 4)]
    # A dead letter keeps at most MAX_RAW_CHARS of its value, as in the SQLite store.
    assert len(rows["dead_letters"][0][6]) == MAX_RAW_CHARS and rows["dead_letters"][1][6] is None
    assert rows["batches"] == [
        ("q-1", 7, 1000.5, 5, 4, 2, 1_795_806_100_000, 1_795_805_980_000, 60_000),
    ]


def test_an_empty_batch_appends_only_its_ledger_row() -> None:
    rows = batch_rows(BatchResult("q", 0), committed_at=1.0)

    assert {table: len(r) for table, r in rows.items() if r} == {"batches": 1}
    assert rows["batches"][0] == ("q", 0, 1.0, 0, 0, 0, None, None, None)  # no window: its length unknown


def test_the_window_length_comes_from_the_job_else_from_the_windows() -> None:
    assert window_ms_of(RESULT) == 60_000
    assert window_ms_of(BatchResult("q", 0)) is None
    assert ledger_row(RESULT, 0.0, window_ms=30_000)[-1] == 30_000
    assert ledger_row(RESULT, 0.0)[-1] == 60_000


def test_a_progress_row_keeps_offsets_as_json_objects() -> None:
    progress = Progress("q-1", 4, 500, 120.5, 300.25, 1700, {"1": 10, "0": 5}, {"0": 255, "1": 260}, recorded_at=99.0)

    row = progress_row(progress, "tweets", recorded_at=5.0)

    assert len(row) == columns("query_progress")
    assert row[:8] == ("q-1", 4, 99.0, "tweets", 500, 120.5, 300.25, 1700)
    assert json.loads(row[8]) == {"0": 5, "1": 10} and json.loads(row[9]) == {"0": 255, "1": 260}
    assert progress_row(Progress("q", 0, 0, 0.0, 0.0, 0), None, recorded_at=5.0)[2] == 5.0  # not recorded yet: now


def test_topic_offsets_rows_by_partition() -> None:
    rows = topic_offset_rows("tweets", {2: (5, 9), 0: (0, 12)}, sampled_at=7.5)

    assert rows == [(7.5, "tweets", 0, 0, 12), (7.5, "tweets", 2, 5, 9)]
    assert all(len(row) == columns("topic_offsets") for row in rows)


@pytest.mark.parametrize("prefix", ["tweetstream_", "t", "main.tweetstream.tweetstream_", "analytics.x_"])
def test_table_prefixes_that_make_table_names(prefix: str) -> None:
    assert check_table_prefix(prefix) == prefix


@pytest.mark.parametrize(
    "prefix", ["", "tweet-stream_", "a.b.c.d_", "x; DROP TABLE y", ".tweets_", "main..t_", "t_ ", "`t`"]
)
def test_table_prefixes_that_would_break_the_sql_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="is not a table prefix"):
        check_table_prefix(prefix)

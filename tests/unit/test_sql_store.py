"""The SQL reader's statements, conversions, cache and missing tables, against a runner that records.

These check what the reader sends and how it reads the strings back; tests/integration/
test_sql_warehouse.py checks the same reads against real Delta tables through the real SDK and
Spark SQL, equal to the SQLite store's answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from backend.aggregates.interfaces import ReadError
from backend.aggregates.records import DeadLetter, Progress, Ranked, WindowRow
from backend.aggregates.warehouse_reader import SqlAggregatesReader, StatementError
from backend.azure.prices import load_prices
from backend.azure.warehouse import ensure_warehouse, warehouse_hourly_dbu

MISSING = StatementError(
    "BAD_REQUEST",
    "[TABLE_OR_VIEW_NOT_FOUND] The table or view `tweetstream_batches` cannot be found. SQLSTATE: 42P01",
)


class Runner:
    """Answers each statement with the next of ``answers`` (rows, or a StatementError to raise)."""

    def __init__(self, *answers: list[tuple[str | None, ...]] | StatementError) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict[str, str | int | float]]] = []

    def run(self, statement: str, parameters: Mapping[str, str | int | float]) -> list[tuple[str | None, ...]]:
        self.calls.append((statement, dict(parameters)))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, StatementError):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def markers(statement: str) -> set[str]:
    return set(re.findall(r"(?<![:\w]):([a-z_]+)", statement))


@pytest.mark.parametrize(
    "prefix", ["", "a b_", "x;DROP TABLE y;--", "`t`_", "a..b_", ".t_", "t_.", "a.b.c.d_", "t'_", "tw\u00e9et_"]
)
def test_a_prefix_that_is_not_a_table_name_start_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="is not a table prefix"):
        SqlAggregatesReader(Runner([]), prefix)


def test_tables_are_named_from_the_prefix_and_quoted_per_part() -> None:
    runner = Runner([("2026-11-27T18:01:00Z",)])
    assert SqlAggregatesReader(runner, "main.tweetstream.ts_").latest_window_start() == "2026-11-27T18:01:00Z"
    statement = runner.calls[0][0]
    assert "FROM `main`.`tweetstream`.`ts_tweets_per_window`" in statement
    assert "`main`.`tweetstream`.`ts_batches`" in statement  # only whole batches count


def test_windows_sends_bounds_as_parameters_and_converts_the_strings() -> None:
    runner = Runner(
        [
            ("2026-11-27T18:00:00Z", "2026-11-27T18:01:00Z", "5", "1", "2", "0", "2.5"),
            ("2026-11-27T18:01:00Z", "2026-11-27T18:02:00Z", "0", "0", "0", "0", "0.0"),
        ]
    )
    reader = SqlAggregatesReader(runner, "tweetstream_")
    since = datetime(2026, 11, 27, 19, 0, tzinfo=timezone(timedelta(hours=1)))  # 18:00 UTC
    rows = reader.windows(since, "2026-11-27T18:02:00Z")

    assert rows == [
        WindowRow("2026-11-27T18:00:00Z", "2026-11-27T18:01:00Z", 5, 1, 2, 0, 0.5),
        WindowRow("2026-11-27T18:01:00Z", "2026-11-27T18:02:00Z", 0, 0, 0, 0, 0.0),  # 0 tweets: 0.0, no error
    ]
    statement, parameters = runner.calls[0]
    assert parameters == {"since": "2026-11-27T18:00:00Z", "until": "2026-11-27T18:02:00Z"}
    assert markers(statement) == {"since", "until"}
    assert "2026-11-27" not in statement  # values travel as parameters, never in the SQL text
    assert "GROUP BY w.window_start ORDER BY w.window_start" in statement


def test_no_bounds_are_the_whole_range_and_naive_datetimes_are_utc() -> None:
    runner = Runner([("0",)])
    reader = SqlAggregatesReader(runner, "tweetstream_", cache_s=0)
    assert reader.late_tweets() == 0
    assert runner.calls[0][1] == {"since": "", "until": "~"}
    reader.late_tweets(datetime(2026, 11, 27, 18, 0), datetime(2026, 11, 27, 18, 5, tzinfo=UTC))
    assert runner.calls[1][1] == {"since": "2026-11-27T18:00:00Z", "until": "2026-11-27T18:05:00Z"}


def test_ranked_reads_limit_as_a_parameter_and_languages_have_none() -> None:
    runner = Runner([("ai", "7"), ("python", "7")])
    reader = SqlAggregatesReader(runner, "tweetstream_", cache_s=0)
    assert reader.top_hashtags(limit=2) == [Ranked("ai", 7), Ranked("python", 7)]
    statement, parameters = runner.calls[0]
    assert parameters["limit"] == 2 and "LIMIT :limit" in statement
    assert "ORDER BY total DESC, k.hashtag" in statement

    reader.languages()
    assert "LIMIT" not in runner.calls[1][0] and "limit" not in runner.calls[1][1]
    reader.top_hashtags(limit=-1)  # SQLite's LIMIT -1: every hashtag
    assert "LIMIT" not in runner.calls[2][0]
    assert reader.top_hashtags(limit=0) == [] and len(runner.calls) == 3  # nothing to ask


def test_dead_letters_and_progress_convert_their_columns() -> None:
    runner = Runner(
        [("tweets", "2", "17", "not JSON", None), ("tweets", "0", "3", "no id", "{}")],
        [("4",)],
        [("q1", "7", "120", "12.5", "40.25", "900", '{"0": 10}', '{"0": 130}', "1.7645E9")],
    )
    reader = SqlAggregatesReader(runner, "tweetstream_")
    assert reader.dead_letter_sample(2) == [
        DeadLetter("tweets", 2, 17, "not JSON", None),
        DeadLetter("tweets", 0, 3, "no id", "{}"),
    ]
    assert runner.calls[0][1] == {"raw_chars": 2000, "limit": 2}
    assert reader.dead_letter_count() == 4
    assert reader.latest_progress() == Progress(
        query_id="q1",
        batch_id=7,
        input_rows=120,
        input_rows_per_second=12.5,
        processed_rows_per_second=40.25,
        batch_duration_ms=900,
        start_offsets={"0": 10},
        end_offsets={"0": 130},
        recorded_at=1.7645e9,
    )
    assert runner.calls[2][1] == {"limit": 1}


def test_topic_offsets_and_newest_commit() -> None:
    runner = Runner(
        [("1764525600.5", "0", "0", "120"), ("1764525600.5", "1", "5", "98")],
        [("1764525601.25",)],
    )
    reader = SqlAggregatesReader(runner, "tweetstream_")
    assert reader.latest_topic_offsets("tweets") == (1764525600.5, {0: (0, 120), 1: (5, 98)})
    assert runner.calls[0][1] == {"topic": "tweets"}
    assert reader.newest_commit_at() == 1764525601.25


def test_answers_are_cached_per_statement_and_parameters_for_cache_s() -> None:
    clock = Clock()
    runner = Runner([("3",)])
    reader = SqlAggregatesReader(runner, "tweetstream_", cache_s=5.0, clock=clock)
    assert reader.late_tweets() == 3
    assert reader.late_tweets() == 3
    assert len(runner.calls) == 1  # the page's next redraw costs no warehouse time
    reader.late_tweets("2026-11-27T18:00:00Z")
    assert len(runner.calls) == 2  # other parameters: another statement
    clock.now += 5.0
    reader.late_tweets()
    assert len(runner.calls) == 3  # expired


def test_a_missing_table_reads_as_empty_and_other_errors_are_raised() -> None:
    reader = SqlAggregatesReader(Runner(MISSING), "tweetstream_", cache_s=0)
    assert reader.windows() == []
    assert reader.latest_window_start() is None
    assert reader.top_hashtags() == [] and reader.languages() == []
    assert reader.late_tweets() == 0
    assert reader.dead_letter_count() == 0 and reader.dead_letter_sample() == []
    assert reader.progress() == [] and reader.latest_progress() is None
    assert reader.latest_topic_offsets("tweets") == (None, {})
    assert reader.newest_commit_at() is None

    failing = SqlAggregatesReader(Runner(StatementError("BAD_REQUEST", "[PARSE_SYNTAX_ERROR] near 'x'")), "t_")
    with pytest.raises(StatementError, match="PARSE_SYNTAX_ERROR"):
        failing.windows()


def test_warehouse_dbu_per_hour_by_size_agrees_with_the_price_table() -> None:
    assert warehouse_hourly_dbu("2X-Small") == 4.0
    for size, dbu in load_prices().sql_warehouse_dbu_per_hour.items():
        assert warehouse_hourly_dbu(size) == float(dbu), size
    with pytest.raises(ValueError, match="unknown SQL warehouse size 'Tiny'"):
        warehouse_hourly_dbu("Tiny")


def test_a_warehouse_the_api_would_refuse_is_refused_before_any_call() -> None:
    client: Any = object()  # any call on it would fail: none is made
    with pytest.raises(ValueError, match="at least 10 idle minutes"):
        ensure_warehouse(client, "tweetstream-sql", auto_stop_mins=5)
    with pytest.raises(ValueError, match="unknown SQL warehouse size"):
        ensure_warehouse(client, "tweetstream-sql", cluster_size="Huge")


def test_a_failed_read_is_not_sent_again_within_cache_s_and_pages_can_catch_it_as_a_read_error() -> None:
    # A stopped or failing warehouse is asked once per cache_s, not at every redraw of every tab.
    clock = Clock()
    runner = Runner(StatementError("DEADLINE_EXCEEDED", "the SQL warehouse may be starting"), [("4",)])
    reader = SqlAggregatesReader(runner, "tweetstream_", cache_s=5.0, clock=clock)
    for _ in range(3):
        with pytest.raises(ReadError, match="may be starting"):
            reader.late_tweets()
    assert len(runner.calls) == 1
    clock.now += 5.0
    assert reader.late_tweets() == 4
    assert len(runner.calls) == 2

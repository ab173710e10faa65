"""The SQLite aggregates store: schema, WAL, one idempotent transaction per batch, typed reads."""

from __future__ import annotations

import dataclasses
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backend.aggregates import sqlite_rollups
from backend.aggregates.records import (
    MAX_RAW_CHARS,
    BatchResult,
    DeadLetter,
    KeyCount,
    Progress,
    Ranked,
    WindowCounts,
    WindowRow,
    iso_utc,
)
from backend.aggregates.sqlite_store import SCHEMA_VERSION, AggregatesStore

W1, W1_END = "2026-11-27T18:00:00Z", "2026-11-27T18:01:00Z"
W2, W2_END = "2026-11-27T18:01:00Z", "2026-11-27T18:02:00Z"


@pytest.fixture
def store(tmp_path: Path) -> AggregatesStore:
    store = AggregatesStore(tmp_path / "aggregates.sqlite")
    store.create()
    return store


def batch(batch_id: int, query_id: str = "q1", **parts) -> BatchResult:
    return BatchResult(query_id=query_id, batch_id=batch_id, **parts)


def table(store: AggregatesStore, sql: str) -> list[tuple]:
    with sqlite3.connect(store.path) as connection:
        return connection.execute(sql).fetchall()


def test_create_is_idempotent_and_switches_to_wal(store: AggregatesStore) -> None:
    store.create()
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names >= {
        "tweets_per_window",
        "hashtags_per_window",
        "languages_per_window",
        "late_tweets_per_window",
        "dead_letters",
        "batches",
        "query_progress",
    }


def test_batches_add_into_windows_and_the_mean_sentiment_follows(store: AggregatesStore) -> None:
    assert store.write_batch(
        batch(
            0,
            windows=[WindowCounts(W1, W1_END, 2, 1, 0, 0, 0.5)],
            hashtags=[KeyCount(W1, "kafka", 2)],
            languages=[KeyCount(W1, "en", 2)],
            max_event_time_ms=1000,
        )
    )
    assert store.write_batch(
        batch(
            1,
            windows=[WindowCounts(W1, W1_END, 3, 0, 1, 1, -0.2), WindowCounts(W2, W2_END, 1, 0, 0, 0, 0.9)],
            hashtags=[KeyCount(W1, "kafka", 1), KeyCount(W1, "spark", 1)],
            languages=[KeyCount(W1, "en", 1), KeyCount(W1, "und", 2), KeyCount(W2, "ja", 1)],
            max_event_time_ms=5000,
        )
    )
    assert store.windows() == [
        WindowRow(W1, W1_END, 5, 1, 1, 1, pytest.approx(0.3 / 5)),
        WindowRow(W2, W2_END, 1, 0, 0, 0, pytest.approx(0.9)),
    ]
    assert store.top_hashtags() == [Ranked("kafka", 3), Ranked("spark", 1)]
    assert store.languages() == [Ranked("en", 3), Ranked("und", 2), Ranked("ja", 1)]
    assert store.max_event_time_ms() == 5000


def test_a_replayed_batch_changes_nothing(store: AggregatesStore) -> None:
    first = batch(
        7,
        windows=[WindowCounts(W1, W1_END, 2, 1, 0, 0, 0.5)],
        hashtags=[KeyCount(W1, "kafka", 2)],
        languages=[KeyCount(W1, "en", 2)],
        late=[KeyCount(W2, "", 1)],
        dead_letters=[DeadLetter("tweets", 0, 12, "not JSON", "oops")],
    )
    assert store.write_batch(first) is True
    before = [table(store, f"SELECT * FROM {name}") for name in ("tweets_per_window", "hashtags_per_window")]
    assert store.write_batch(first) is False  # what Spark does after a crash between our commit and its own
    after = [table(store, f"SELECT * FROM {name}") for name in ("tweets_per_window", "hashtags_per_window")]
    assert after == before
    assert store.late_tweets() == 1
    assert store.dead_letter_count() == 1
    assert table(store, "SELECT query_id, batch_id FROM batches") == [("q1", 7)]
    assert store.latest_query_id() == "q1"
    assert store.is_committed("q1", 7)
    # Batch ids belong to a query (a checkpoint): another query's batch 7 is new.
    assert not store.is_committed("q2", 7)
    assert store.write_batch(batch(7, query_id="q2", windows=[WindowCounts(W1, W1_END, 1, 0, 0, 0, 0.0)]))
    assert store.windows()[0].tweets == 3
    assert store.latest_query_id() == "q2"


def test_a_failed_batch_leaves_no_trace(store: AggregatesStore) -> None:
    broken = batch(
        0,
        windows=[WindowCounts(W1, W1_END, 2, 1, 0, 0, 0.5)],
        hashtags=[KeyCount(W1, "kafka", 2)],
        dead_letters=[DeadLetter(None, 0, 1, "x", None)],  # type: ignore[arg-type]  # NOT NULL fails last
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.write_batch(broken)
    assert store.windows() == []
    assert store.top_hashtags() == []
    assert not store.is_committed("q1", 0)


def test_dead_letters_keep_a_bounded_raw_and_each_record_once(store: AggregatesStore) -> None:
    huge = "x" * (MAX_RAW_CHARS * 3)
    store.write_batch(batch(0, dead_letters=[DeadLetter("tweets", 1, 5, "oversize", huge)]))
    # The same record again (a new checkpoint re-reading the topic into the same store).
    store.write_batch(batch(0, query_id="q2", dead_letters=[DeadLetter("tweets", 1, 5, "oversize", huge)]))
    store.write_batch(batch(1, dead_letters=[DeadLetter("tweets", 0, 9, "not JSON", None)]))
    assert store.dead_letter_count() == 2
    sample = store.dead_letter_sample(limit=10)
    assert sample[0] == DeadLetter("tweets", 0, 9, "not JSON", None)  # the latest batch first
    assert sample[1].raw == "x" * MAX_RAW_CHARS
    assert store.dead_letter_sample(limit=1) == sample[:1]


def test_progress_rows_are_kept_per_batch_and_the_latest_is_found(store: AggregatesStore) -> None:
    assert store.latest_progress() is None
    first = Progress("q1", 0, 100, 50.0, 80.0, 1250, {}, {"0": 60, "1": 40}, recorded_at=1.0)
    second = Progress("q1", 1, 10, 5.0, 20.0, 500, {"0": 60, "1": 40}, {"0": 66, "1": 44}, recorded_at=2.0)
    store.record_progress(first)
    store.record_progress(second)
    store.record_progress(second)  # a replayed report replaces, never duplicates
    assert store.latest_progress() == second
    assert store.progress() == [second, first]


def test_progress_details_for_the_history_charts_round_trip(store: AggregatesStore) -> None:
    report = Progress(
        "q1", 3, 40, 20.0, 25.0, 1600, {"0": 10}, {"0": 50}, recorded_at=3.0,
        latest_offsets={"0": 70}, durations_ms={"addBatch": 1200, "walCommit": 80},
    )  # fmt: skip
    store.record_progress(report)
    assert store.latest_progress() == report


def test_a_version_2_store_reads_progress_without_details_and_gets_the_column_from_create(
    store: AggregatesStore,
) -> None:
    with sqlite3.connect(store.path) as connection:  # what version 2 left: no details column
        connection.execute("DROP TABLE query_progress")
        connection.execute(
            "CREATE TABLE query_progress (query_id TEXT NOT NULL, batch_id INTEGER NOT NULL, recorded_at REAL NOT NULL,"
            " input_rows INTEGER NOT NULL, input_rows_per_second REAL NOT NULL,"
            " processed_rows_per_second REAL NOT NULL,"
            " batch_duration_ms INTEGER NOT NULL, start_offsets TEXT NOT NULL, end_offsets TEXT NOT NULL,"
            " PRIMARY KEY (query_id, batch_id))"
        )
        connection.execute("INSERT INTO query_progress VALUES ('q', 0, 1.0, 5, 1.0, 2.0, 300, '{}', '{\"0\": 5}')")
        connection.execute("PRAGMA user_version = 2")
    old = Progress("q", 0, 5, 1.0, 2.0, 300, {}, {"0": 5}, recorded_at=1.0)
    assert store.progress() == [old]  # read as it is, before the job's next start upgrades it
    store.create()
    assert store.progress() == [old]
    store.record_progress(dataclasses.replace(old, batch_id=1, durations_ms={"addBatch": 9}))
    assert store.latest_progress().durations_ms == {"addBatch": 9}


def test_reads_filter_by_window_start(store: AggregatesStore) -> None:
    store.write_batch(
        batch(
            0,
            windows=[WindowCounts(W1, W1_END, 1, 0, 0, 0, 0.1), WindowCounts(W2, W2_END, 2, 0, 0, 0, 0.4)],
            hashtags=[KeyCount(W1, "a", 1), KeyCount(W2, "b", 2)],
            languages=[KeyCount(W1, "en", 1), KeyCount(W2, "en", 2)],
            late=[KeyCount(W1, "", 4)],
        )
    )
    since = datetime(2026, 11, 27, 18, 1, tzinfo=UTC)
    assert [w.window_start for w in store.windows(since=since)] == [W2]
    assert [w.window_start for w in store.windows(until=W2)] == [W1]
    assert store.sentiment_over_time(since=since)[0].sentiment_avg == pytest.approx(0.2)
    assert store.top_hashtags(since=since) == [Ranked("b", 2)]
    assert store.top_hashtags(limit=1) == [Ranked("b", 2)]
    assert store.languages(until=since) == [Ranked("en", 1)]
    assert store.late_tweets(since=since) == 0
    assert store.late_tweets() == 4


def test_reads_before_the_job_created_the_store_are_empty_and_create_nothing(tmp_path: Path) -> None:
    store = AggregatesStore(tmp_path / "missing.sqlite")
    assert store.windows() == []
    assert store.top_hashtags() == []
    assert store.languages() == []
    assert store.late_tweets() == 0
    assert store.dead_letter_count() == 0
    assert store.dead_letter_sample() == []
    assert store.latest_progress() is None
    assert not store.path.exists()


def test_a_reader_sees_the_last_commit_while_a_batch_is_being_written(store: AggregatesStore) -> None:
    store.write_batch(batch(0, windows=[WindowCounts(W1, W1_END, 1, 0, 0, 0, 0.0)]))
    writer = sqlite3.connect(store.path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE tweets_per_window SET tweets = 99")
        # WAL: the reader neither waits for the writer nor sees its uncommitted rows.
        assert store.windows()[0].tweets == 1
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert store.windows()[0].tweets == 99


def test_iso_utc_writes_window_starts_in_utc() -> None:
    assert iso_utc(datetime(2026, 11, 27, 18, 0, 5)) == "2026-11-27T18:00:05Z"
    moment = datetime.fromisoformat("2026-11-27T19:00:05+01:00")
    assert iso_utc(moment) == "2026-11-27T18:00:05Z"


# -- the hour rollups and the reads through them ---------------------------------------------


def minute(start: datetime, index: int) -> tuple[str, str]:
    return iso_utc(start + timedelta(minutes=index)), iso_utc(start + timedelta(minutes=index + 1))


def random_batches(
    rng: random.Random, start: datetime, minutes: int, per_batch: int, skewed: bool
) -> list[BatchResult]:
    """Batches over ``minutes`` one-minute windows from ``start``; each window is written by two batches."""
    batches = []
    for batch_id, first in enumerate(list(range(0, minutes, per_batch)) * 2):
        windows, hashtags, languages = [], [], []
        for index in range(first, min(minutes, first + per_batch)):
            key, end = minute(start, index)
            names = rng.sample(range(400), 60)
            # Skewed: a few big counts and a long tail, as hashtags are. Even: all ones, many ties.
            counts = [max(1, int(300 / (rank + 1) ** 1.1 * rng.uniform(0.5, 1.5))) if skewed else 1 for rank in names]
            hashtags += [KeyCount(key, f"tag{rank}", count) for rank, count in zip(names, counts, strict=True)]
            languages += [KeyCount(key, lang, rng.randint(1, 50)) for lang in rng.sample(["en", "ja", "es", "und"], 3)]
            windows.append(WindowCounts(key, end, sum(counts), 0, 0, 0, 0.0))
        batches.append(batch(batch_id, windows=windows, hashtags=hashtags, languages=languages))
    return batches


def group_by(store: AggregatesStore, source: str, column: str, since: str, until: str, limit: int) -> list[Ranked]:
    """The reference: one GROUP BY over the per-window table."""
    rows = table(
        store,
        f"""
        SELECT {column}, SUM(tweets) AS total FROM {source} WHERE window_start >= '{since}' AND window_start < '{until}'
        GROUP BY {column} ORDER BY total DESC, {column} LIMIT {limit}
        """,
    )
    return [Ranked(*row) for row in rows]


def rollup_matches_windows(store: AggregatesStore) -> None:
    for table_name, rollup, column in (
        ("hashtags_per_window", "hashtags_per_hour", "hashtag"),
        ("languages_per_window", "languages_per_hour", "lang"),
    ):
        expected = table(
            store,
            f"""
            SELECT substr(window_start, 1, 13) || ':00:00Z', {column}, SUM(tweets) FROM {table_name}
            GROUP BY 1, 2 ORDER BY 1, 2
            """,
        )
        assert table(store, f"SELECT hour_start, {column}, tweets FROM {rollup} ORDER BY 1, 2") == expected


def test_hour_rollups_equal_the_sums_over_the_windows_after_batches_a_replay_and_a_failure(
    store: AggregatesStore,
) -> None:
    rng = random.Random(5)
    batches = random_batches(rng, datetime(2026, 11, 27, 17, 50, tzinfo=UTC), minutes=80, per_batch=7, skewed=True)
    for result in batches:
        assert store.write_batch(result)
    assert store.write_batch(batches[3]) is False  # replayed after a crash: the rollup is not added to twice
    broken = batch(99, hashtags=[KeyCount(W1, "kafka", 5)], dead_letters=[DeadLetter(None, 0, 1, "x", None)])  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        store.write_batch(broken)  # rolled back with the rest of its batch
    rollup_matches_windows(store)
    hours = table(store, "SELECT DISTINCT hour_start FROM hashtags_per_hour ORDER BY 1")
    assert hours == [("2026-11-27T17:00:00Z",), ("2026-11-27T18:00:00Z",), ("2026-11-27T19:00:00Z",)]


@pytest.mark.parametrize("skewed", [True, False])
def test_top_hashtags_and_languages_over_any_range_equal_one_group_by(store: AggregatesStore, skewed: bool) -> None:
    start = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)
    rng = random.Random(11)
    for result in random_batches(rng, start, minutes=200, per_batch=13, skewed=skewed):
        store.write_batch(result)
    starts = [minute(start, index)[0] for index in range(200)]
    ranges: list[tuple[str | None, str | None]] = [
        (None, None),
        (starts[30], None),  # on the hour, to the end
        (None, starts[90]),
        (starts[31], starts[150]),
        ("2026-11-27T17:29:30Z", "2026-11-27T18:00:01Z"),  # not on a minute
        ("2026-11-27", "2026-11-27T19"),  # not window starts: no rollup, the same answer
        ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"),
        (starts[100], starts[100]),  # empty
        (starts[199], None),
    ]
    ranges += [tuple(sorted(rng.sample(starts, 2))) for _ in range(6)]  # type: ignore[misc]
    for since, until in ranges:
        low, high = since or "", until or "~"
        for limit in (1, 10, 500):
            expected = group_by(store, "hashtags_per_window", "hashtag", low, high, limit)
            assert store.top_hashtags(since, until, limit=limit) == expected, (since, until, limit)
        assert store.languages(since, until) == group_by(store, "languages_per_window", "lang", low, high, -1)
    assert store.top_hashtags(limit=0) == []
    assert store.top_hashtags(limit=-1) == group_by(store, "hashtags_per_window", "hashtag", "", "~", -1)
    # Skewed counts (as hashtags are) are decided by the bounds, without summing every hashtag;
    # even ones (all ties) are too close for them: then every hashtag is summed, same answer.
    with sqlite3.connect(store.path) as connection:
        decided = sqlite_rollups.top_by_bounds(
            connection, sqlite_rollups.range_parts("hashtags_per_window", starts[10], "~"), "hashtag", 10
        )
    assert (decided is not None) is skewed


def test_a_version_1_store_reads_without_rollups_and_gets_them_from_create(store: AggregatesStore) -> None:
    rng = random.Random(7)
    for result in random_batches(rng, datetime(2026, 11, 27, 17, 40, tzinfo=UTC), minutes=45, per_batch=9, skewed=True):
        store.write_batch(result)
    # What version 1 left: no rollups, none of the new indexes.
    with sqlite3.connect(store.path, isolation_level=None) as connection:
        for name in ("hashtags_per_hour", "languages_per_hour"):
            connection.execute(f"DROP TABLE {name}")
        for name in ("hashtags_per_window_ranked", "query_progress_latest", "dead_letters_latest"):
            connection.execute(f"DROP INDEX {name}")
        connection.execute("PRAGMA user_version = 1")
    since = "2026-11-27T17:45:00Z"
    expected = group_by(store, "hashtags_per_window", "hashtag", since, "~", 10)
    assert store.top_hashtags(since, limit=10) == expected  # the console reads before the job migrates
    store.create()  # the job starts
    assert table(store, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    rollup_matches_windows(store)
    assert store.top_hashtags(since, limit=10) == expected
    assert store.languages(since) == group_by(store, "languages_per_window", "lang", since, "~", -1)


def test_a_window_start_that_is_not_iso_utc_is_refused(store: AggregatesStore) -> None:
    with pytest.raises(ValueError, match="not an ISO 8601 UTC time"):
        store.write_batch(batch(0, hashtags=[KeyCount("2026-11-27 18:00:00", "kafka", 1)]))
    assert not store.is_committed("q1", 0)
    assert table(store, "SELECT COUNT(*) FROM hashtags_per_window") == [(0,)]

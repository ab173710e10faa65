"""The aggregates store: one SQLite file the Spark consumer writes and the console reads.

WAL mode lets the console read while the job writes. Every micro-batch is one transaction that also records its
batch id, so a batch Spark replays after a crash changes nothing. The tables: docs/design.md, "The aggregates store";
the hourly rollups that keep long reads fast: "The SQLite store" there, and ``backend.aggregates.sqlite_rollups``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from backend.aggregates.records import (
    MAX_RAW_CHARS,
    BatchResult,
    DeadLetter,
    KeyCount,
    Progress,
    Ranked,
    SentimentPoint,
    TimeBound,
    WindowCounts,
    WindowRow,
    iso_utc,
)
from backend.aggregates.sqlite_rollups import ROLLUPS, hour_of, range_parts, top_by_bounds

# 2: hour rollups of hashtags and languages, and indexes for the dashboard's reads. A store of
# version 1 gets them (the rollups filled from the per-window tables) the next time create() runs.
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tweets_per_window (
    window_start  TEXT PRIMARY KEY,
    window_end    TEXT NOT NULL,
    tweets        INTEGER NOT NULL,
    retweets      INTEGER NOT NULL,
    replies       INTEGER NOT NULL,
    quotes        INTEGER NOT NULL,
    sentiment_sum REAL NOT NULL,
    sentiment_avg REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hashtags_per_window (
    window_start TEXT NOT NULL,
    hashtag      TEXT NOT NULL,
    tweets       INTEGER NOT NULL,
    PRIMARY KEY (window_start, hashtag)
);
CREATE TABLE IF NOT EXISTS languages_per_window (
    window_start TEXT NOT NULL,
    lang         TEXT NOT NULL,
    tweets       INTEGER NOT NULL,
    PRIMARY KEY (window_start, lang)
);
CREATE TABLE IF NOT EXISTS late_tweets_per_window (
    window_start TEXT PRIMARY KEY,
    tweets       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    topic     TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset    INTEGER NOT NULL,
    error     TEXT NOT NULL,
    raw       TEXT,
    batch_id  INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, offset)
);
CREATE TABLE IF NOT EXISTS batches (
    query_id          TEXT NOT NULL,
    batch_id          INTEGER NOT NULL,
    committed_at      REAL NOT NULL,
    tweets            INTEGER NOT NULL,
    late_tweets       INTEGER NOT NULL,
    dead_letters      INTEGER NOT NULL,
    max_event_time_ms INTEGER,
    watermark_ms      INTEGER,
    PRIMARY KEY (query_id, batch_id)
);
CREATE INDEX IF NOT EXISTS batches_by_max_event_time ON batches (max_event_time_ms);
CREATE TABLE IF NOT EXISTS query_progress (
    query_id                  TEXT NOT NULL,
    batch_id                  INTEGER NOT NULL,
    recorded_at               REAL NOT NULL,
    input_rows                INTEGER NOT NULL,
    input_rows_per_second     REAL NOT NULL,
    processed_rows_per_second REAL NOT NULL,
    batch_duration_ms         INTEGER NOT NULL,
    start_offsets             TEXT NOT NULL,
    end_offsets               TEXT NOT NULL,
    details                   TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (query_id, batch_id)
);
CREATE TABLE IF NOT EXISTS hashtags_per_hour (
    hour_start TEXT NOT NULL,
    hashtag    TEXT NOT NULL,
    tweets     INTEGER NOT NULL,
    PRIMARY KEY (hour_start, hashtag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS languages_per_hour (
    hour_start TEXT NOT NULL,
    lang       TEXT NOT NULL,
    tweets     INTEGER NOT NULL,
    PRIMARY KEY (hour_start, lang)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hashtags_per_window_ranked ON hashtags_per_window (window_start, tweets DESC, hashtag);
CREATE INDEX IF NOT EXISTS hashtags_per_hour_ranked ON hashtags_per_hour (hour_start, tweets DESC);
CREATE INDEX IF NOT EXISTS query_progress_latest ON query_progress (recorded_at, batch_id);
CREATE INDEX IF NOT EXISTS dead_letters_latest ON dead_letters (batch_id DESC, partition, offset DESC);
"""


def _bound(value: TimeBound, default: str) -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else iso_utc(value)


def default_store_path(state_dir: Path) -> Path:
    """Where the console's store lives: the consumer's default ``--store``, and what the pages read."""
    return state_dir / "aggregates.sqlite"


class AggregatesStore:
    """The SQLite aggregates store at ``path``. Each call opens its own short connection."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # -- connections -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: transactions are begun explicitly, so their extent is visible.
        connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            # FULL: a committed batch survives a power cut too; Spark's checkpoint, written
            # after our commit, must never be ahead of the store.
            connection.execute("PRAGMA synchronous = FULL")
            yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for reading, or None while the job has not created the store yet."""
        if not self.path.exists():
            yield None
            return
        with self._connect() as connection:
            yield connection

    def create(self) -> None:
        """Create the file and its tables (idempotent) and switch it to WAL mode."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            # WAL: readers see the last committed batch while the job writes the next one.
            connection.execute("PRAGMA journal_mode = WAL")
            # One transaction: a reader never sees half of the tables, nor rollups half filled.
            connection.execute("BEGIN IMMEDIATE")
            try:
                (version,) = connection.execute("PRAGMA user_version").fetchone()
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                columns = {row[1] for row in connection.execute("PRAGMA table_info(query_progress)")}
                if "details" not in columns:  # written by version 2: its reports have no details
                    connection.execute("ALTER TABLE query_progress ADD COLUMN details TEXT NOT NULL DEFAULT '{}'")
                if version < 2:
                    # Written by version 1 (or by version 1 code after a downgrade): the rollups
                    # are rebuilt from the per-window tables.
                    for table, (rollup, column) in ROLLUPS.items():
                        connection.execute(f"DELETE FROM {rollup}")
                        connection.execute(
                            f"""
                            INSERT INTO {rollup} (hour_start, {column}, tweets)
                            SELECT substr(window_start, 1, 13) || ':00:00Z', {column}, SUM(tweets)
                            FROM {table} GROUP BY 1, 2
                            """
                        )
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    # -- the job's writes ------------------------------------------------------------------

    def is_committed(self, query_id: str, batch_id: int) -> bool:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT 1 FROM batches WHERE query_id = ? AND batch_id = ?", (query_id, batch_id)
            ).fetchone()
        return row is not None

    def latest_query_id(self) -> str | None:
        """The query (Spark checkpoint) that wrote the latest batch, if any."""
        with self._connect() as connection:
            row = connection.execute("SELECT query_id FROM batches ORDER BY committed_at DESC LIMIT 1").fetchone()
        return None if row is None else row[0]

    def window_length_ms(self) -> int | None:
        """The length of the windows the store holds (None while it holds none); reads only."""
        with self._read() as connection:
            if connection is None:
                return None
            try:
                row = connection.execute("SELECT window_start, window_end FROM tweets_per_window LIMIT 1").fetchone()
            except sqlite3.OperationalError:  # a file without our tables yet
                return None
        if row is None:
            return None
        start, end = (datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ") for value in row)
        return int((end - start).total_seconds() * 1000)

    def max_event_time_ms(self) -> int | None:
        """The latest event time of any tweet written so far (the watermark's base)."""
        with self._connect() as connection:
            (value,) = connection.execute("SELECT MAX(max_event_time_ms) FROM batches").fetchone()
        return value

    def write_batch(self, result: BatchResult) -> bool:
        """Add one micro-batch to the tables in one transaction; False when it was already written.

        The check and the writes share the transaction (BEGIN IMMEDIATE takes the write lock
        first), so even two writers racing on one batch id apply it once. The hour rollups are
        added to in the same transaction. A hashtag or language row whose window start is not
        ``iso_utc``'s form raises ValueError (its hour would be unknown) and nothing is written.
        """
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                seen = connection.execute(
                    "SELECT 1 FROM batches WHERE query_id = ? AND batch_id = ?", (result.query_id, result.batch_id)
                ).fetchone()
                if seen is not None:
                    connection.execute("ROLLBACK")
                    return False
                self._apply(connection, result)
                connection.execute("COMMIT")
                return True
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    @staticmethod
    def _apply(connection: sqlite3.Connection, result: BatchResult) -> None:
        """Add ``result`` to every table; the caller holds the transaction."""
        _add_windows(connection, result.windows)
        _add_key_counts(connection, "hashtags_per_window", "hashtag", result.hashtags)
        _add_key_counts(connection, "languages_per_window", "lang", result.languages)
        connection.executemany(
            """
            INSERT INTO late_tweets_per_window (window_start, tweets) VALUES (?, ?)
            ON CONFLICT (window_start) DO UPDATE SET tweets = tweets + excluded.tweets
            """,
            [(r.window_start, r.tweets) for r in result.late],
        )
        _add_dead_letters(connection, result.batch_id, result.dead_letters)
        _add_ledger_row(connection, result)

    def record_progress(self, progress: Progress) -> None:
        """Keep Spark's progress report of a batch (replacing an earlier report of the same batch)."""
        with self._connect() as connection:
            connection.execute(
                """
                INSERT OR REPLACE INTO query_progress
                    (query_id, batch_id, recorded_at, input_rows, input_rows_per_second,
                     processed_rows_per_second, batch_duration_ms, start_offsets, end_offsets, details)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    progress.query_id,
                    progress.batch_id,
                    progress.recorded_at or time.time(),
                    progress.input_rows,
                    progress.input_rows_per_second,
                    progress.processed_rows_per_second,
                    progress.batch_duration_ms,
                    json.dumps(progress.start_offsets, sort_keys=True),
                    json.dumps(progress.end_offsets, sort_keys=True),
                    json.dumps(_details(progress), sort_keys=True),
                ),
            )

    # -- the dashboard's reads ---------------------------------------------------------------

    def windows(self, since: TimeBound = None, until: TimeBound = None) -> list[WindowRow]:
        """Windows whose start is in [since, until), oldest first."""
        with self._read() as connection:
            if connection is None:
                return []
            rows = connection.execute(
                """
                SELECT window_start, window_end, tweets, retweets, replies, quotes, sentiment_avg
                FROM tweets_per_window WHERE window_start >= ? AND window_start < ? ORDER BY window_start
                """,
                (_bound(since, ""), _bound(until, "~")),
            ).fetchall()
        return [WindowRow(*row) for row in rows]

    def latest_window_start(self) -> str | None:
        """The start of the newest window (time ranges on the dashboard count back from it)."""
        with self._read() as connection:
            if connection is None:
                return None
            (latest,) = connection.execute("SELECT MAX(window_start) FROM tweets_per_window").fetchone()
        return latest

    def sentiment_over_time(self, since: TimeBound = None, until: TimeBound = None) -> list[SentimentPoint]:
        return [SentimentPoint(w.window_start, w.sentiment_avg, w.tweets) for w in self.windows(since, until)]

    def _ranked(self, table: str, column: str, since: TimeBound, until: TimeBound, limit: int | None) -> list[Ranked]:
        if limit is not None and limit < 0:
            limit = None
        if limit == 0:
            return []
        with self._read() as connection:
            if connection is None:
                return []
            # One read transaction: every statement below sees the same committed batches.
            connection.execute("BEGIN")
            try:
                # Version 1 (the job has not run create() since the upgrade): no rollup, no ranked index.
                current = connection.execute("PRAGMA user_version").fetchone()[0] >= 2
                first, last = _bound(since, ""), _bound(until, "~")
                parts = range_parts(table, first, last) if current else [(table, "window_start", first, last)]
                if current and limit is not None:
                    top = top_by_bounds(connection, parts, column, limit)
                    if top is not None:
                        return top
                selects = " UNION ALL ".join(
                    f"SELECT {column}, tweets FROM {name} WHERE {key} >= ? AND {key} < ?" for name, key, _, _ in parts
                )
                rows = connection.execute(
                    f"""
                    SELECT {column}, SUM(tweets) AS total FROM ({selects})
                    GROUP BY {column} ORDER BY total DESC, {column} LIMIT ?
                    """,
                    (*(bound for part in parts for bound in part[2:]), -1 if limit is None else limit),
                ).fetchall()
            finally:
                connection.execute("COMMIT")
        return [Ranked(key, total) for key, total in rows]

    def top_hashtags(self, since: TimeBound = None, until: TimeBound = None, limit: int = 10) -> list[Ranked]:
        """The most tweeted hashtags over windows starting in [since, until), most first."""
        return self._ranked("hashtags_per_window", "hashtag", since, until, limit)

    def languages(self, since: TimeBound = None, until: TimeBound = None) -> list[Ranked]:
        """Tweets per language over windows starting in [since, until), most first."""
        return self._ranked("languages_per_window", "lang", since, until, None)

    def late_tweets(self, since: TimeBound = None, until: TimeBound = None) -> int:
        """Valid tweets that came after the watermark had closed their window."""
        with self._read() as connection:
            if connection is None:
                return 0
            (total,) = connection.execute(
                """
                SELECT COALESCE(SUM(tweets), 0) FROM late_tweets_per_window
                WHERE window_start >= ? AND window_start < ?
                """,
                (_bound(since, ""), _bound(until, "~")),
            ).fetchone()
        return int(total)

    def dead_letter_count(self) -> int:
        with self._read() as connection:
            if connection is None:
                return 0
            (count,) = connection.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        return int(count)

    def dead_letter_sample(self, limit: int = 20) -> list[DeadLetter]:
        """The latest dead letters (by the batch that found them, then offset)."""
        with self._read() as connection:
            if connection is None:
                return []
            rows = connection.execute(
                """
                SELECT topic, partition, offset, error, raw FROM dead_letters
                ORDER BY batch_id DESC, partition, offset DESC LIMIT ?
                """,
                (limit,),
            ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def progress(self, limit: int = 100) -> list[Progress]:
        """The latest progress reports, newest first."""
        with self._read() as connection:
            if connection is None:
                return []
            columns = {row[1] for row in connection.execute("PRAGMA table_info(query_progress)")}
            # A version 2 store (its job not restarted since) has no details column yet.
            details = "details" if "details" in columns else "NULL"
            rows = connection.execute(
                f"""
                SELECT query_id, batch_id, input_rows, input_rows_per_second, processed_rows_per_second,
                       batch_duration_ms, start_offsets, end_offsets, recorded_at, {details}
                FROM query_progress ORDER BY recorded_at DESC, batch_id DESC LIMIT ?
                """,
                (limit,),
            ).fetchall()
        return [_progress_row(row) for row in rows]

    def progress_since(self, since: float, max_rows: int = 600) -> list[Progress]:
        """The progress reports recorded since ``since`` (seconds since the epoch), oldest first; beyond
        ``max_rows`` an evenly spaced sample of them (the newest always in), for charts of any range."""
        with self._read() as connection:
            if connection is None:
                return []
            columns = {row[1] for row in connection.execute("PRAGMA table_info(query_progress)")}
            details = "details" if "details" in columns else "NULL"
            # The ids through the (recorded_at, batch_id) index alone, newest first, every step-th kept (a window
            # function over them costs 3x); then only the rows kept are read in full.
            ids = [
                row[0]
                for row in connection.execute(
                    "SELECT rowid FROM query_progress WHERE recorded_at >= ? ORDER BY recorded_at DESC, batch_id DESC",
                    (since,),
                )
            ]
            step = max(1, -(-len(ids) // max_rows))  # ceiling division
            kept = ids[::step]
            rows = connection.execute(
                f"""
                SELECT query_id, batch_id, input_rows, input_rows_per_second, processed_rows_per_second,
                       batch_duration_ms, start_offsets, end_offsets, recorded_at, {details}
                FROM query_progress WHERE rowid IN (SELECT value FROM json_each(?)) ORDER BY recorded_at, batch_id
                """,
                (json.dumps(kept),),
            ).fetchall()
        return [_progress_row(row) for row in rows]

    def watermark_gaps(self, query_id: str, first_batch: int) -> dict[int, int]:
        """Per batch of ``query_id`` from ``first_batch`` on: its newest event time minus the watermark it
        was judged against, in ms (the job's ledger; batches without tweets have none)."""
        with self._read() as connection:
            if connection is None:
                return {}
            rows = connection.execute(
                """
                SELECT batch_id, max_event_time_ms - watermark_ms FROM batches
                WHERE query_id = ? AND batch_id >= ? AND max_event_time_ms IS NOT NULL AND watermark_ms IS NOT NULL
                """,
                (query_id, first_batch),
            ).fetchall()
        return {int(batch): int(gap) for batch, gap in rows}

    def latest_progress(self) -> Progress | None:
        latest = self.progress(limit=1)
        return latest[0] if latest else None


def _progress_row(row: Sequence[Any]) -> Progress:
    return Progress(
        query_id=row[0],
        batch_id=row[1],
        input_rows=row[2],
        input_rows_per_second=row[3],
        processed_rows_per_second=row[4],
        batch_duration_ms=row[5],
        start_offsets=json.loads(row[6]),
        end_offsets=json.loads(row[7]),
        recorded_at=row[8],
        **_from_details(row[9]),
    )


def _details(progress: Progress) -> dict[str, Any]:
    return {
        "latest_offsets": progress.latest_offsets,
        "durations_ms": progress.durations_ms,
    }


def _from_details(text: str | None) -> dict[str, Any]:
    """The Progress fields kept in the ``details`` column (none from a store written before version 3)."""
    details = json.loads(text or "{}")
    return {
        "latest_offsets": details.get("latest_offsets") or {},
        "durations_ms": details.get("durations_ms") or {},
    }


# -- the parts of one micro-batch's transaction ---------------------------------------------


def _add_windows(connection: sqlite3.Connection, windows: Sequence[WindowCounts]) -> None:
    connection.executemany(
        """
        INSERT INTO tweets_per_window
            (window_start, window_end, tweets, retweets, replies, quotes, sentiment_sum, sentiment_avg)
        VALUES (:window_start, :window_end, :tweets, :retweets, :replies, :quotes, :sentiment_sum,
                :sentiment_sum / :tweets)
        ON CONFLICT (window_start) DO UPDATE SET
            tweets = tweets + excluded.tweets,
            retweets = retweets + excluded.retweets,
            replies = replies + excluded.replies,
            quotes = quotes + excluded.quotes,
            sentiment_sum = sentiment_sum + excluded.sentiment_sum,
            sentiment_avg = (sentiment_sum + excluded.sentiment_sum) / (tweets + excluded.tweets)
        """,
        # On the right of SET, bare column names are the old values of the row.
        [asdict(w) for w in windows],
    )


def _add_key_counts(connection: sqlite3.Connection, table: str, column: str, rows: Sequence[KeyCount]) -> None:
    """Add tweets per (window, key) to ``table`` and the same counts per hour to its rollup."""
    connection.executemany(
        f"""
        INSERT INTO {table} (window_start, {column}, tweets) VALUES (?, ?, ?)
        ON CONFLICT (window_start, {column}) DO UPDATE SET tweets = tweets + excluded.tweets
        """,
        [(r.window_start, r.key, r.tweets) for r in rows],
    )
    rollup = ROLLUPS[table][0]
    seen: dict[str, str] = {}
    hours: Counter[tuple[str, str]] = Counter()
    for r in rows:
        hours[(hour_of(r.window_start, seen), r.key)] += r.tweets
    connection.executemany(
        f"""
        INSERT INTO {rollup} (hour_start, {column}, tweets) VALUES (?, ?, ?)
        ON CONFLICT (hour_start, {column}) DO UPDATE SET tweets = tweets + excluded.tweets
        """,
        [(hour, key, tweets) for (hour, key), tweets in hours.items()],
    )


def _add_dead_letters(connection: sqlite3.Connection, batch_id: int, dead_letters: Sequence[DeadLetter]) -> None:
    # DO NOTHING: a record that is already a dead letter (a store reused with a new
    # checkpoint that re-reads the topic) stays one. (Not OR IGNORE: that would also
    # drop a row breaking NOT NULL, silently.)
    connection.executemany(
        """
        INSERT INTO dead_letters (topic, partition, offset, error, raw, batch_id) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (topic, partition, offset) DO NOTHING
        """,
        [
            (
                d.topic,
                d.partition,
                d.offset,
                d.error,
                None if d.raw is None else d.raw[:MAX_RAW_CHARS],
                batch_id,
            )
            for d in dead_letters
        ],
    )


def _add_ledger_row(connection: sqlite3.Connection, result: BatchResult) -> None:
    """The batch's row in ``batches``: the exactly-once ledger, with the time of its commit."""
    connection.execute(
        """
        INSERT INTO batches (query_id, batch_id, committed_at, tweets, late_tweets, dead_letters,
                             max_event_time_ms, watermark_ms)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            result.query_id,
            result.batch_id,
            time.time(),  # just before COMMIT: what the end-to-end latency is measured to
            sum(w.tweets for w in result.windows),
            sum(r.tweets for r in result.late),
            len(result.dead_letters),
            result.max_event_time_ms,
            result.watermark_ms,
        ),
    )

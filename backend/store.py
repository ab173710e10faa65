"""The aggregates store: one SQLite file the Spark consumer writes and the dashboard reads.

Tables (DESIGN.md, "Aggregates store"):

- ``tweets_per_window``: per event-time window, tweets, retweets, replies, quotes and the
  mean VADER compound sentiment (``sentiment_sum`` is kept so later batches can add to it);
- ``hashtags_per_window`` and ``languages_per_window``: tweets per hashtag (lower-case,
  without ``#``) and per language in each window;
- ``late_tweets_per_window``: valid tweets that arrived after the watermark had closed their
  window; counted here instead of in the windows the dashboard already shows as final;
- ``dead_letters``: records that break the topic message contract, with the reason;
- ``batches``: one row per micro-batch written, with the time of its commit: the exactly-once
  ledger (a batch already in it is never applied again);
- ``query_progress``: Spark's progress report of each micro-batch.

Window starts are ISO 8601 UTC strings (``2026-11-27T18:00:00Z``): they sort as times do.
WAL mode lets the dashboard read while the job writes. Every micro-batch is one transaction
that also records its batch id, so a batch Spark replays after a crash changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

SCHEMA_VERSION = 1
# A dead letter keeps at most this many characters of its value: enough to see what is
# wrong, small enough that a flood of 1 MB garbage cannot fill the disk.
MAX_RAW_CHARS = 2000

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
    PRIMARY KEY (query_id, batch_id)
);
"""


# -- what a micro-batch writes -----------------------------------------------------------


@dataclass(frozen=True)
class WindowCounts:
    """The tweets of one micro-batch that fall into one window (added to the window's totals)."""

    window_start: str
    window_end: str
    tweets: int
    retweets: int
    replies: int
    quotes: int
    sentiment_sum: float


@dataclass(frozen=True)
class KeyCount:
    """Tweets per (window, key): a hashtag, a language, or nothing for late tweets."""

    window_start: str
    key: str
    tweets: int


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    error: str
    raw: str | None


@dataclass(frozen=True)
class BatchResult:
    """Everything one micro-batch adds to the store, written in one transaction."""

    query_id: str
    batch_id: int
    windows: Sequence[WindowCounts] = ()
    hashtags: Sequence[KeyCount] = ()
    languages: Sequence[KeyCount] = ()
    late: Sequence[KeyCount] = ()  # key unused: late tweets per window
    dead_letters: Sequence[DeadLetter] = ()
    max_event_time_ms: int | None = None  # the latest event time among the batch's valid tweets
    watermark_ms: int | None = None  # the watermark the batch was judged against


@dataclass(frozen=True)
class Progress:
    """Spark's progress report of one micro-batch."""

    query_id: str
    batch_id: int
    input_rows: int
    input_rows_per_second: float
    processed_rows_per_second: float
    batch_duration_ms: int
    start_offsets: dict[str, int] = field(default_factory=dict)  # partition -> first offset read
    end_offsets: dict[str, int] = field(default_factory=dict)  # partition -> offset after the last one read
    recorded_at: float = 0.0  # seconds since the epoch


# -- what the dashboard reads ------------------------------------------------------------


@dataclass(frozen=True)
class WindowRow:
    window_start: str
    window_end: str
    tweets: int
    retweets: int
    replies: int
    quotes: int
    sentiment_avg: float


@dataclass(frozen=True)
class SentimentPoint:
    window_start: str
    sentiment_avg: float
    tweets: int


@dataclass(frozen=True)
class Ranked:
    """A hashtag or a language with its tweets over a time range."""

    key: str
    tweets: int


TimeBound = datetime | str | None


def iso_utc(moment: datetime) -> str:
    """``moment`` as the store writes window starts: ``2026-11-27T18:00:00Z`` (naive means UTC)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _bound(value: TimeBound, default: str) -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else iso_utc(value)


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
            # One transaction: a reader never sees half of the tables.
            connection.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")

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

    def max_event_time_ms(self) -> int | None:
        """The latest event time of any tweet written so far (the watermark's base)."""
        with self._connect() as connection:
            (value,) = connection.execute("SELECT MAX(max_event_time_ms) FROM batches").fetchone()
        return value

    def write_batch(self, result: BatchResult) -> bool:
        """Add one micro-batch to the tables in one transaction; False when it was already written.

        The check and the writes share the transaction (BEGIN IMMEDIATE takes the write lock
        first), so even two writers racing on one batch id apply it once.
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
            [asdict(w) for w in result.windows],
        )
        for table, column, rows in (
            ("hashtags_per_window", "hashtag", result.hashtags),
            ("languages_per_window", "lang", result.languages),
        ):
            connection.executemany(
                f"""
                INSERT INTO {table} (window_start, {column}, tweets) VALUES (?, ?, ?)
                ON CONFLICT (window_start, {column}) DO UPDATE SET tweets = tweets + excluded.tweets
                """,
                [(r.window_start, r.key, r.tweets) for r in rows],
            )
        connection.executemany(
            """
            INSERT INTO late_tweets_per_window (window_start, tweets) VALUES (?, ?)
            ON CONFLICT (window_start) DO UPDATE SET tweets = tweets + excluded.tweets
            """,
            [(r.window_start, r.tweets) for r in result.late],
        )
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
                    result.batch_id,
                )
                for d in result.dead_letters
            ],
        )
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

    def record_progress(self, progress: Progress) -> None:
        """Keep Spark's progress report of a batch (replacing an earlier report of the same batch)."""
        with self._connect() as connection:
            connection.execute(
                """
                INSERT OR REPLACE INTO query_progress
                    (query_id, batch_id, recorded_at, input_rows, input_rows_per_second,
                     processed_rows_per_second, batch_duration_ms, start_offsets, end_offsets)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
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

    def sentiment_over_time(self, since: TimeBound = None, until: TimeBound = None) -> list[SentimentPoint]:
        return [SentimentPoint(w.window_start, w.sentiment_avg, w.tweets) for w in self.windows(since, until)]

    def _ranked(self, table: str, column: str, since: TimeBound, until: TimeBound, limit: int | None) -> list[Ranked]:
        with self._read() as connection:
            if connection is None:
                return []
            rows = connection.execute(
                f"""
                SELECT {column}, SUM(tweets) AS total FROM {table}
                WHERE window_start >= ? AND window_start < ?
                GROUP BY {column} ORDER BY total DESC, {column} LIMIT ?
                """,
                (_bound(since, ""), _bound(until, "~"), -1 if limit is None else limit),
            ).fetchall()
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
            rows = connection.execute(
                """
                SELECT query_id, batch_id, input_rows, input_rows_per_second, processed_rows_per_second,
                       batch_duration_ms, start_offsets, end_offsets, recorded_at
                FROM query_progress ORDER BY recorded_at DESC, batch_id DESC LIMIT ?
                """,
                (limit,),
            ).fetchall()
        return [
            Progress(
                query_id=row[0],
                batch_id=row[1],
                input_rows=row[2],
                input_rows_per_second=row[3],
                processed_rows_per_second=row[4],
                batch_duration_ms=row[5],
                start_offsets=json.loads(row[6]),
                end_offsets=json.loads(row[7]),
                recorded_at=row[8],
            )
            for row in rows
        ]

    def latest_progress(self) -> Progress | None:
        latest = self.progress(limit=1)
        return latest[0] if latest else None

"""The aggregates store: one SQLite file the Spark consumer writes and the dashboard reads.

Tables (docs/design.md, "The aggregates store"):

- ``tweets_per_window``: per event-time window, tweets, retweets, replies, quotes and the
  mean VADER compound sentiment (``sentiment_sum`` is kept so later batches can add to it);
- ``hashtags_per_window`` and ``languages_per_window``: tweets per hashtag (lower-case,
  without ``#``) and per language in each window;
- ``late_tweets_per_window``: valid tweets that arrived after the watermark had closed their
  window; counted here instead of in the windows the dashboard already shows as final;
- ``dead_letters``: records that break the topic message contract, with the reason;
- ``batches``: one row per micro-batch written, with the time of its commit: the exactly-once
  ledger (a batch already in it is never applied again);
- ``query_progress``: Spark's progress report of each micro-batch;
- ``hashtags_per_hour`` and ``languages_per_hour``: the same counts summed per UTC hour of the
  window start, kept in the batch's transaction. Reads over a range take its whole hours from
  these and only the minutes at either end from the per-window tables, so a day of one-minute
  windows with 1 000 hashtags each (1.44 M rows) is read as ~24 times the hour's rows plus at most
  two hours of windows; the top hashtags are then found without summing every hashtag (see
  ``_top_by_bounds``).

Window starts are ISO 8601 UTC strings (``2026-11-27T18:00:00Z``): they sort as times do.
WAL mode lets the dashboard read while the job writes. Every micro-batch is one transaction
that also records its batch id, so a batch Spark replays after a crash changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

# 2: hour rollups of hashtags and languages, and indexes for the dashboard's reads. A store of
# version 1 gets them (the rollups filled from the per-window tables) the next time create() runs.
SCHEMA_VERSION = 2
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

# The per-window tables that have an hour rollup: table -> (rollup, key column).
_ROLLUPS = {
    "hashtags_per_window": ("hashtags_per_hour", "hashtag"),
    "languages_per_window": ("languages_per_hour", "lang"),
}
# What window starts look like (iso_utc); the hour of one is its first 13 characters.
_WINDOW_START = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


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


def _hour_of(window_start: str, hours: dict[str, str]) -> str:
    """The UTC hour ``window_start`` falls in, as a window start (``hours`` remembers those seen)."""
    hour = hours.get(window_start)
    if hour is None:
        if not _WINDOW_START.fullmatch(window_start):
            raise ValueError(f"window start {window_start!r} is not an ISO 8601 UTC time like 2026-11-27T18:00:00Z")
        hour = hours[window_start] = window_start[:13] + ":00:00Z"
    return hour


def _whole_hours(since: str, until: str) -> tuple[str, str] | None:
    """``(first, end)``: the whole UTC hours inside [since, until) are those starting in [first, end).

    None when there is none, or when a bound is not a window start (then no rollup is used).
    ``""`` and ``"~"`` (no bound) stay as they are.
    """
    if (since and not _WINDOW_START.fullmatch(since)) or (until != "~" and not _WINDOW_START.fullmatch(until)):
        return None
    first = since[:13] + ":00:00Z" if since else since
    if first != since:
        try:
            first = iso_utc(datetime.strptime(first, "%Y-%m-%dT%H:%M:%SZ") + timedelta(hours=1))
        except (OverflowError, ValueError):  # in year 9999, or not a date at all: no rollup
            return None
    end = until if until == "~" else until[:13] + ":00:00Z"
    return (first, end) if first < end else None


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
                if version < 2:
                    # Written by version 1 (or by version 1 code after a downgrade): the rollups
                    # are rebuilt from the per-window tables.
                    for table, (rollup, column) in _ROLLUPS.items():
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
            rollup = _ROLLUPS[table][0]
            seen: dict[str, str] = {}
            hours: Counter[tuple[str, str]] = Counter()
            for r in rows:
                hours[(_hour_of(r.window_start, seen), r.key)] += r.tweets
            connection.executemany(
                f"""
                INSERT INTO {rollup} (hour_start, {column}, tweets) VALUES (?, ?, ?)
                ON CONFLICT (hour_start, {column}) DO UPDATE SET tweets = tweets + excluded.tweets
                """,
                [(hour, key, tweets) for (hour, key), tweets in hours.items()],
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
                parts = _parts(table, first, last) if current else [(table, "window_start", first, last)]
                if current and limit is not None:
                    top = _top_by_bounds(connection, parts, column, limit)
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


# -- reading ranges through the hour rollups ------------------------------------------------

# A part of a range: (table, its time column, from, to), the rows with from <= time < to.
Part = tuple[str, str, str, str]


def _parts(table: str, since: str, until: str) -> list[Part]:
    """Where the rows of ``table`` with window starts in [since, until) are summed from.

    The whole hours inside the range come from the table's hour rollup, the minutes before the
    first and after the last from the table itself.
    """
    rollup = _ROLLUPS.get(table)
    hours = _whole_hours(since, until)
    if rollup is None or hours is None:
        return [(table, "window_start", since, until)]
    first, end = hours
    parts = [(rollup[0], "hour_start", first, end)]
    if since < first:
        parts.insert(0, (table, "window_start", since, first))
    if end < until:
        parts.append((table, "window_start", end, until))
    return parts


def _keys(connection: sqlite3.Connection, part: Part) -> list[str]:
    """The distinct window (or hour) starts in ``part``, one index seek each."""
    table, key, low, high = part
    found: list[str] = []
    (value,) = connection.execute(
        f"SELECT MIN({key}) FROM {table} WHERE {key} >= ? AND {key} < ?", (low, high)
    ).fetchone()
    while value is not None:
        found.append(value)
        (value,) = connection.execute(
            f"SELECT MIN({key}) FROM {table} WHERE {key} > ? AND {key} < ?", (value, high)
        ).fetchone()
    return found


def _top_by_bounds(connection: sqlite3.Connection, parts: list[Part], column: str, limit: int) -> list[Ranked] | None:
    """The ``limit`` keys with the most tweets over ``parts`` (ties by key), without summing every key.

    Each part is cut into segments (one window, or one hour of a rollup) and the ``depth`` largest
    counts of each segment are read from its ranked index. A key missing from a segment's list has
    at most the list's last count there (0 when the list holds the whole segment). So a key on no
    list has at most ``outside``, the sum of those last counts; a listed key at least the sum of its
    listed counts and at most that plus the last counts of the lists it is missing from. Once the
    ``limit``-th largest listed sum (``threshold``) exceeds ``outside``, only the listed keys whose
    upper bound reaches ``threshold`` can be in the answer: those are summed exactly. Every other key
    has fewer tweets than ``limit`` keys that are summed, so the answer is exactly that of
    ``GROUP BY key ORDER BY SUM(tweets) DESC, key LIMIT limit``.

    Hashtag counts are skewed (a few big ones, a long tail), so one round with a short list decides.
    None when even the longer lists cannot (counts too even): the caller sums every key instead.
    """
    segments = [(part[0], part[1], key) for part in parts for key in _keys(connection, part)]
    if not segments:
        return []
    for depth in (max(2 * limit, 20), max(8 * limit, 100)):
        listed: dict[str, int] = {}  # key -> sum of its listed counts
        covered: dict[str, int] = {}  # key -> sum of the last counts of the lists it is on
        outside = 0
        for table, key_column, key in segments:
            rows = connection.execute(
                f"SELECT {column}, tweets FROM {table} WHERE {key_column} = ? ORDER BY tweets DESC LIMIT ?",
                (key, depth),
            ).fetchall()
            last = rows[-1][1] if len(rows) == depth else 0
            outside += last
            for name, tweets in rows:
                listed[name] = listed.get(name, 0) + tweets
                covered[name] = covered.get(name, 0) + last
        if outside == 0:  # every list held its whole segment: the listed sums are the totals
            totals = listed
        else:
            if len(listed) < limit:
                continue
            threshold = sorted(listed.values(), reverse=True)[limit - 1]
            if outside >= threshold:
                continue
            contenders = [name for name, tweets in listed.items() if tweets + outside - covered[name] >= threshold]
            totals = _totals(connection, segments, column, contenders)
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [Ranked(key, total) for key, total in ranked]
    return None


def _totals(
    connection: sqlite3.Connection, segments: list[tuple[str, str, str]], column: str, names: list[str]
) -> dict[str, int]:
    """Tweets of each of ``names`` summed over ``segments``: one primary-key lookup per (segment, name)."""
    by_table: dict[tuple[str, str], list[str]] = {}
    for table, key_column, key in segments:
        by_table.setdefault((table, key_column), []).append(key)
    totals: dict[str, int] = {}
    for (table, key_column), keys in by_table.items():
        # CROSS JOIN keeps this join order: the table last, looked up by its whole primary key.
        rows = connection.execute(
            f"""
            SELECT t.{column}, SUM(t.tweets) FROM json_each(?) AS k CROSS JOIN json_each(?) AS n
            CROSS JOIN {table} AS t ON t.{key_column} = k.value AND t.{column} = n.value
            GROUP BY t.{column}
            """,
            (json.dumps(keys), json.dumps(names)),
        ).fetchall()
        for name, tweets in rows:
            totals[name] = totals.get(name, 0) + tweets
    return totals

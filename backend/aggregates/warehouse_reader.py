"""The console's reads of the Delta aggregates, in Spark SQL (what a Databricks SQL warehouse speaks).

The reads sum per window and key and count only batches with a ledger row, so they answer what the SQLite store
would after the same batches. Statements go through a ``StatementRunner`` (the SQL warehouse, or a local
SparkSession) with named parameter markers; each answer is cached ``cache_s`` seconds (docs/design.md).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from backend.aggregates.interfaces import DEFAULT_TABLE_PREFIX, DELTA_TABLES, ReadError, check_table_prefix, table_name
from backend.aggregates.records import MAX_RAW_CHARS, DeadLetter, Progress, Ranked, TimeBound, WindowRow, iso_utc

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Parameters = Mapping[str, str | int | float]
Rows = list[tuple[str | None, ...]]

# A prefix is a table-name start, optionally after a schema or a catalog and a schema (as the job's
# --table-prefix): each part letters, digits and "_".
# The error class Spark and Databricks SQL give a statement on a table that does not exist.
MISSING_TABLE = "TABLE_OR_VIEW_NOT_FOUND"
# Spark 4.2 binds parameter markers while parsing, which Delta's SQL parser (its session extension)
# does not pass on: every marker is then "unbound". The legacy mode binds them after parsing instead
# (markers where a literal goes: all that the reads here use).
PARAMETERS_AFTER_PARSING = {"spark.sql.legacy.parameterSubstitution.constantsOnly": "true"}


class StatementError(ReadError):
    """A statement the SQL engine refused or could not run, with its error code and message."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message

    @property
    def missing_table(self) -> bool:
        return MISSING_TABLE in self.message


class StatementRunner(Protocol):
    def run(self, statement: str, parameters: Parameters) -> Rows:
        """The statement's rows as the statement API's JSON_ARRAY gives them: strings or None.

        Raises StatementError when the statement fails."""


def _bound(value: TimeBound, default: str) -> str:
    """A range bound as the tables hold window starts (``backend.aggregates.sqlite_store`` reads the same way)."""
    if value is None:
        return default
    return value if isinstance(value, str) else iso_utc(value)


def _int(value: str | None) -> int:
    return 0 if value is None else int(value)


def _float(value: str | None) -> float:
    return 0.0 if value is None else float(value)


def _quoted(name: str) -> str:
    """``main.s.t`` as ```main`.`s`.`t```` (the prefix is checked, so no part holds a backquote)."""
    return ".".join(f"`{part}`" for part in name.split("."))


class SqlAggregatesReader:
    """``AggregatesReader`` over the Delta tables named ``table_prefix`` + table, through ``runner``.

    A table that does not exist yet (the job has not run) reads as empty.
    """

    def __init__(
        self,
        runner: StatementRunner,
        table_prefix: str = DEFAULT_TABLE_PREFIX,
        cache_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_table_prefix(table_prefix)
        self.runner = runner
        self.table_prefix = table_prefix
        self.cache_s = cache_s
        self._clock = clock
        self._t = {table: _quoted(table_name(table_prefix, table)) for table in DELTA_TABLES}
        self._cache: dict[
            tuple[str, tuple[tuple[str, str | int | float], ...]], tuple[float, Rows | StatementError]
        ] = {}
        self._lock = threading.Lock()

    # -- running statements --------------------------------------------------------------------

    def _query(self, statement: str, parameters: Parameters | None = None) -> Rows:
        parameters = parameters or {}
        key = (statement, tuple(sorted(parameters.items())))
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                if isinstance(cached[1], StatementError):
                    raise cached[1]
                return cached[1]
        try:
            rows = self.runner.run(statement, parameters)
        except StatementError as exc:
            if not exc.missing_table:
                with self._lock:  # a failing warehouse is not asked again at every redraw: once per cache_s
                    self._cache[key] = (now + self.cache_s, exc)
                raise
            rows = []  # the job has not created the table yet: nothing to show, not an error
        with self._lock:
            # Bounds move with the clock, so old keys are never asked again: drop the stale ones.
            for stale in [k for k, (expires, _) in self._cache.items() if expires <= now]:
                del self._cache[stale]
            self._cache[key] = (now + self.cache_s, rows)
        return rows

    def _whole(self, alias: str) -> str:
        """The condition that a row of ``alias`` belongs to a batch with its ledger row (a whole batch)."""
        return (
            f"EXISTS (SELECT 1 FROM {self._t['batches']} AS b "
            f"WHERE b.query_id = {alias}.query_id AND b.batch_id = {alias}.batch_id)"
        )

    # -- the dashboard's reads -------------------------------------------------------------------

    def windows(self, since: TimeBound = None, until: TimeBound = None) -> list[WindowRow]:
        """Windows whose start is in [since, until), oldest first; sentiment_avg over all their tweets."""
        rows = self._query(
            f"""
            SELECT w.window_start, MAX(w.window_end), SUM(w.tweets), SUM(w.retweets), SUM(w.replies),
                   SUM(w.quotes), SUM(w.sentiment_sum)
            FROM {self._t["tweets_per_window"]} AS w
            WHERE w.window_start >= :since AND w.window_start < :until AND {self._whole("w")}
            GROUP BY w.window_start ORDER BY w.window_start
            """,
            {"since": _bound(since, ""), "until": _bound(until, "~")},
        )
        windows = []
        for start, end, tweets, retweets, replies, quotes, sentiment_sum in rows:
            total = _int(tweets)
            windows.append(
                WindowRow(
                    window_start=str(start),
                    window_end=str(end),
                    tweets=total,
                    retweets=_int(retweets),
                    replies=_int(replies),
                    quotes=_int(quotes),
                    # Divided here, not in SQL: a window of 0 tweets is 0.0, not a division error.
                    sentiment_avg=_float(sentiment_sum) / total if total else 0.0,
                )
            )
        return windows

    def latest_window_start(self) -> str | None:
        """The start of the newest window (time ranges on the dashboard count back from it)."""
        rows = self._query(
            f"SELECT MAX(w.window_start) FROM {self._t['tweets_per_window']} AS w WHERE {self._whole('w')}"
        )
        return rows[0][0] if rows else None

    def _ranked(self, table: str, column: str, since: TimeBound, until: TimeBound, limit: int | None) -> list[Ranked]:
        if limit is not None and limit < 0:
            limit = None
        if limit == 0:
            return []
        parameters: dict[str, str | int | float] = {"since": _bound(since, ""), "until": _bound(until, "~")}
        if limit is not None:
            parameters["limit"] = limit
        rows = self._query(
            f"""
            SELECT k.{column}, SUM(k.tweets) AS total FROM {self._t[table]} AS k
            WHERE k.window_start >= :since AND k.window_start < :until AND {self._whole("k")}
            GROUP BY k.{column} ORDER BY total DESC, k.{column}{"" if limit is None else " LIMIT :limit"}
            """,
            parameters,
        )
        return [Ranked(str(key), _int(total)) for key, total in rows]

    def top_hashtags(self, since: TimeBound = None, until: TimeBound = None, limit: int = 10) -> list[Ranked]:
        """The most tweeted hashtags over windows starting in [since, until), most first (ties by name)."""
        return self._ranked("hashtags_per_window", "hashtag", since, until, limit)

    def languages(self, since: TimeBound = None, until: TimeBound = None) -> list[Ranked]:
        """Tweets per language over windows starting in [since, until), most first."""
        return self._ranked("languages_per_window", "lang", since, until, None)

    def late_tweets(self, since: TimeBound = None, until: TimeBound = None) -> int:
        """Valid tweets that came after the watermark had closed their window."""
        rows = self._query(
            f"""
            SELECT COALESCE(SUM(l.tweets), 0) FROM {self._t["late_tweets_per_window"]} AS l
            WHERE l.window_start >= :since AND l.window_start < :until AND {self._whole("l")}
            """,
            {"since": _bound(since, ""), "until": _bound(until, "~")},
        )
        return _int(rows[0][0]) if rows else 0

    # A record found again by a later query (a new checkpoint re-reading the topic) is one dead letter,
    # as in SQLite: the first batch that found it (by commit time) is the one that counts.
    def _dead_letters(self) -> str:
        return f"""
            SELECT d.topic, d.`partition`, d.`offset`, d.error, SUBSTRING(d.raw, 1, :raw_chars) AS raw, d.batch_id,
                   ROW_NUMBER() OVER (PARTITION BY d.topic, d.`partition`, d.`offset`
                                      ORDER BY b.committed_at, d.batch_id) AS nth
            FROM {self._t["dead_letters"]} AS d
            JOIN {self._t["batches"]} AS b ON b.query_id = d.query_id AND b.batch_id = d.batch_id
            """

    def dead_letter_count(self) -> int:
        rows = self._query(f"SELECT COUNT(*) FROM ({self._dead_letters()}) WHERE nth = 1", {"raw_chars": MAX_RAW_CHARS})
        return _int(rows[0][0]) if rows else 0

    def dead_letter_sample(self, limit: int = 20) -> list[DeadLetter]:
        """The latest dead letters (by the batch that found them, then offset)."""
        if limit == 0:
            return []
        parameters: dict[str, str | int | float] = {"raw_chars": MAX_RAW_CHARS}
        if limit > 0:
            parameters["limit"] = limit
        rows = self._query(
            f"""
            SELECT topic, `partition`, `offset`, error, raw FROM ({self._dead_letters()}) WHERE nth = 1
            ORDER BY batch_id DESC, `partition`, `offset` DESC{" LIMIT :limit" if limit > 0 else ""}
            """,
            parameters,
        )
        return [
            DeadLetter(str(topic), _int(partition), _int(offset), str(error), raw)
            for topic, partition, offset, error, raw in rows
        ]

    def progress(self, limit: int = 100) -> list[Progress]:
        """The latest progress reports, newest first (a batch reported twice counts with its latest report)."""
        if limit == 0:
            return []
        parameters: dict[str, str | int | float] = {}
        if limit > 0:
            parameters["limit"] = limit
        rows = self._query(
            f"""
            SELECT query_id, batch_id, input_rows, input_rows_per_second, processed_rows_per_second,
                   batch_duration_ms, start_offsets, end_offsets, recorded_at
            FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY query_id, batch_id ORDER BY recorded_at DESC) AS nth
                  FROM {self._t["query_progress"]})
            WHERE nth = 1 ORDER BY recorded_at DESC, batch_id DESC{" LIMIT :limit" if limit > 0 else ""}
            """,
            parameters,
        )
        return [
            Progress(
                query_id=str(row[0]),
                batch_id=_int(row[1]),
                input_rows=_int(row[2]),
                input_rows_per_second=_float(row[3]),
                processed_rows_per_second=_float(row[4]),
                batch_duration_ms=_int(row[5]),
                start_offsets=json.loads(row[6] or "{}"),
                end_offsets=json.loads(row[7] or "{}"),
                recorded_at=_float(row[8]),
            )
            for row in rows
        ]

    def latest_progress(self) -> Progress | None:
        latest = self.progress(limit=1)
        return latest[0] if latest else None

    # -- what only the cloud has -------------------------------------------------------------------

    def latest_topic_offsets(self, topic: str) -> tuple[float | None, dict[int, tuple[int, int]]]:
        """The newest sample of ``topic``'s offsets: (sampled_at in s since the epoch, partition -> (low, high)).

        The job samples them where it reaches the brokers; (None, {}) before its first sample.
        """
        table = self._t["topic_offsets"]
        rows = self._query(
            f"""
            SELECT o.sampled_at, o.`partition`, o.low, o.high FROM {table} AS o
            WHERE o.topic = :topic AND o.sampled_at = (SELECT MAX(sampled_at) FROM {table} WHERE topic = :topic)
            ORDER BY o.`partition`
            """,
            {"topic": topic},
        )
        if not rows:
            return None, {}
        return _float(rows[0][0]), {_int(p): (_int(low), _int(high)) for _, p, low, high in rows}

    def newest_commit_at(self) -> float | None:
        """When the newest batch was committed (s since the epoch): how old the numbers shown are."""
        rows = self._query(f"SELECT MAX(committed_at) FROM {self._t['batches']}")
        return None if not rows or rows[0][0] is None else float(rows[0][0])


class SparkStatementRunner:
    """Statements on a local SparkSession (a test's Delta tables, or a notebook on Databricks).

    Rows come back as JSON_ARRAY gives them: every value as Spark casts it to a string, or None.
    """

    def __init__(self, session: SparkSession) -> None:
        self.session = session
        for key, value in PARAMETERS_AFTER_PARSING.items():
            session.conf.set(key, value)

    def run(self, statement: str, parameters: Parameters) -> Rows:
        from pyspark.errors import AnalysisException

        try:
            frame = self.session.sql(statement, args=dict(parameters))
            # Positional names: two columns may share a name (two SUM(tweets)).
            frame = frame.toDF(*(f"c{i}" for i in range(len(frame.columns))))
            rows = frame.select([frame[c].cast("string") for c in frame.columns]).collect()
        except AnalysisException as exc:
            raise StatementError(exc.getCondition() or "ANALYSIS_ERROR", short_message(str(exc))) from None
        return [tuple(row) for row in rows]


def short_message(message: str) -> str:
    """Spark's error message without the query plan it appends after ``;\\n``."""
    return message.split(";\n", 1)[0].strip()

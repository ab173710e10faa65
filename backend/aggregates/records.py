"""The aggregates as records: what a micro-batch writes and what the pages read, whichever the store.

Every store (SQLite, Delta tables, a SQL warehouse reading those) takes and gives these, so the
interfaces and the stores share them without importing one another. Window starts are ISO 8601
UTC strings (``2026-11-27T18:00:00Z``, see ``iso_utc``): they sort as times do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

# A dead letter keeps at most this many characters of its value: enough to see what is
# wrong, small enough that a flood of 1 MB garbage cannot fill the disk.
MAX_RAW_CHARS = 2000


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
    # Kept by the SQLite store only (the console's history charts); empty where a store does not keep them.
    latest_offsets: dict[str, int] = field(default_factory=dict)  # partition -> the topic's end offset at the trigger
    durations_ms: dict[str, int] = field(default_factory=dict)  # Spark's durationMs: addBatch, getBatch, walCommit...


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


# A bound of a time range: a moment, a window start as the store writes it, or None (no bound).
TimeBound = datetime | str | None


def iso_utc(moment: datetime) -> str:
    """``moment`` as the store writes window starts: ``2026-11-27T18:00:00Z`` (naive means UTC)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")

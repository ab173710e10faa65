"""Where the producer's tweets come from, and how fast they go: pure logic, testable alone.

A source is an iterator of :class:`Outgoing` (a message to send) and :class:`Skipped`
(an input that is not a tweet: counted, never fatal). The producer job does the Kafka
I/O; here are the replay file reader, the synthetic stream's wrapper and the pacing maths.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from backend.tweets.contract import encode_message, to_envelopes
from backend.tweets.synthetic import SyntheticTweets

# Replaying "the original timing" of an archive must not stall for hours on a quiet night:
# no single wait is longer than this (before --speed divides it).
MAX_REPLAY_GAP_S = 10.0


@dataclass(frozen=True)
class Outgoing:
    """One message for the topic."""

    key: bytes | None
    value: bytes
    event_time: float | None = None  # the tweet's created_at (epoch seconds), for replay pacing
    malformed: bool = False  # deliberately broken (synthetic --malformed-rate)


@dataclass(frozen=True)
class Skipped:
    """An input record that is not a tweet, and why."""

    where: str  # e.g. "line 12"
    reason: str


class ReplayFileError(ValueError):
    """The replay file cannot be read at all (missing, unreadable, not JSON Lines nor a JSON array)."""


def synthetic_source(
    generator: SyntheticTweets, malformed_rate: float = 0.0, random: Callable[[], float] | None = None
) -> Iterator[Outgoing]:
    """The synthetic stream; ``malformed_rate`` of the messages deliberately broken."""
    draw = random or generator._rng.random
    while True:
        if malformed_rate and draw() < malformed_rate:
            key, value, _kind = generator.malformed()
            yield Outgoing(key, value, malformed=True)
        else:
            tweet_id, value = generator.tweet_json()
            yield Outgoing(tweet_id.encode(), value.encode())


def check_replay_file(path: Path) -> None:
    """Refuse, before anything starts, a replay file that does not exist or cannot be read."""
    if not path.exists():
        raise ReplayFileError(f"replay file not found: {path}")
    if not path.is_file():
        raise ReplayFileError(f"replay file is not a file: {path}")
    try:
        with _open_text(path) as handle:
            handle.read(1)
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise ReplayFileError(f"cannot read replay file {path}: {error}") from error


def _open_text(path: Path):
    """The file as text, gunzipped when it starts with gzip's magic bytes (whatever its name)."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def replay_records(path: Path) -> Iterator[Outgoing | Skipped]:
    """Every tweet of a JSON Lines file or a JSON array (gzip allowed) as v2 messages.

    v1.1 statuses are converted to the v2 shape; v2 envelopes, v2 pages (``data`` a list)
    and bare v2 tweets are accepted; anything else is skipped and said why.
    """
    with _open_text(path) as handle:
        head = ""
        while not head:
            chunk = handle.read(1)
            if not chunk:
                return  # an empty file replays nothing
            head = chunk.strip()
        rest = handle.read() if head == "[" else None
        if rest is not None:
            try:
                items = json.loads(head + rest)
            except ValueError as error:
                raise ReplayFileError(f"{path} starts like a JSON array but is not one: {error}") from error
            for index, item in enumerate(items):
                yield from _messages(item, f"item {index}")
            return
        first = head + handle.readline()
        for number, line in enumerate(_chain_first(first, handle), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as error:
                yield Skipped(f"line {number}", f"not JSON ({error.__class__.__name__}: {error})")
                continue
            yield from _messages(item, f"line {number}")


def _chain_first(first: str, rest) -> Iterator[str]:
    yield first
    yield from rest


def _messages(item: object, where: str) -> Iterator[Outgoing | Skipped]:
    envelopes = to_envelopes(item)
    if not envelopes:
        yield Skipped(where, "not a tweet (neither a v2 envelope nor a v1.1 status)")
        return
    for envelope in envelopes:
        key, value = encode_message(envelope)
        yield Outgoing(key, value, event_time=_event_time(envelope["data"].get("created_at")))


def _event_time(created_at: object) -> float | None:
    if not isinstance(created_at, str):
        return None
    try:
        return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Pacer:
    """Spaces sends at ``rate`` per second (0: no limit), without drift.

    The n-th send is due ``n / rate`` seconds after the first, so one late send is caught
    up by the next ones rather than slowing the whole run.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate < 0:
            raise ValueError("rate must be 0 (no limit) or positive")
        self.rate = rate
        self._clock = clock
        self._start: float | None = None
        self._count = 0

    def wait_time(self) -> float:
        """Seconds to wait before the next send (0 when it is due), and count it as sent."""
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._start + self._count / self.rate if self.rate else now
        self._count += 1
        return max(0.0, due - now)


class ReplayClock:
    """The original timing of a replay, ``speed`` times faster: the wait before each tweet.

    The wait is the gap between its event time and the previous one's, divided by
    ``speed``; tweets without an event time, and out-of-order ones, go at once; no wait is
    longer than MAX_REPLAY_GAP_S / speed.
    """

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._previous: float | None = None

    def gap(self, event_time: float | None) -> float:
        if event_time is None:
            return 0.0
        previous, self._previous = self._previous, event_time
        if previous is None or event_time <= previous:
            return 0.0
        return min(event_time - previous, MAX_REPLAY_GAP_S) / self.speed

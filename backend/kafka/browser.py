"""The console's message browser: read a bounded slice of a topic, show it, search it.

``read_messages`` reads with a throwaway consumer up to the end each partition had when the call began, at most
``MAX_MESSAGES`` within about ``timeout_s`` seconds, each partition a fair share. Values are shown as text; nothing
in a message is ever evaluated. How the share is decided: docs/design.md, "The message browser".
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, TopicPartition

from backend.kafka.connection import ClientErrors
from backend.kafka.topics import TopicNameError, validate_topic_name

MAX_MESSAGES = 500

# ListOffsets' special timestamps: the first offset stored, and the offset of the next message.
_EARLIEST = -2
_LATEST = -1


class BrowseError(RuntimeError):
    """Messages cannot be read; the message says why and what to check."""


@dataclass(frozen=True)
class Latest:
    """The last ``n`` messages of each partition."""

    n: int

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"the number of latest messages is at least 1 (got {self.n})")


@dataclass(frozen=True)
class FromOffset:
    """From this offset in each partition (clamped to what the partition holds)."""

    offset: int

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise ValueError(f"an offset is 0 or more (got {self.offset})")


@dataclass(frozen=True)
class FromTimestamp:
    """From the first message of each partition whose timestamp is at or after ``ms`` (Unix epoch, ms)."""

    ms: int

    def __post_init__(self) -> None:
        if self.ms < 0:
            raise ValueError(f"a timestamp is milliseconds since 1970 (got {self.ms})")


Start = Latest | FromOffset | FromTimestamp


@dataclass(frozen=True)
class BrowsedMessage:
    partition: int
    offset: int
    timestamp_ms: int | None  # None when the record has none
    key: str | None  # UTF-8, undecodable bytes as U+FFFD
    value_text: str  # UTF-8, undecodable bytes as U+FFFD; "" for a null value
    value_bytes: int
    is_json: bool
    pretty: str  # indented JSON when the value is JSON, else value_text


@dataclass(frozen=True)
class BrowseResult:
    messages: list[BrowsedMessage]  # sorted by (timestamp, partition, offset): oldest first, newest last
    truncated: bool  # the limit or the deadline left messages of the range unread
    notes: list[str] = field(default_factory=list)


# What the browser keeps of one value: 500 values of 1 MB would hold half a gigabyte of text.
MAX_VALUE_CHARS = 50_000


def _cut(text: str) -> str:
    if len(text) <= MAX_VALUE_CHARS:
        return text
    return text[:MAX_VALUE_CHARS] + f"\n… ({len(text) - MAX_VALUE_CHARS:,} more characters not shown)"


def browsed_message(
    partition: int, offset: int, timestamp_ms: int | None, key: bytes | None, value: bytes | None
) -> BrowsedMessage:
    """A record as the browser shows it; any bytes are fine."""
    raw = value or b""
    text = raw.decode("utf-8", errors="replace")
    pretty = text
    is_json = False
    try:
        parsed = json.loads(raw.decode("utf-8"))  # strict: bytes that are not UTF-8 are not JSON
        is_json = True
        pretty = json.dumps(parsed, indent=2, ensure_ascii=False)
    except (UnicodeDecodeError, ValueError, RecursionError):
        pass  # not JSON (or nested too deep to indent): shown as text
    return BrowsedMessage(
        partition=partition,
        offset=offset,
        timestamp_ms=timestamp_ms,
        key=None if key is None else key.decode("utf-8", errors="replace"),
        value_text=_cut(text),
        value_bytes=len(raw),
        is_json=is_json,
        pretty=_cut(pretty),
    )


def search(messages: Iterable[BrowsedMessage], text: str) -> list[BrowsedMessage]:
    """Messages whose key or value contains ``text``, ignoring case; plain text, no patterns."""
    needle = text.casefold()
    if not needle:
        return list(messages)

    def matches(message: BrowsedMessage) -> bool:
        haystacks = (message.key or "", message.value_text, message.pretty if message.is_json else "")
        return any(needle in haystack.casefold() for haystack in haystacks)

    return [message for message in messages if matches(message)]


def fair_shares(available: dict[int, int], budget: int) -> dict[int, int]:
    """Split ``budget`` over partitions holding ``available`` messages: equal shares, the unused passed on."""
    shares: dict[int, int] = {}
    left = budget
    ordered = sorted(available.items(), key=lambda item: (item[1], item[0]))
    for index, (partition, count) in enumerate(ordered):
        shares[partition] = min(count, left // (len(ordered) - index))
        left -= shares[partition]
    return shares


def read_messages(
    config: dict[str, Any],
    topic: str,
    partition: int | None,
    start: Start,
    limit: int,
    timeout_s: float = 5.0,
) -> BrowseResult:
    """Up to ``limit`` messages of ``topic`` (one partition, or all when None) from ``start``.

    ``config`` is a librdkafka client configuration (``backend.kafka.clients.client_config``).
    Returns within about ``timeout_s`` + 1 s. Raises ValueError for a limit outside
    1..MAX_MESSAGES, BrowseError when the cluster cannot be reached in time, the topic or
    the partition does not exist, or the client is refused.
    """
    if not 1 <= limit <= MAX_MESSAGES:
        raise ValueError(f"at most {MAX_MESSAGES} messages can be read at a time (asked for {limit})")
    try:
        validate_topic_name(topic)
    except TopicNameError as error:
        raise BrowseError(str(error)) from error
    deadline = time.monotonic() + timeout_s
    bootstrap = str(config.get("bootstrap.servers", "?"))
    errors = ClientErrors(secrets=[str(config.get("sasl.password", ""))])
    consumer_config = errors.config(config) | {
        "group.id": f"tweetstream-browser-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    try:
        consumer = Consumer(consumer_config)
    except KafkaException as error:
        raise BrowseError(errors.scrub(f"invalid client configuration: {error}")) from error
    try:
        return _read(consumer, errors, bootstrap, topic, partition, start, limit, deadline, timeout_s)
    finally:
        consumer.close()


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.0)


def _read(
    consumer: Consumer,
    errors: ClientErrors,
    bootstrap: str,
    topic: str,
    partition: int | None,
    start: Start,
    limit: int,
    deadline: float,
    timeout_s: float,
) -> BrowseResult:
    partitions = _partitions(consumer, errors, bootstrap, topic, deadline, timeout_s)
    if partition is not None:
        if partition not in partitions:
            raise BrowseError(f"topic '{topic}' has partitions 0-{max(partitions)}; there is no partition {partition}")
        partitions = [partition]

    def offsets(timestamp: int) -> dict[int, int]:
        query = [TopicPartition(topic, p, timestamp) for p in partitions]
        try:
            answer = consumer.offsets_for_times(query, timeout=max(_remaining(deadline), 0.1))
        except KafkaException as error:
            consumer.poll(0)  # serves error_cb
            raise BrowseError(
                errors.explain(bootstrap, timeout_s, error) + f" (while reading offsets of '{topic}')"
            ) from error
        failed = [tp for tp in answer if tp.error is not None]
        if failed:
            raise BrowseError(f"cannot read the offsets of '{topic}': {failed[0].error.str()}")
        return {tp.partition: tp.offset for tp in answer}

    low, high = offsets(_EARLIEST), offsets(_LATEST)
    notes: list[str] = []
    if isinstance(start, Latest):
        first = {p: max(low[p], high[p] - start.n) for p in partitions}
    elif isinstance(start, FromOffset):
        first = {p: min(max(start.offset, low[p]), high[p]) for p in partitions}
        gone = [p for p in partitions if start.offset < low[p]]
        if gone:
            notes.append(
                f"offset {start.offset} is no longer stored in partition(s) {_listed(gone)}: "
                "read from the first offset kept"
            )
    else:
        found = offsets(start.ms)
        first = {p: high[p] if found[p] < 0 else found[p] for p in partitions}
    end = dict(high)
    available = {p: end[p] - first[p] for p in partitions if end[p] > first[p]}
    truncated = False
    if sum(available.values()) > limit:
        truncated = True
        shares = fair_shares(available, limit)
        for p, share in shares.items():
            if isinstance(start, Latest):
                first[p] = end[p] - share
            else:
                end[p] = first[p] + share
        available = {p: share for p, share in shares.items() if share > 0}
        notes.append(
            f"the range holds more than {limit} messages: showing at most {limit}, shared among the partitions"
        )
    if not available:
        notes.append(_nothing(start, partitions))
        return BrowseResult(messages=[], truncated=truncated, notes=notes)

    messages, unfinished = _consume(consumer, errors, topic, {p: (first[p], end[p]) for p in available}, deadline)
    if unfinished:
        truncated = True
        notes.append(
            f"stopped after {timeout_s:g} s before the end of partition(s) {_listed(sorted(unfinished))}"
            + (f": {errors.explain(bootstrap, timeout_s)}" if errors.errors else " (slow broker or large values)")
        )
    messages.sort(key=lambda m: (m.timestamp_ms if m.timestamp_ms is not None else -1, m.partition, m.offset))
    return BrowseResult(messages=messages, truncated=truncated, notes=notes)


def _partitions(
    consumer: Consumer, errors: ClientErrors, bootstrap: str, topic: str, deadline: float, timeout_s: float
) -> list[int]:
    """The topic's partition ids; waits in short slices so a hopeless case ends early."""
    while True:
        try:
            metadata = consumer.list_topics(topic, timeout=max(min(0.5, _remaining(deadline)), 0.01))
            break
        except KafkaException as error:
            consumer.poll(0)  # serves error_cb
            if errors.terminal or _remaining(deadline) <= 0:
                raise BrowseError(errors.explain(bootstrap, timeout_s, error)) from error
    described = metadata.topics.get(topic)
    if described is None or (
        described.error is not None and described.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    ):
        raise BrowseError(f"there is no topic '{topic}' on {bootstrap}")
    if described.error is not None:
        raise BrowseError(f"cannot read topic '{topic}': {described.error.str()}")
    if not described.partitions:
        raise BrowseError(f"topic '{topic}' has no partitions yet")
    return sorted(described.partitions)


def _consume(
    consumer: Consumer,
    errors: ClientErrors,
    topic: str,
    ranges: dict[int, tuple[int, int]],
    deadline: float,
) -> tuple[list[BrowsedMessage], set[int]]:
    """Messages with offsets in ``[first, end)`` of each partition; also the partitions left unfinished."""
    consumer.assign([TopicPartition(topic, p, first) for p, (first, _end) in ranges.items()])
    pending = set(ranges)
    messages: list[BrowsedMessage] = []

    def finish(p: int) -> None:
        pending.discard(p)
        consumer.pause([TopicPartition(topic, p)])

    while pending and _remaining(deadline) > 0:
        # consume() waits for a full batch or its whole timeout: short slices keep a read prompt.
        for record in consumer.consume(num_messages=MAX_MESSAGES, timeout=min(_remaining(deadline), 0.05)):
            p = record.partition()
            error = record.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    if p in pending:
                        finish(p)
                    continue
                if error.fatal() or error.code() in (
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                    KafkaError.TOPIC_AUTHORIZATION_FAILED,
                ):
                    raise BrowseError(f"reading '{topic}' failed: {error.str()}")
                errors(error)
                continue
            if p not in pending:
                continue
            offset = record.offset()
            _first, end = ranges[p]
            if offset < end:
                kind, timestamp = record.timestamp()
                timestamp_ms = None if kind == TIMESTAMP_NOT_AVAILABLE else timestamp
                messages.append(browsed_message(p, offset, timestamp_ms, record.key(), record.value()))
            if offset >= end - 1:
                finish(p)
    return messages, pending


def _listed(partitions: Sequence[int]) -> str:
    shown = ", ".join(str(p) for p in partitions[:20])
    return shown + (f" and {len(partitions) - 20} more" if len(partitions) > 20 else "")


def _nothing(start: Start, partitions: Sequence[int]) -> str:
    where = f"partition {partitions[0]}" if len(partitions) == 1 else "any partition"
    if isinstance(start, FromTimestamp):
        when = datetime.fromtimestamp(start.ms / 1000, UTC).isoformat(timespec="milliseconds")
        return f"no message in {where} at or after {when}"
    if isinstance(start, FromOffset):
        return f"no message in {where} at or after offset {start.offset}"
    return f"no message in {where}"

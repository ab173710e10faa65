"""Helpers shared by the tests."""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

# Ports already handed out in this process. The kernel may offer a port again once its probe
# is closed, and a broker given the same port twice (client and controller) refuses to start.
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and this process never handed out."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def unique_name(prefix: str) -> str:
    """A topic name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# Real tweet payloads (X API v1.1 statuses and v2 envelopes) kept in the repository: tests/data/README.md.
TWEET_PAYLOADS = Path(__file__).resolve().parent / "data" / "tweets"


def tweet_payload_lines(name: str) -> list[str]:
    """The non-empty lines of one real payload file."""
    return [line for line in (TWEET_PAYLOADS / name).read_text().splitlines() if line.strip()]


def quote_statuses() -> tuple[dict, dict]:
    """(a v1.1 quote tweet, a v1.1 retweet of it), made from real statuses of v1_statuses.jsonl.

    The files hold no quote tweet, so one real status quotes another, and one real retweet
    retweets that quote, with the fields v1.1 adds (is_quote_status, quoted_status_id_str,
    quoted_status; a retweet of a quote repeats them at its top level).
    """
    import json

    statuses = [json.loads(line) for line in tweet_payload_lines("v1_statuses.jsonl")]
    quoted, quoting = statuses[0], dict(statuses[1])
    quote_fields = {"is_quote_status": True, "quoted_status_id_str": quoted["id_str"], "quoted_status": quoted}
    quote = {**quoting, **quote_fields, "quoted_status_id": int(quoted["id_str"])}
    retweet = next(s for s in statuses if s.get("retweeted_status"))
    retweet = {**retweet, **quote_fields, "quoted_status_id": int(quoted["id_str"]), "retweeted_status": quote}
    return quote, retweet


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp_ms: int


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Record]:
    """Every record of ``topic`` now, read with a real consumer up to each partition's end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("test-reader"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.max.bytes": 52_428_800,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while len(at_end) < len(partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(records)} records of {topic}, partitions at end: {sorted(at_end)}")
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                elif error is not None:
                    raise RuntimeError(error.str())
                else:
                    at_end.discard(message.partition())
                    _kind, timestamp = message.timestamp()
                    records.append(
                        Record(message.key(), message.value(), message.partition(), message.offset(), timestamp)
                    )
        return records
    finally:
        consumer.close()


def kill_process_tree(pid: int) -> None:
    """kill -9 a process and everything under it (a JVM, Python workers): a crash, not a stop."""
    import contextlib

    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        parent = psutil.Process(pid)
        family = [parent, *parent.children(recursive=True)]
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):  # a worker may go with its parent
                member.kill()
        psutil.wait_procs(family, timeout=30)

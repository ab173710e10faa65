"""Topic administration: create, list, describe (partitions, leaders, watermarks) and delete.

Each function takes a confluent-kafka ``AdminClient`` and a timeout in seconds, and raises
``TopicError`` with a message a user can act on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, OffsetSpec, ResourceType

from backend.kafka import topic_names

MAX_TOPIC_NAME_LENGTH = topic_names.MAX_TOPIC_NAME_LENGTH


class TopicError(RuntimeError):
    """A topic operation failed; the message says why."""


class TopicNameError(TopicError, topic_names.TopicNameError):
    """A topic name that Kafka would refuse (a TopicError here, so callers of this module catch it too)."""


def validate_topic_name(name: str) -> str:
    """Return ``name`` when Kafka accepts it as a topic name, else raise TopicNameError."""
    try:
        return topic_names.validate_topic_name(name)
    except topic_names.TopicNameError as error:
        raise TopicNameError(str(error)) from None


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create. ``retention_ms`` None keeps the broker's default; -1 keeps forever."""

    name: str
    partitions: int = 4
    replication_factor: int = 1
    retention_ms: int | None = None

    def __post_init__(self) -> None:
        validate_topic_name(self.name)
        if self.partitions < 1:
            raise TopicError(f"a topic needs at least 1 partition (got {self.partitions})")
        if self.replication_factor < 1:
            raise TopicError(f"the replication factor is at least 1 (got {self.replication_factor})")
        if self.retention_ms is not None and self.retention_ms != -1 and self.retention_ms < 1:
            raise TopicError(
                f"retention is a positive number of milliseconds, or -1 for unlimited (got {self.retention_ms})"
            )


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    leader: int | None  # broker id; None while the partition has no leader
    replicas: tuple[int, ...]
    in_sync_replicas: tuple[int, ...]
    low_watermark: int  # first offset still stored
    high_watermark: int  # offset the next record will get

    @property
    def messages(self) -> int:
        """Records stored in the partition (an upper bound for compacted or transactional topics)."""
        return self.high_watermark - self.low_watermark


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: tuple[PartitionInfo, ...]
    retention_ms: int | None

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.partitions)

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas) if self.partitions else 0


def _explain(error: KafkaException, action: str) -> TopicError:
    kafka_error = error.args[0] if error.args and isinstance(error.args[0], KafkaError) else None
    code = kafka_error.code() if kafka_error is not None else None
    reason = kafka_error.str() if kafka_error is not None else str(error)
    hints = {
        KafkaError.TOPIC_ALREADY_EXISTS: "the topic already exists",
        KafkaError.UNKNOWN_TOPIC_OR_PART: "no such topic",
        KafkaError.INVALID_REPLICATION_FACTOR: "the replication factor is larger than the number of brokers",
        KafkaError._TRANSPORT: "the cluster cannot be reached: is the broker running?",
        KafkaError._TIMED_OUT: "no answer from the cluster in time: is the broker running?",
        KafkaError.TOPIC_AUTHORIZATION_FAILED: "not authorised for this topic",
    }
    hint = hints.get(code)
    return TopicError(f"{action}: {hint} ({reason})" if hint else f"{action}: {reason}")


def create_topic(admin: AdminClient, spec: TopicSpec, timeout: float = 15.0) -> None:
    """Create the topic and return once every partition has a leader, so it can be used at once."""
    config = {} if spec.retention_ms is None else {"retention.ms": str(spec.retention_ms)}
    new_topic = NewTopic(
        spec.name,
        num_partitions=spec.partitions,
        replication_factor=spec.replication_factor,
        config=config,
    )
    future = admin.create_topics([new_topic], request_timeout=timeout, operation_timeout=timeout)[spec.name]
    try:
        future.result(timeout=timeout + 1)
    except KafkaException as error:
        raise _explain(error, f"cannot create topic '{spec.name}'") from error
    _wait_until_served(admin, spec, timeout)


def _wait_until_served(admin: AdminClient, spec: TopicSpec, timeout: float) -> None:
    """Return once every partition of the new topic answers an offsets request.

    The controller acknowledges a creation before the brokers serve the topic: for a moment
    the broker does not know it, then names a leader that still answers NOT_LEADER_FOR_PARTITION.
    Each round asks for the topic's metadata first, which also refreshes the client's cache
    (librdkafka would otherwise keep answering from the stale "no leader" entry).
    """
    partitions = list(range(spec.partitions))
    deadline = time.monotonic() + timeout
    last_error: KafkaException | None = None
    while time.monotonic() < deadline:
        try:
            topic = admin.list_topics(topic=spec.name, timeout=2.0).topics.get(spec.name)
            led = topic is not None and topic.error is None and len(topic.partitions) == spec.partitions
            if led and all(p.leader >= 0 for p in topic.partitions.values()):
                _offsets(admin, spec.name, partitions, OffsetSpec.latest(), 2.0)
                return
        except KafkaException as error:
            last_error = error
        time.sleep(0.05)
    reason = f"topic '{spec.name}' was created but is not served within {timeout:.0f} s"
    raise _explain(last_error, reason) if last_error is not None else TopicError(reason)


def list_topics(admin: AdminClient, timeout: float = 10.0, include_internal: bool = False) -> list[str]:
    """Topic names, sorted; internal topics (``__consumer_offsets``...) only when asked."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as error:
        raise _explain(error, "cannot list topics") from error
    names = sorted(metadata.topics)
    return names if include_internal else [name for name in names if not name.startswith("__")]


def describe_topic(admin: AdminClient, name: str, timeout: float = 10.0) -> TopicInfo:
    """Partitions with leaders, replicas and watermarks, and the topic's retention."""
    validate_topic_name(name)
    action = f"cannot describe topic '{name}'"
    try:
        description = admin.describe_topics(TopicCollection([name]), request_timeout=timeout)[name].result()
        partitions = sorted(description.partitions, key=lambda p: p.id)
        low = _offsets(admin, name, [p.id for p in partitions], OffsetSpec.earliest(), timeout)
        high = _offsets(admin, name, [p.id for p in partitions], OffsetSpec.latest(), timeout)
        resource = ConfigResource(ResourceType.TOPIC, name)
        config = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
    except KafkaException as error:
        raise _explain(error, action) from error
    retention = config.get("retention.ms")
    return TopicInfo(
        name=name,
        partitions=tuple(
            PartitionInfo(
                partition=p.id,
                leader=p.leader.id if p.leader is not None and p.leader.id >= 0 else None,
                replicas=tuple(node.id for node in p.replicas),
                in_sync_replicas=tuple(node.id for node in p.isr),
                low_watermark=low[p.id],
                high_watermark=high[p.id],
            )
            for p in partitions
        ),
        retention_ms=int(retention.value) if retention is not None and retention.value is not None else None,
    )


def _offsets(admin: AdminClient, topic: str, partitions: list[int], spec: OffsetSpec, timeout: float) -> dict[int, int]:
    if not partitions:
        return {}
    futures = admin.list_offsets({TopicPartition(topic, p): spec for p in partitions}, request_timeout=timeout)
    return {tp.partition: future.result().offset for tp, future in futures.items()}


def delete_topic(admin: AdminClient, name: str, timeout: float = 15.0) -> None:
    validate_topic_name(name)
    future = admin.delete_topics([name], request_timeout=timeout, operation_timeout=timeout)[name]
    try:
        future.result(timeout=timeout + 1)
    except KafkaException as error:
        raise _explain(error, f"cannot delete topic '{name}'") from error

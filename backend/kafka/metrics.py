"""Kafka metrics as an interface, so the console never knows how it reads the cluster.

``AdminClientMetrics`` reads the topics' offsets through a Kafka admin client where the console reaches the brokers;
``backend.azure.ambari_metrics.AmbariKafkaMetrics`` reads Ambari's metrics on HDInsight's gateway. A ``KafkaSample``
says what one read found; ``sample()`` never raises: a failure is ``reachable=False`` with a reason a user can act on.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from backend.kafka.clients import client_config
from backend.kafka.connection import ClientErrors
from backend.settings import Settings

KAFKA_TIMEOUT_S = 1.5  # per call: a sample never waits longer on an unreachable cluster


@dataclass(frozen=True)
class PartitionOffsets:
    low: int  # first offset still stored
    high: int  # offset the next record will get

    @property
    def messages(self) -> int:
        return self.high - self.low


@dataclass(frozen=True)
class KafkaSample:
    """Watermarks of every (non-internal) topic and the cluster's throughput, or why they could not be read."""

    reachable: bool
    sampled_at: float  # seconds since the epoch; 0.0 before the first sample
    topics: dict[str, dict[int, PartitionOffsets]] = field(default_factory=dict)
    error: str | None = None
    # Per topic, as the source measures them (Kafka's MessagesInPerSec / BytesInPerSec); None when
    # the source cannot tell per topic (the admin client measures no rates; Ambari only all topics).
    messages_in_per_s: dict[str, float] | None = None  # messages/s
    bytes_in_per_s: dict[str, float] | None = None  # bytes/s
    # All topics together; None when the source cannot tell.
    all_messages_in_per_s: float | None = None  # messages/s
    all_bytes_in_per_s: float | None = None  # bytes/s
    rates_at: float | None = None  # when the source measured the rates above, if not at ``sampled_at``
    brokers: dict[str, str] = field(default_factory=dict)  # broker host -> state
    # When ``topics`` was read, if not at ``sampled_at`` (offsets another process sampled earlier).
    offsets_at: float | None = None  # seconds since the epoch
    # Why ``topics`` is empty or partial although the source answered (lag cannot be shown then).
    offsets_note: str | None = None


class KafkaMetrics(Protocol):
    """What the Monitor samples Kafka through (one implementation per way of reaching the cluster)."""

    def describe(self) -> str:
        """One line for the page's banner: where the figures come from."""

    def sample(self) -> KafkaSample:
        """Read the cluster now, bounded by short timeouts; never raises."""

    def close(self) -> None:
        """Release connections; the object is not used afterwards."""


class AdminClientMetrics:
    """The topics' watermarks through a Kafka admin client, every call bounded by ``KAFKA_TIMEOUT_S``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._admin: AdminClient | None = None
        self._client_errors = ClientErrors()
        self._last_failure: str | None = None  # why the previous sample failed, if it did

    def describe(self) -> str:
        return f"Kafka admin client, {self.settings.bootstrap}"

    def close(self) -> None:
        # confluent-kafka's AdminClient has no close: dropping it ends its threads.
        self._admin = None

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            password = self.settings.kafka_sasl_password
            # Kafka's errors go here, to say why a sample failed (a refused login, not only "failed").
            self._client_errors = ClientErrors(secrets=[password.get_secret_value()] if password else [])
            config = {**client_config(self.settings), "socket.connection.setup.timeout.ms": 3000}
            self._admin = AdminClient(self._client_errors.config(config))
        return self._admin

    def sample(self) -> KafkaSample:
        admin = self._admin_client()
        now = time.time()
        try:
            metadata = admin.list_topics(timeout=KAFKA_TIMEOUT_S)
            # The brokers the cluster's metadata lists are the live ones.
            brokers = {f"{b.host}:{b.port}": "LIVE" for b in metadata.brokers.values()}
            partitions = [
                TopicPartition(name, p)
                for name, topic in metadata.topics.items()
                if not name.startswith("__") and topic.error is None
                for p in topic.partitions
            ]
            if not partitions:
                return KafkaSample(reachable=True, sampled_at=now, brokers=brokers)
            low = _offsets(admin, partitions, OffsetSpec.earliest())
            high = _offsets(admin, partitions, OffsetSpec.latest())
        except KafkaException as error:
            admin.poll(0)  # serves error_cb: the errors that say why
            # librdkafka reports a cause once per reconnection attempt (backing off up to 10 s):
            # a sample that saw no new error keeps the previous sample's reason.
            if self._client_errors.errors or self._last_failure is None:
                self._last_failure = self._client_errors.explain(self.settings.bootstrap, KAFKA_TIMEOUT_S, error)
                self._client_errors.clear()
            return KafkaSample(reachable=False, sampled_at=now, error=self._last_failure)
        self._client_errors.clear()
        self._last_failure = None
        topics: dict[str, dict[int, PartitionOffsets]] = {}
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if key in low and key in high:
                topics.setdefault(tp.topic, {})[tp.partition] = PartitionOffsets(low[key], high[key])
        return KafkaSample(reachable=True, sampled_at=now, topics=topics, brokers=brokers)


def _offsets(admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[tuple[str, int], int]:
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=KAFKA_TIMEOUT_S)
    result: dict[tuple[str, int], int] = {}
    for tp, future in futures.items():
        # One partition without a leader, or a slow answer: skip it this round.
        with contextlib.suppress(KafkaException, TimeoutError):
            result[(tp.topic, tp.partition)] = future.result(timeout=KAFKA_TIMEOUT_S + 0.5).offset
    return result

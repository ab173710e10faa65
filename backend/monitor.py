"""Live state for the console, sampled in the background so that no page refresh waits on Kafka.

One ``Monitor`` per Kafka cluster and state directory runs a daemon thread that, about once
a second, reads the jobs' pid and status files and the topics' watermarks (every Kafka call
bounded by a short timeout) and keeps the history of the rates derived from them for the
last 15 minutes. Pages read ``Monitor.snapshot()``, which returns at once with the latest
sample, however slow or unreachable the cluster is. The thread samples as long as the
console runs (viewers or not), so the history has no gaps; ``close`` ends it.

The rates are pure arithmetic on counter samples (``RateHistory``, ``lag_per_partition``),
tested without services.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from backend import local_kafka, supervisor
from backend.connection import ClientErrors
from backend.kafka_clients import client_config
from backend.settings import Settings
from backend.store import AggregatesStore, Progress, default_store_path

HISTORY_S = 15 * 60.0
SAMPLE_INTERVAL_S = 1.0
KAFKA_TIMEOUT_S = 1.5  # per call: a sample never waits longer on an unreachable cluster


@dataclass(frozen=True)
class RatePoint:
    at: float  # seconds since the epoch
    per_second: float


class RateHistory:
    """Per-second rates from successive samples of a growing counter, over a sliding window.

    A counter that goes down (a job restarted, a topic re-created) starts afresh: no negative
    rate is ever recorded.
    """

    def __init__(self, window_s: float = HISTORY_S) -> None:
        self.window_s = window_s
        self._points: deque[RatePoint] = deque()
        self._last: tuple[float, int] | None = None

    def add(self, at: float, counter: int) -> None:
        if self._last is not None and at <= self._last[0]:
            return  # the same sample again (a status file not rewritten since): no new information
        if self._last is not None:
            previous_at, previous = self._last
            elapsed = at - previous_at
            if elapsed > 0 and counter >= previous:
                self._points.append(RatePoint(at, (counter - previous) / elapsed))
        self._last = (at, counter)
        while self._points and self._points[0].at < at - self.window_s:
            self._points.popleft()

    def points(self) -> list[RatePoint]:
        return list(self._points)

    @property
    def latest(self) -> float | None:
        return self._points[-1].per_second if self._points else None


@dataclass(frozen=True)
class PartitionOffsets:
    low: int  # first offset still stored
    high: int  # offset the next record will get

    @property
    def messages(self) -> int:
        return self.high - self.low


@dataclass(frozen=True)
class KafkaSample:
    """Watermarks of every (non-internal) topic, or why they could not be read."""

    reachable: bool
    sampled_at: float  # seconds since the epoch; 0.0 before the first sample
    topics: dict[str, dict[int, PartitionOffsets]] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything the live parts of the pages show, as of ``taken_at``."""

    taken_at: float
    bootstrap: str
    local_broker: local_kafka.BrokerStatus | None  # None when the profile is another cluster
    kafka: KafkaSample
    producer: supervisor.JobView
    consumer: supervisor.JobView
    latest_progress: Progress | None


def lag_per_partition(end_offsets: dict[int, int], processed: dict[str, int] | None) -> dict[int, int | None]:
    """Records in each partition the job has not processed yet: the topic's end offset minus
    the offset after the job's last record (Spark commits nothing to Kafka: its progress says).

    None for a partition the job has not read from yet.
    """
    processed = processed or {}
    lag: dict[int, int | None] = {}
    for partition, end in sorted(end_offsets.items()):
        done = processed.get(str(partition))
        lag[partition] = None if done is None else max(0, end - done)
    return lag


def aged_out_per_partition(partitions: dict[int, PartitionOffsets], processed: dict[str, int] | None) -> dict[int, int]:
    """Records each partition no longer holds that the job had not read: the first offset still
    stored minus the offset after the job's last record, where positive (retention deleted them
    while the job was stopped or behind). Only partitions with some; none when nothing is known."""
    processed = processed or {}
    aged: dict[int, int] = {}
    for partition, offsets in sorted(partitions.items()):
        done = processed.get(str(partition))
        if done is not None and offsets.low > done:
            aged[partition] = offsets.low - done
    return aged


class Monitor:
    """Background sampler of one cluster and one state directory (see the module docstring)."""

    def __init__(self, settings: Settings, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.is_local = not settings.bootstrap_servers
        self._store = AggregatesStore(default_store_path(settings.state_dir))
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._admin: AdminClient | None = None
        self._client_errors = ClientErrors()
        self._kafka_lock = threading.Lock()  # one Kafka sample at a time: the thread's or a page's refresh()
        self._last_failure: str | None = None  # why the previous sample failed, if it did
        self._kafka = KafkaSample(reachable=False, sampled_at=0.0, error="not sampled yet")
        self._producer_history = RateHistory()
        self._topic_history: dict[str, RateHistory] = {}
        self._partition_history: dict[tuple[str, int], RateHistory] = {}
        self._snapshot = self._sample_local()
        _instances.add(self)

    # -- what pages call -------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The latest sample; never waits on Kafka. Starts the sampler thread if it is not running."""
        self._ensure_running()
        with self._lock:
            return self._snapshot

    def producer_rates(self) -> list[RatePoint]:
        """Acknowledged events per second of the producer job, over the last 15 minutes."""
        with self._lock:
            return self._producer_history.points()

    def topic_rates(self) -> dict[str, list[RatePoint]]:
        """Messages per second into each topic (high-watermark deltas), over the last 15 minutes."""
        with self._lock:
            return {topic: history.points() for topic, history in sorted(self._topic_history.items())}

    def partition_rates(self, topic: str) -> dict[int, list[RatePoint]]:
        with self._lock:
            return {
                partition: history.points()
                for (name, partition), history in sorted(self._partition_history.items())
                if name == topic
            }

    def refresh(self) -> Snapshot:
        """Sample now, in the caller's thread (after Start or Stop, so the page shows the new state).

        Bounded by the Kafka timeouts; never raises (a failed sample leaves the previous one)."""
        with contextlib.suppress(Exception):
            self._sample_once()
        return self.snapshot()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Stop sampling (the thread ends within a sample); snapshots then stay as they were."""
        self._closed.set()

    # -- the sampler -------------------------------------------------------------------------

    def _ensure_running(self) -> None:
        with self._lock:
            if self._closed.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._run, name="tweetstream-monitor", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed.is_set():
            began = time.monotonic()
            with contextlib.suppress(Exception):  # a sampling error must not end the history
                self._sample_once()
            self._closed.wait(max(0.05, self.interval_s - (time.monotonic() - began)))

    def _sample_local(self) -> Snapshot:
        """Files only (pid, status, store): fast, no network."""
        state_dir = self.settings.state_dir
        broker = local_kafka.status(local_kafka.LocalBroker.from_settings(self.settings)) if self.is_local else None
        try:
            progress = self._store.latest_progress()
        except Exception:  # a store being created or migrated: no progress to show yet
            progress = None
        return Snapshot(
            taken_at=time.time(),
            bootstrap=self.settings.bootstrap,
            local_broker=broker,
            kafka=self._kafka,
            producer=supervisor.job_view(state_dir, "producer"),
            consumer=supervisor.job_view(state_dir, "consumer"),
            latest_progress=progress,
        )

    def _sample_once(self) -> None:
        local = self._sample_local()
        kafka = self._sample_kafka()  # also when no pid file says a broker runs: one may run from elsewhere
        if not kafka.reachable and local.local_broker is not None and not local.local_broker.running:
            kafka = dataclasses.replace(kafka, error="the local broker is stopped")
        now = time.time()
        with self._lock:
            self._kafka = kafka
            self._snapshot = dataclasses.replace(local, kafka=kafka)
            status = local.producer.status
            if local.producer.running and status is not None and isinstance(status.get("acked"), int):
                # Timed by the job's own clock: its status file is rewritten about once a second,
                # not in step with this sampler, and may not have changed since the last sample.
                self._producer_history.add(float(status.get("updated_at", now)), status["acked"])
            for topic, partitions in kafka.topics.items():
                self._topic_history.setdefault(topic, RateHistory()).add(now, sum(p.high for p in partitions.values()))
                for partition, offsets in partitions.items():
                    self._partition_history.setdefault((topic, partition), RateHistory()).add(now, offsets.high)

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            password = self.settings.kafka_sasl_password
            # Kafka's errors go here, to say why a sample failed (a refused login, not only "failed").
            self._client_errors = ClientErrors(secrets=[password.get_secret_value()] if password else [])
            config = {**client_config(self.settings), "socket.connection.setup.timeout.ms": 3000}
            self._admin = AdminClient(self._client_errors.config(config))
        return self._admin

    def _sample_kafka(self) -> KafkaSample:
        with self._kafka_lock:
            return self._sample_kafka_now()

    def _sample_kafka_now(self) -> KafkaSample:
        admin = self._admin_client()
        now = time.time()
        try:
            metadata = admin.list_topics(timeout=KAFKA_TIMEOUT_S)
            partitions = [
                TopicPartition(name, p)
                for name, topic in metadata.topics.items()
                if not name.startswith("__") and topic.error is None
                for p in topic.partitions
            ]
            if not partitions:
                return KafkaSample(reachable=True, sampled_at=now)
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
        return KafkaSample(reachable=True, sampled_at=now, topics=topics)


def _offsets(admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[tuple[str, int], int]:
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=KAFKA_TIMEOUT_S)
    result: dict[tuple[str, int], int] = {}
    for tp, future in futures.items():
        # One partition without a leader, or a slow answer: skip it this round.
        with contextlib.suppress(KafkaException, TimeoutError):
            result[(tp.topic, tp.partition)] = future.result(timeout=KAFKA_TIMEOUT_S + 0.5).offset
    return result


_instances: weakref.WeakSet[Monitor] = weakref.WeakSet()


def close_all(keep: Monitor | None = None) -> None:
    """Close every monitor of this process but ``keep``: after the profile changed, the old
    cluster is no longer watched; in tests, no sampler outlives its test's broker and state."""
    for monitor in list(_instances):
        if monitor is not keep:
            monitor.close()


def monitor_key(settings: Settings) -> tuple[str, str, str]:
    """What makes two monitors (and admin clients) different: the state directory, the cluster
    and how to reach it. Credentials count as a digest, so a corrected password gets a new client;
    the digest is a cache key only, never shown."""
    config = json.dumps(client_config(settings), sort_keys=True, default=str)
    return (str(settings.state_dir), settings.bootstrap, hashlib.sha256(config.encode()).hexdigest())

"""Live state for the console, sampled in the background so that no page refresh waits on Kafka.

One ``Monitor`` per Kafka cluster and state directory samples the jobs' files and the topics' offsets on a daemon
thread about once a second and keeps 15 minutes of rates; pages read ``Monitor.snapshot()``, which returns at once
however slow the cluster is. Why it samples with no viewer, and how it reads Kafka: docs/design.md, "The live monitor".
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import json
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from backend.aggregates.records import Progress
from backend.aggregates.sqlite_store import AggregatesStore, default_store_path
from backend.console import alerts, supervisor
from backend.console.webhook import Webhook
from backend.kafka import local_broker
from backend.kafka.clients import client_config
from backend.kafka.metrics import KAFKA_TIMEOUT_S, AdminClientMetrics, KafkaMetrics, KafkaSample, PartitionOffsets
from backend.options.consumer import CONSUMER, parse_duration_ms
from backend.settings import Settings

# Re-exported: pages and views import them from here.
__all__ = ["KAFKA_TIMEOUT_S", "KafkaSample", "PartitionOffsets"]

HISTORY_S = 15 * 60.0
SAMPLE_INTERVAL_S = 1.0
ALL_MESSAGES = "messages in/s"  # all_topics_rates() keys
ALL_BYTES = "bytes in/s"


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

    def add_rate(self, at: float, per_second: float) -> None:
        """A rate the source measured itself (Kafka's MessagesInPerSec), not derived from a counter."""
        if self._points and at <= self._points[-1].at:
            return  # the same measurement again
        self._points.append(RatePoint(at, max(0.0, per_second)))
        self._last = None  # counters and measured rates do not mix: a counter after this starts afresh
        while self._points and self._points[0].at < at - self.window_s:
            self._points.popleft()

    def points(self) -> list[RatePoint]:
        return list(self._points)

    @property
    def latest(self) -> float | None:
        return self._points[-1].per_second if self._points else None


@dataclass(frozen=True)
class Snapshot:
    """Everything the live parts of the pages show, as of ``taken_at``."""

    taken_at: float
    bootstrap: str
    local_broker: local_broker.BrokerStatus | None  # None when the profile is another cluster
    kafka: KafkaSample
    producer: supervisor.JobView
    consumer: supervisor.JobView
    latest_progress: Progress | None
    source: str = ""  # where the Kafka figures come from (KafkaMetrics.describe())
    progress_error: str | None = None  # why the latest progress could not be read (a SQL warehouse's answer)
    alerts: tuple[alerts.Alert, ...] = ()  # what the rules found at this sample, each with since when


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


def trigger_ms(arguments: tuple[str, ...]) -> int | None:
    """The Spark job's trigger interval from its command line, read by the job's own parser (its default
    when not given); None for an available-now run or arguments it would refuse."""
    try:
        values, _others = _consumer_parser().parse_known_args(list(arguments))
        return None if values.available_now else parse_duration_ms(values.trigger)
    except (SystemExit, ValueError):  # argparse exits on a value it refuses
        return None


@functools.cache
def _consumer_parser() -> argparse.ArgumentParser:
    return CONSUMER.build_parser()


def batch_lag(progress: Progress, end_offsets: dict[int, int] | None = None) -> int | None:
    """Records waiting when the batch was triggered (Spark's own latestOffset minus the batch's start
    offsets) where the report has them, else the topic's end offsets as sampled minus the batch's end
    offsets (None when neither is known)."""
    if progress.latest_offsets:
        start = progress.start_offsets
        return sum(max(0, latest - start.get(p, 0)) for p, latest in progress.latest_offsets.items())
    if end_offsets:
        lag = lag_per_partition(end_offsets, progress.end_offsets)
        known = [value for value in lag.values() if value is not None]
        return sum(known) if known else None
    return None


class Monitor:
    """Background sampler of one cluster and one state directory (see the module docstring).

    ``metrics``: how Kafka is read (default: an admin client on the settings' bootstrap).
    ``progress``: the Spark job's latest progress (default: the SQLite store in the state directory).
    """

    def __init__(
        self,
        settings: Settings,
        metrics: KafkaMetrics | None = None,
        progress: Callable[[], Progress | None] | None = None,
        interval_s: float = SAMPLE_INTERVAL_S,
        idle_after_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.interval_s = interval_s
        # For billed reads (a SQL warehouse): none at construction (the page would wait for a cold warehouse),
        # and none while no page has asked for a snapshot for this long, so the warehouse can stop.
        self.idle_after_s = idle_after_s
        self._viewed_at = time.monotonic()
        self._progress_error: str | None = None
        self.metrics: KafkaMetrics = metrics if metrics is not None else AdminClientMetrics(settings)
        # The local broker counts only when Kafka is read through the profile's bootstrap: with Ambari's
        # metrics, a stopped local broker must not replace the gateway's reason.
        self.is_local = not settings.bootstrap_servers and isinstance(self.metrics, AdminClientMetrics)
        if progress is None:
            progress = AggregatesStore(default_store_path(settings.state_dir)).latest_progress
        self._progress = progress
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._metrics_closed = False
        self._kafka_lock = threading.Lock()  # one Kafka sample at a time: the thread's or a page's refresh()
        self._kafka = KafkaSample(reachable=False, sampled_at=0.0, error="not sampled yet")
        self._producer_history = RateHistory()
        self._topic_history: dict[str, RateHistory] = {}
        self._partition_history: dict[tuple[str, int], RateHistory] = {}
        self._all_history: dict[str, RateHistory] = {ALL_MESSAGES: RateHistory(), ALL_BYTES: RateHistory()}
        self._alert_book = alerts.AlertBook()
        self._kafka_seen = False  # reached at some sample: losing it then is an alert
        self._last_ack: tuple[float, int] | None = None  # (when, acked) at the producer counter's last growth
        self._batches: deque[alerts.BatchFigures] = deque(maxlen=20)
        self._batches_query: str | None = None
        url = settings.alert_webhook_url.get_secret_value() if settings.alert_webhook_url is not None else ""
        self.webhook: Webhook | None = Webhook(url) if url else None
        self._snapshot = self._sample_local(read_progress=idle_after_s is None)
        _instances.add(self)

    # -- what pages call -------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The latest sample; never waits on Kafka. Starts the sampler thread if it is not running."""
        self._ensure_running()
        with self._lock:
            self._viewed_at = time.monotonic()
            return self._snapshot

    def describe(self) -> str:
        """Where the Kafka figures come from, for the page's banner."""
        return self.metrics.describe()

    def producer_rates(self) -> list[RatePoint]:
        """Acknowledged events per second of the producer job, over the last 15 minutes."""
        with self._lock:
            return self._producer_history.points()

    def topic_rates(self) -> dict[str, list[RatePoint]]:
        """Messages per second into each topic over the last 15 minutes: from the end offsets'
        deltas where the source knows them, else the source's own per-topic messages-in rate."""
        with self._lock:
            return {topic: history.points() for topic, history in sorted(self._topic_history.items())}

    def all_topics_rates(self) -> dict[str, list[RatePoint]]:
        """All topics together, over the last 15 minutes: ``ALL_MESSAGES`` (messages/s: the source's
        own figure, else the end offsets' deltas) and ``ALL_BYTES`` (bytes/s: only where the source
        measures it). A series the source cannot give stays empty."""
        with self._lock:
            return {name: history.points() for name, history in self._all_history.items()}

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
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
        if not running:  # else the thread closes the metrics source when its sample ends
            self._close_metrics()
        if self.webhook is not None:
            self.webhook.close()

    # -- the sampler -------------------------------------------------------------------------

    def _close_metrics(self) -> None:
        with self._kafka_lock:
            if not self._metrics_closed:
                self._metrics_closed = True
                with contextlib.suppress(Exception):
                    self.metrics.close()

    def _ensure_running(self) -> None:
        with self._lock:
            if self._closed.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._run, name="tweetstream-monitor", daemon=True)
            self._thread.start()

    def idle(self) -> bool:
        """No page has looked for ``idle_after_s``: billed sources are left alone (never idle without one)."""
        with self._lock:
            viewed_at = self._viewed_at
        return self.idle_after_s is not None and time.monotonic() - viewed_at > self.idle_after_s

    def _run(self) -> None:
        while not self._closed.is_set():
            began = time.monotonic()
            with contextlib.suppress(Exception):  # a sampling error must not end the history
                if not self.idle():
                    self._sample_once()
            self._closed.wait(max(0.05, self.interval_s - (time.monotonic() - began)))
        self._close_metrics()

    def _sample_local(self, read_progress: bool = True) -> Snapshot:
        """Files (pid, status) and the latest progress: fast, but on Azure the progress is a warehouse read."""
        state_dir = self.settings.state_dir
        broker = local_broker.status(local_broker.LocalBroker.from_settings(self.settings)) if self.is_local else None
        progress = None
        if read_progress:
            try:
                progress = self._progress()
                self._progress_error = None
            except Exception as error:  # a store being created, a warehouse that refused: kept to be shown
                self._progress_error = str(error).splitlines()[0] if str(error) else type(error).__name__
                previous = getattr(self, "_snapshot", None)
                progress = previous.latest_progress if previous is not None else None
        return Snapshot(
            taken_at=time.time(),
            bootstrap=self.settings.bootstrap,
            local_broker=broker,
            kafka=self._kafka,
            producer=supervisor.job_view(state_dir, "producer"),
            consumer=supervisor.job_view(state_dir, "consumer"),
            latest_progress=progress,
            source=self.metrics.describe(),
            progress_error=self._progress_error,
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
            if kafka.reachable:
                self._add_kafka_rates(kafka, now)
            self._kafka_seen = self._kafka_seen or kafka.reachable
            self._note_producer(local.producer, now)
            self._note_batch(local, kafka)
            found = alerts.evaluate(self._alert_inputs(local, kafka, now))
            changes = self._alert_book.update(found, now)
            self._snapshot = dataclasses.replace(self._snapshot, alerts=tuple(self._alert_book.active()))
        if self.webhook is not None:
            for change in changes:
                self.webhook.send(alerts.webhook_text(change, _clock(now)))

    # -- what the alert rules read --------------------------------------------------------------

    def _note_producer(self, producer: supervisor.JobView, now: float) -> None:
        acked = (producer.status or {}).get("acked")
        if not producer.running or not isinstance(acked, int):
            self._last_ack = None
        elif self._last_ack is None or acked != self._last_ack[1]:
            self._last_ack = (now, acked)

    def _note_batch(self, local: Snapshot, kafka: KafkaSample) -> None:
        progress = local.latest_progress
        if progress is None:
            return
        if progress.query_id != self._batches_query:
            self._batches.clear()
            self._batches_query = progress.query_id
        if self._batches and self._batches[-1].batch_id >= progress.batch_id:
            return
        status = local.consumer.status or {}
        written = status.get("last_written") or {}
        dead = int(written.get("dead_letters", 0)) if written.get("batch_id") == progress.batch_id else 0
        topic = str(status.get("topic") or "")
        end = {p: o.high for p, o in kafka.topics.get(topic, {}).items()} if kafka.reachable else None
        self._batches.append(
            alerts.BatchFigures(
                progress.batch_id, batch_lag(progress, end), progress.batch_duration_ms, progress.input_rows, dead
            )
        )

    def _alert_inputs(self, local: Snapshot, kafka: KafkaSample, now: float) -> alerts.Inputs:
        consumer = local.consumer
        topic = str((consumer.status or {}).get("topic") or "")
        progress = local.latest_progress
        same_query = progress is not None and (consumer.status or {}).get("query_id") in (None, progress.query_id)
        aged = (
            aged_out_per_partition(kafka.topics.get(topic, {}), progress.end_offsets)
            if progress is not None and same_query and consumer.running
            else {}
        )
        return alerts.Inputs(
            now=now,
            kafka_sampled=kafka.sampled_at > 0,
            kafka_reachable=kafka.reachable,
            kafka_was_reachable=self._kafka_seen,
            kafka_error=kafka.error,
            producer_running=local.producer.running,
            producer_started_at=local.producer.started_at,
            last_ack_at=self._last_ack[0] if self._last_ack is not None else None,
            consumer_running=consumer.running,
            trigger_ms=trigger_ms(consumer.arguments) if consumer.running else None,
            batches=list(self._batches) if consumer.running else [],
            aged_out=sum(aged.values()),
        )

    def _add_kafka_rates(self, kafka: KafkaSample, now: float) -> None:
        # Offsets another process sampled (a Delta table) are timed by that sampling: the same
        # offsets read again add nothing, rather than a zero rate and then a jump.
        at = kafka.offsets_at if kafka.offsets_at is not None else now
        for topic, partitions in kafka.topics.items():
            self._topic_history.setdefault(topic, RateHistory()).add(at, sum(p.high for p in partitions.values()))
            for partition, offsets in partitions.items():
                self._partition_history.setdefault((topic, partition), RateHistory()).add(at, offsets.high)
        # Measured rates are timed by the measurement (Ambari's metrics change once a minute).
        measured_at = kafka.rates_at if kafka.rates_at is not None else kafka.sampled_at
        for topic, per_second in (kafka.messages_in_per_s or {}).items():
            if topic not in kafka.topics:  # no offsets for it: the source's own rate
                self._topic_history.setdefault(topic, RateHistory()).add_rate(measured_at, per_second)
        if kafka.all_messages_in_per_s is not None:
            self._all_history[ALL_MESSAGES].add_rate(measured_at, kafka.all_messages_in_per_s)
        elif kafka.topics:
            total = sum(p.high for partitions in kafka.topics.values() for p in partitions.values())
            self._all_history[ALL_MESSAGES].add(at, total)
        if kafka.all_bytes_in_per_s is not None:
            self._all_history[ALL_BYTES].add_rate(measured_at, kafka.all_bytes_in_per_s)

    def _sample_kafka(self) -> KafkaSample:
        with self._kafka_lock:
            if self._metrics_closed:
                return self._kafka
            try:
                return self.metrics.sample()
            except Exception as error:  # a source must not raise; if one does, the page says what
                return KafkaSample(
                    reachable=False,
                    sampled_at=time.time(),
                    error=f"{self.metrics.describe()}: the sample failed ({type(error).__name__})",
                )


_instances: weakref.WeakSet[Monitor] = weakref.WeakSet()


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(seconds))


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

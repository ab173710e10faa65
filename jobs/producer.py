"""The producer job (``python -m jobs.producer``): tweets from a synthetic stream, a replay file or X into a topic.

Idempotent with acks=all; what Kafka finally refuses is counted and kept in ``failed.jsonl`` beside the status file,
so nothing is dropped silently. Kafka security comes from the settings and the environment, never from flags, so
no secret is on a command line. Options: backend/options/producer.py; how to run it: docs/producer.md.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from backend.kafka.clients import client_config
from backend.kafka.connection import ClientErrors, ConnectFailed, wait_for_metadata
from backend.kafka.topics import TopicError, TopicSpec, create_topic
from backend.options.producer import LINGER_MS, PRODUCER, message_timeout_ms, rate_of
from backend.runtime import processes
from backend.runtime.job_files import JobFiles, pid_and_lock_files, write_status
from backend.settings import Settings, load_settings
from backend.tweets.sources import (
    Outgoing,
    Pacer,
    ReplayClock,
    Skipped,
    replay_records,
    synthetic_source,
)
from backend.tweets.synthetic import SyntheticTweets

# A silent address is given up after this; a closed port, a refused login or certificate at once
# (backend.kafka.connection.ClientErrors.terminal says which errors retrying does not fix).
CONNECT_TIMEOUT_S = 10.0
# Ends a "cannot reach Kafka" message, after what that says to check (is the broker running...).
UNREACHABLE_HINT = "For the local one: python -m backend.kafka.local_broker start"
STATUS_INTERVAL_S = 1.0
SAMPLE_SIZE = 20  # the latest messages kept in the status file for the dashboard
SAMPLE_TEXT_CHARS = 280


@dataclass(frozen=True)
class ProducerOptions:
    bootstrap: str
    topic: str
    source: str
    rate: float
    count: int | None
    duration: float | None
    seed: int
    malformed_rate: float
    authors: int
    file: Path | None
    loop: bool
    speed: float | None
    query: str | None
    x_mode: str
    create_topic: bool
    delivery_timeout: float
    flush_timeout: float
    status_file: Path
    failed_file: Path


def parse_options(argv: list[str] | None, settings: Settings) -> ProducerOptions:
    """The options, checked (backend.options.producer); a wrong one exits with code 2 and the reason."""
    values = PRODUCER.parse(argv, settings)
    status_file = values["status_file"] or JobFiles(settings.state_dir, "producer").status_file
    return ProducerOptions(
        bootstrap=values["bootstrap"] or settings.bootstrap,
        topic=values["topic"],
        source=values["source"],
        rate=rate_of(values),
        count=values["count"],
        duration=values["duration"],
        seed=values["seed"] if values["seed"] is not None else int.from_bytes(os.urandom(3), "big"),
        malformed_rate=values["malformed_rate"],
        authors=values["authors"],
        file=values["file"],
        loop=values["loop"],
        speed=values["speed"],
        query=values["query"],
        x_mode=values["x_mode"],
        create_topic=values["create_topic"],
        delivery_timeout=values["delivery_timeout"],
        flush_timeout=values["flush_timeout"],
        status_file=status_file,
        failed_file=status_file.with_name("failed.jsonl"),
    )


def kafka_producer_config(options: ProducerOptions, settings: Settings) -> dict[str, Any]:
    """librdkafka settings: no loss, no duplicates, and batches large enough for throughput."""
    return {
        **client_config(settings),
        "bootstrap.servers": options.bootstrap,
        # librdkafka's default is false: with it, retries after a lost connection cannot
        # duplicate or reorder messages.
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": LINGER_MS,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 500_000,
        "message.timeout.ms": message_timeout_ms(options.delivery_timeout),
        "socket.connection.setup.timeout.ms": int(CONNECT_TIMEOUT_S * 1000),
        "client.id": "tweetstream-producer",
    }


class Counters:
    """What the job has done so far; updated from the main loop and delivery callbacks."""

    def __init__(self) -> None:
        self.sent = 0  # handed to Kafka
        self.acked = 0  # acknowledged by all in-sync replicas
        self.failed = 0  # refused for good (kept in failed.jsonl)
        self.skipped = 0  # inputs that were not tweets
        self.malformed_sent = 0  # deliberately broken values sent (synthetic --malformed-rate)
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.broker_connected = True
        self.info: str | None = None

    def error(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = time.time()


class ProducerJob:
    """Runs one producer until its count, its duration, a stop signal or a fatal error."""

    def __init__(self, options: ProducerOptions, settings: Settings) -> None:
        self.options = options
        self.settings = settings
        self.counters = Counters()
        self.stop = threading.Event()
        self.stop_requested = False  # by a signal, not by an error
        self.started_at = time.time()
        self.state = "starting"
        self.sample: deque[dict[str, str]] = deque(maxlen=SAMPLE_SIZE)
        self.sending_began: float | None = None  # when the first event went out
        self.sending_s: float | None = None  # from the first event sent to the last acknowledged
        self._rate_points: deque[tuple[float, int, int]] = deque(maxlen=16)  # (time, sent, acked)
        self.producer: Producer | None = None
        self.fatal_error: str | None = None  # librdkafka's, after which this producer can send nothing
        password = settings.kafka_sasl_password
        # Kafka's errors, kept to explain a failed start; and no message of the job shows the password.
        self.kafka_errors = ClientErrors(secrets=[password.get_secret_value()] if password else [])

    # -- Kafka callbacks (run inside poll/flush on this thread) ---------------------------

    def _on_delivery(self, error: KafkaError | None, message: Any) -> None:
        if error is None:
            self.counters.acked += 1
            if not self.counters.broker_connected:
                self.counters.broker_connected = True
                self.counters.info = "broker reachable again"
            return
        reason = self.kafka_errors.scrub(error.str())
        self.counters.failed += 1
        self.counters.error(f"delivery failed: {reason}")
        self._keep_failed(message.key(), message.value(), reason)

    def _on_error(self, error: KafkaError) -> None:
        self.kafka_errors(error)
        said = self.kafka_errors.scrub(error.str())
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE):
            self.counters.broker_connected = False
            self.counters.error(f"broker unreachable, retrying: {said}")
        else:
            self.counters.error(said)
        if error.fatal():
            self.fatal_error = f"fatal Kafka error: {said}"
            self.counters.error(self.fatal_error)
            self.stop.set()

    def _keep_failed(self, key: bytes | None, value: bytes | None, reason: str) -> None:
        """Append a refused message to failed.jsonl: its value when it is JSON, else a note."""
        try:
            line = json.dumps(json.loads(value or b""), ensure_ascii=False, separators=(",", ":"))
        except ValueError:
            line = json.dumps({"failed_raw": (value or b"")[:1000].decode("utf-8", "replace"), "reason": reason})
        # Opened per message: failures are rare, and each line is on disk before the next.
        self.options.failed_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.options.failed_file, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    # -- status ---------------------------------------------------------------------------

    def events_per_second(self) -> tuple[float, float]:
        """Sent and acknowledged events per second over the last few seconds."""
        if len(self._rate_points) < 2:
            return 0.0, 0.0
        (t0, s0, a0), (t1, s1, a1) = self._rate_points[0], self._rate_points[-1]
        span = t1 - t0
        return ((s1 - s0) / span, (a1 - a0) / span) if span > 0 else (0.0, 0.0)

    def status(self) -> dict[str, Any]:
        sent_rate, acked_rate = self.events_per_second()
        c = self.counters
        return {
            "job": "producer",
            "state": self.state,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "source": self.options.source,
            "topic": self.options.topic,
            "bootstrap": self.options.bootstrap,
            "seed": self.options.seed if self.options.source == "synthetic" else None,
            "rate_target": self.options.rate,
            "sent": c.sent,
            "acked": c.acked,
            "failed": c.failed,
            "skipped": c.skipped,
            "malformed_sent": c.malformed_sent,
            "in_flight": len(self.producer) if self.producer is not None else 0,
            "sent_per_s": round(sent_rate, 1),
            "acked_per_s": round(acked_rate, 1),
            "broker_connected": c.broker_connected,
            "last_error": c.last_error,
            "last_error_at": c.last_error_at,
            "info": c.info,
            "failed_file": str(self.options.failed_file) if c.failed else None,
            "sample": list(self.sample),
        }

    def write_status(self) -> None:
        self._rate_points.append((time.monotonic(), self.counters.sent, self.counters.acked))
        write_status(self.options.status_file, self.status())

    # -- the run --------------------------------------------------------------------------

    def connect(self) -> None:
        """Create the producer and check the broker and the topic, or raise with the reason.

        A closed port on every broker, a refused login or certificate end it at once; a silent
        address after CONNECT_TIMEOUT_S (the same wait and messages as the console's Test connection).
        """
        config = kafka_producer_config(self.options, self.settings)
        config["error_cb"] = self._on_error
        self.producer = Producer(config)
        try:
            metadata = wait_for_metadata(
                self.producer, self.kafka_errors, self.options.bootstrap, CONNECT_TIMEOUT_S, hint=UNREACHABLE_HINT
            )
        except ConnectFailed as error:
            raise RuntimeError(str(error)) from None
        if self.options.topic not in metadata.topics:
            if not self.options.create_topic:
                raise RuntimeError(
                    f"topic {self.options.topic!r} does not exist on {self.options.bootstrap}: create it on the "
                    "console's Setup page, or run the producer with --create-topic"
                )
            admin = AdminClient({**client_config(self.settings), "bootstrap.servers": self.options.bootstrap})
            try:
                create_topic(admin, TopicSpec(self.options.topic))
            except TopicError as error:
                raise RuntimeError(f"cannot create topic {self.options.topic!r}: {error}") from None
            self.counters.info = f"created topic {self.options.topic!r} with 4 partitions"

    def messages(self) -> Iterator[Outgoing | Skipped]:
        options = self.options
        if options.source == "synthetic":
            return synthetic_source(SyntheticTweets(seed=options.seed, authors=options.authors), options.malformed_rate)
        if options.source == "replay":
            return self._replay()
        return self._x_tweets()

    def _replay(self) -> Iterator[Outgoing | Skipped]:
        assert self.options.file is not None
        clock = ReplayClock(self.options.speed) if self.options.speed else None
        while not self.stop.is_set():
            for item in replay_records(self.options.file):
                if clock is not None and isinstance(item, Outgoing):
                    gap = clock.gap(item.event_time)
                    if gap and self._wait(gap):
                        return
                yield item
            if not self.options.loop:
                return

    def _x_tweets(self) -> Iterator[Outgoing | Skipped]:
        """Tweets from X, read on a thread so a stop is seen at once, not after a read timeout."""
        from backend.tweets import x_client, x_source
        from backend.tweets.contract import encode_message

        assert self.settings.x_bearer_token is not None
        config = x_client.XSourceConfig(
            base_url=self.settings.x_api_base_url, query=self.options.query, mode=self.options.x_mode
        )
        inbox: queue.Queue[dict[str, Any] | BaseException | None] = queue.Queue(maxsize=10_000)

        def report(message: str) -> None:
            self.counters.info = message

        def read() -> None:
            try:
                token = self.settings.x_bearer_token.get_secret_value()
                for envelope in x_source.iter_tweets(config, token, self.stop, report=report):
                    inbox.put(envelope)
            except BaseException as error:  # handed to the main loop, which stops with it
                inbox.put(error)
            finally:
                inbox.put(None)

        threading.Thread(target=read, name="x-reader", daemon=True).start()
        while True:
            try:
                item = inbox.get(timeout=0.2)
            except queue.Empty:
                if self.stop.is_set():
                    return
                yield Skipped("", "idle")  # lets the main loop write its status while X is quiet
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise RuntimeError(str(item)) from None
            key, value = encode_message(item)
            yield Outgoing(key, value)

    def _wait(self, seconds: float) -> bool:
        """Sleep while serving Kafka's callbacks; True when a stop came meanwhile."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stop.is_set():
                return self.stop.is_set()
            self.producer.poll(min(remaining, 0.1))

    def run(self) -> int:
        options = self.options
        self.state = "connecting"
        self.write_status()
        try:
            self.connect()
        except RuntimeError as error:
            return self._finish("failed", str(error))
        assert self.producer is not None
        producer = self.producer
        produce = producer.produce
        topic = options.topic
        on_delivery = self._on_delivery
        counters = self.counters
        pacer = Pacer(options.rate) if options.rate else None
        count_limit = options.count
        began = time.monotonic()
        end_time = began + options.duration if options.duration else None
        next_status = began
        self.state = "running"
        self.write_status()
        self.sending_began = time.monotonic()
        failure: str | None = None
        try:
            for item in self.messages():
                if isinstance(item, Skipped):
                    if item.reason != "idle":
                        counters.skipped += 1
                        counters.info = f"skipped {item.where}: {item.reason}"
                else:
                    if pacer is not None:
                        delay = pacer.wait_time()
                        if delay > 0.001 and self._wait(delay):
                            break
                    while True:
                        try:
                            produce(topic, item.value, item.key, on_delivery=on_delivery)
                            break
                        except BufferError:  # the local queue is full: let deliveries drain it
                            producer.poll(0.05)
                        except KafkaException as error:  # refused before sending (e.g. too large)
                            counters.failed += 1
                            counters.error(f"refused by the client: {error.args[0].str()}")
                            self._keep_failed(item.key, item.value, error.args[0].str())
                            break
                    counters.sent += 1
                    if item.malformed:
                        counters.malformed_sent += 1
                    if counters.sent % 1000 == 0 or pacer is not None:
                        producer.poll(0)
                    if len(self.sample) < SAMPLE_SIZE or counters.sent % 97 == 0:
                        self._remember(item)
                    if count_limit is not None and counters.sent >= count_limit:
                        break
                if self.stop.is_set():
                    break
                if counters.sent % 256 == 0 or pacer is not None or isinstance(item, Skipped):
                    now = time.monotonic()
                    if end_time is not None and now >= end_time:
                        break
                    if now >= next_status:
                        producer.poll(0)
                        self.write_status()
                        next_status = now + STATUS_INTERVAL_S
        except RuntimeError as error:
            failure = str(error)
        return self._drain(failure)

    def _remember(self, item: Outgoing) -> None:
        """Keep a few of the latest tweets (id and text only) for the dashboard's sample."""
        try:
            tweet = json.loads(item.value)["data"]
            self.sample.append({"id": str(tweet["id"]), "text": str(tweet.get("text", ""))[:SAMPLE_TEXT_CHARS]})
        except (ValueError, KeyError, TypeError):
            pass  # a deliberately malformed value: nothing to show

    def _drain(self, failure: str | None) -> int:
        """Wait for outstanding acknowledgements; what never comes counts as failed, kept aside."""
        assert self.producer is not None
        self.state = "stopping"
        self.write_status()
        deadline = time.monotonic() + self.options.flush_timeout
        while len(self.producer) and time.monotonic() < deadline:
            self.producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
            self.write_status()
        if self.sending_began is not None:
            self.sending_s = time.monotonic() - self.sending_began
        if len(self.producer):
            # Purged messages come back through the delivery callback as failed: counted and kept.
            self.producer.purge()
            self.producer.flush(5)
            self.counters.error(f"flush timed out after {self.options.flush_timeout:g} s")
        failure = failure or self.fatal_error
        if failure is not None:
            return self._finish("failed", failure)
        # "stopped": by SIGTERM or Ctrl+C (the console's Stop); "finished": --count, --duration or the file's end.
        done = "stopped" if self.stop_requested else "finished"
        if self.counters.failed:
            return self._finish(done, f"{self.counters.failed} events failed; kept in {self.options.failed_file}")
        return self._finish(done, None)

    def _finish(self, state: str, error: str | None) -> int:
        self.state = state
        if error:
            self.counters.error(error)
        self.write_status()
        summary = {k: v for k, v in self.status().items() if k not in ("sample", "pid")}
        summary["elapsed_s"] = round(time.time() - self.started_at, 3)
        summary["sending_s"] = round(self.sending_s, 3) if self.sending_s is not None else None
        print(json.dumps(summary, sort_keys=True), flush=True)
        if error:
            print(f"error: {error}", file=sys.stderr, flush=True)
        return 0 if state in ("finished", "stopped") and not self.counters.failed and error is None else 1


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings()
    except ValueError as error:
        print(f"error: invalid settings: {error}", file=sys.stderr)
        return 2
    options = parse_options(argv, settings)
    job = ProducerJob(options, settings)

    def on_signal(signum: int, _frame: object) -> None:
        job.counters.info = f"stopping on {signal.Signals(signum).name}"
        job.stop_requested = True
        job.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if options.source == "synthetic":
        print(f"synthetic tweets with --seed {options.seed}", file=sys.stderr, flush=True)
    # One producer per status file: the console's Start and a terminal cannot both run one.
    try:
        with processes.hold_pid_file(*pid_and_lock_files(options.status_file)):
            return job.run()
    except processes.AlreadyRunning as error:
        print(f"error: the producer is {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

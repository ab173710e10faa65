"""One click to a running pipeline on this machine: the Overview's Start demo pipeline and Stop pipeline.

Start checks everything it can first (the target, the profile, jobs running with other options, the
consumer's options against its store) and refuses, saying why, before anything starts; then it starts
the local broker if needed, creates the topic if missing, and starts the synthetic producer at a gentle
rate and the Spark job with its defaults. Each step is told to ``say`` as it goes (the page's st.status).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backend.console.job_controls import LocalJobControls, Outcome
from backend.console.job_requests import ConsumerRequest, ProducerRequest, RequestError, check_consumer, check_producer
from backend.console.monitor import Monitor
from backend.console.supervisor import JOB_NAMES, JobName
from backend.kafka import local_broker, topics
from backend.kafka.clients import quiet_admin_client
from backend.settings import Settings

DEMO_RATE = 20.0  # events/s: enough to fill the charts, gentle on a laptop's two cores
BROKER_TIMEOUT_S = 120.0


class DemoRefused(RuntimeError):
    """The demo cannot start here; the message says why and what to do."""


@dataclass(frozen=True)
class DemoPlan:
    """What Start demo pipeline would run: each job's checked arguments."""

    producer: list[str]
    consumer: list[str]
    topic: str


def plan(settings: Settings, running: dict[JobName, tuple[str, ...] | None]) -> DemoPlan:
    """The demo's jobs, or DemoRefused. ``running``: each job's arguments when it runs, else None. Pure but for
    the consumer's check of its store and checkpoint (files)."""
    if settings.pipeline_target == "azure":
        raise DemoRefused(
            "The pipeline target is Azure: the demo runs on this machine. Start the Databricks jobs from the "
            "Producer and Consumer pages, or switch the target to this machine on Setup → 5. Azure."
        )
    if settings.bootstrap_servers:
        raise DemoRefused(
            f"The active connection profile is another cluster ({settings.bootstrap}): the demo runs on this "
            "machine's broker. Choose \"This machine's broker\" on Setup → 3. Kafka connection."
        )
    producer_request = ProducerRequest(rate=DEMO_RATE)
    try:
        wanted: dict[JobName, list[str]] = {
            "producer": check_producer(producer_request, settings),
            "consumer": check_consumer(ConsumerRequest(topic=producer_request.topic), settings),
        }
    except RequestError as error:
        raise DemoRefused(f"The demo's options are refused: {error}") from None
    for name, arguments in running.items():
        if arguments is not None and list(arguments) != wanted[name]:
            label = "producer" if name == "producer" else "Spark job"
            raise DemoRefused(
                f"The {label} already runs with other options ({' '.join(arguments) or 'its defaults'}). "
                "Stop it first (Stop pipeline), or keep it and start the other job from its page."
            )
    return DemoPlan(wanted["producer"], wanted["consumer"], producer_request.topic)


def start(settings: Settings, monitor: Monitor, say: Callable[[str], None]) -> Outcome:
    """Start the demo pipeline; never raises (a refusal or a failed step comes back as an error outcome)."""
    snapshot = monitor.snapshot()
    running: dict[JobName, tuple[str, ...] | None] = {
        "producer": snapshot.producer.arguments if snapshot.producer.running else None,
        "consumer": snapshot.consumer.arguments if snapshot.consumer.running else None,
    }
    try:
        demo = plan(settings, running)
    except DemoRefused as error:
        return Outcome("error", f"Not started: {error}")
    broker = local_broker.LocalBroker.from_settings(settings)
    if not local_broker.status(broker).running and not monitor.refresh().kafka.reachable:
        say(f"Starting the local Kafka broker at {broker.bootstrap}…")
        try:
            local_broker.start(broker, timeout=BROKER_TIMEOUT_S, progress=lambda step: say(f"… {step}"))
        except local_broker.BrokerError as error:
            return Outcome("error", "Not started: the local broker did not start.", str(error))
    try:
        admin = quiet_admin_client(settings)
        if demo.topic not in topics.list_topics(admin):
            say(f"Creating the topic {demo.topic} ({topics.TopicSpec(demo.topic).partitions} partitions)…")
            topics.create_topic(admin, topics.TopicSpec(demo.topic))
        else:
            say(f"The topic {demo.topic} is there.")
    except topics.TopicError as error:
        return Outcome("error", f"Not started: {error}")
    controls = LocalJobControls(settings.state_dir)
    lines = []
    steps: tuple[tuple[JobName, list[str]], ...] = (("producer", demo.producer), ("consumer", demo.consumer))
    for name, arguments in steps:
        say(f"Starting the {'synthetic producer' if name == 'producer' else 'Spark job'}…")
        outcome = controls.start(name, lambda arguments=arguments: arguments, monitor)
        if outcome.kind == "error":
            return outcome
        say(outcome.headline)
        lines.append(outcome.headline)
    monitor.refresh()
    return Outcome(
        "success",
        f"Demo pipeline running: synthetic tweets at {DEMO_RATE:g} events/s into {demo.topic}, read by the Spark job; "
        "the first windows show in about a minute.",
        "\n".join(lines),
    )


def start_one(settings: Settings, monitor: Monitor, name: JobName) -> Outcome:
    """Start one job with the demo's options (a fix under the diagram); Kafka must answer."""
    other: JobName = "consumer" if name == "producer" else "producer"
    try:
        # The other job may run with any options here: only this one starts.
        demo = plan(settings, {name: None, other: None})
    except DemoRefused as error:
        return Outcome("error", f"Not started: {error}")
    arguments = demo.producer if name == "producer" else demo.consumer
    return LocalJobControls(settings.state_dir).start(name, lambda: arguments, monitor)


def stop(settings: Settings, monitor: Monitor, say: Callable[[str], None]) -> Outcome:
    """Stop both jobs (the producer first, so the Spark job reads what it sent)."""
    controls = LocalJobControls(settings.state_dir)
    snapshot = monitor.snapshot()
    lines = []
    for name in JOB_NAMES:
        if not controls.running(name, snapshot):
            continue
        say(controls.buttons(name).stopping)
        lines.append(controls.stop(name).headline)
    monitor.refresh()
    if not lines:
        return Outcome("info", "Neither job was running.")
    return Outcome("info", "Pipeline stopped: " + " ".join(lines))

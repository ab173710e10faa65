"""The pipeline at a glance: each hop's health and live figure, and the Graphviz DOT the Overview draws.

Pure: the page gathers a ``Facts`` from the monitor and the store, ``local_nodes`` or ``azure_nodes``
judge each hop, ``dot`` writes the diagram (``st.graphviz_chart`` draws it in the browser) and
``problems`` lists the unhealthy hops with the action that fixes each. Unit-tested without services.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from backend.console.alerts import Alert
from backend.console.monitor import Snapshot, lag_per_partition

Health = Literal["running", "stopped", "failing", "behind"]
# What fixes a hop: the page turns each into a button (or a link to the page that does).
Fix = Literal["start-broker", "start-producer", "start-consumer", "start-demo", "setup", "consumer-page"]

# Fill and border colours per health; the legend under the diagram uses the same.
COLOURS: dict[Health, tuple[str, str]] = {
    "running": ("#d8f0dc", "#2e7d32"),
    "stopped": ("#eceff1", "#78909c"),
    "failing": ("#fde0dc", "#c62828"),
    "behind": ("#fff3cd", "#e68a00"),
}
DOT_NEWLINE = "\\n"  # a line break inside a DOT label
HEALTH_WORDS: dict[Health, str] = {
    "running": "healthy",
    "stopped": "stopped",
    "failing": "failing",
    "behind": "falling behind",
}


@dataclass(frozen=True)
class Facts:
    """What the monitor and the store say now, reduced to what the diagram shows."""

    kafka_reachable: bool
    kafka_error: str | None
    broker_is_local: bool  # the profile's cluster is this machine's broker (it can be started from here)
    topic: str
    topic_exists: bool
    topic_messages: int | None
    lag: int | None  # records the Spark job has not processed yet
    source: str  # the producer's source: synthetic, replay, x
    producer_running: bool
    producer_state: str
    producer_rate: float | None  # acknowledged events/s, latest
    consumer_running: bool
    consumer_state: str
    batch_duration_ms: int | None
    input_rows_per_second: float | None
    newest_window: str | None  # ISO 8601 UTC window start
    alerts: Sequence[Alert] = ()


@dataclass(frozen=True)
class Node:
    key: str
    title: str
    figure: str  # the live figure under the title, "" for none
    health: Health
    problem: str | None = None  # one line: what is wrong (None when healthy, or stopped with nothing to say)
    fix: Fix | None = None


def _argument(arguments: Sequence[str], name: str) -> str | None:
    prefix = f"--{name}="
    return next((a[len(prefix) :] for a in arguments if a.startswith(prefix)), None)


def facts(
    snapshot: Snapshot,
    producer_rate: float | None,
    newest_window: str | None,
    default_topic: str,
    broker_is_local: bool,
) -> Facts:
    """The diagram's facts from the monitor's snapshot; the topic is the one the jobs use (else ``default_topic``)."""
    producer, consumer = snapshot.producer, snapshot.consumer
    topic = (
        str((consumer.status or {}).get("topic") or "")
        or _argument(consumer.arguments, "topic")
        or _argument(producer.arguments, "topic")
        or default_topic
    )
    partitions = snapshot.kafka.topics.get(topic)
    latest = snapshot.latest_progress
    lag = None
    if partitions is not None and latest is not None:
        per_partition = lag_per_partition({p: o.high for p, o in partitions.items()}, latest.end_offsets)
        known = [value for value in per_partition.values() if value is not None]
        lag = sum(known) if known else None
    running_batch = consumer.running and latest is not None
    return Facts(
        kafka_reachable=snapshot.kafka.reachable,
        kafka_error=snapshot.kafka.error,
        broker_is_local=broker_is_local,
        topic=topic,
        # Where the source gives no offsets (Ambari), the topic is taken to be there.
        topic_exists=partitions is not None or snapshot.kafka.offsets_note is not None,
        topic_messages=sum(p.messages for p in partitions.values()) if partitions is not None else None,
        lag=lag,
        source=_argument(producer.arguments, "source") or str((producer.status or {}).get("source") or "source"),
        producer_running=producer.running,
        producer_state=producer.state,
        producer_rate=producer_rate,
        consumer_running=consumer.running,
        consumer_state=consumer.state,
        batch_duration_ms=latest.batch_duration_ms if running_batch and latest is not None else None,
        input_rows_per_second=latest.input_rows_per_second if running_batch and latest is not None else None,
        newest_window=newest_window,
        alerts=snapshot.alerts,
    )


def _alerts_at(facts: Facts, where: str) -> list[Alert]:
    return [alert for alert in facts.alerts if alert.where == where]


def _job_health(running: bool, state: str, alerts: Sequence[Alert]) -> Health:
    if state == "failed" or (running and any(a.key == "producer-stalled" for a in alerts)):
        return "failing"
    if not running:
        return "stopped"
    return "behind" if alerts else "running"


def _window_clock(iso: str | None) -> str:
    return "no window yet" if iso is None else f"newest window {iso[11:16]} UTC"


def _producer(facts: Facts, label: str) -> Node:
    alerts = _alerts_at(facts, "producer")
    health = _job_health(facts.producer_running, facts.producer_state, alerts)
    figure = (
        f"{facts.producer_rate:,.1f} events/s" if facts.producer_running and facts.producer_rate is not None else ""
    )
    figure = figure or facts.producer_state
    problem = alerts[0].title if alerts else None
    if health == "failing" and problem is None:
        problem = "The producer failed: its last error is on the Producer page."
    elif health == "stopped":
        problem = "The producer is not running: no tweets reach the topic."
    return Node("producer", label, figure, health, problem, "start-producer" if not facts.producer_running else None)


def _consumer(facts: Facts, label: str) -> Node:
    alerts = _alerts_at(facts, "consumer")
    health = _job_health(facts.consumer_running, facts.consumer_state, alerts)
    if facts.consumer_running and facts.batch_duration_ms is not None:
        figure = f"batch {facts.batch_duration_ms / 1000:.1f} s"
        if facts.input_rows_per_second is not None:
            figure += f" · {facts.input_rows_per_second:,.1f} rows/s"
    else:
        figure = facts.consumer_state
    problem = alerts[0].title if alerts else None
    fix: Fix | None = "consumer-page" if alerts else None
    if health == "failing" and problem is None:
        problem = "The Spark job failed: its last error is on the Consumer page."
        fix = "start-consumer"
    elif health == "stopped":
        problem = "The Spark job is not running: the charts do not grow."
        fix = "start-consumer"
    return Node("consumer", label, figure, health, problem, fix)


def _kafka(facts: Facts, label: str) -> Node:
    alerts = _alerts_at(facts, "kafka")
    if not facts.kafka_reachable:
        fix: Fix = "start-broker" if facts.broker_is_local else "setup"
        # Failing when something needs it (a job, or it answered before); a broker never started is just stopped.
        needed = facts.producer_running or facts.consumer_running or any(a.key == "kafka-down" for a in alerts)
        problem = f"Kafka does not answer: {facts.kafka_error}"
        return Node("kafka", label, "not answering", "failing" if needed else "stopped", problem, fix)
    if not facts.topic_exists:
        return Node("kafka", label, "no such topic", "stopped", f"The topic {facts.topic} does not exist yet.", "setup")
    figure = f"{facts.topic_messages:,} messages" if facts.topic_messages is not None else ""
    if facts.lag is not None:
        figure += f" · lag {facts.lag:,}"
    if alerts:
        return Node("kafka", label, figure, "behind", alerts[0].title, "consumer-page")
    return Node("kafka", label, figure, "running")


def local_nodes(facts: Facts) -> list[Node]:
    """source -> producer -> topic -> Spark job -> store -> console, on this machine."""
    source_health: Health = "running" if facts.producer_running else "stopped"
    has_window = facts.newest_window is not None
    return [
        Node("source", "source", facts.source, source_health),
        _producer(facts, "producer"),
        _kafka(facts, f"Kafka topic {facts.topic}"),
        _consumer(facts, "Spark job"),
        Node("store", "SQLite store", _window_clock(facts.newest_window), "running" if has_window else "stopped"),
        Node("console", "console", "charts", "running"),
    ]


def azure_nodes(facts: Facts) -> list[Node]:
    """producer job -> HDInsight Kafka -> consumer job -> Delta tables -> SQL warehouse -> console, on Azure."""
    has_window = facts.newest_window is not None
    nodes = [
        Node("source", "source", facts.source, "running" if facts.producer_running else "stopped"),
        _producer(facts, "Databricks producer job"),
        _kafka(facts, f"HDInsight Kafka {facts.topic}"),
        _consumer(facts, "Databricks consumer job"),
        Node("store", "Delta tables", _window_clock(facts.newest_window), "running" if has_window else "stopped"),
        Node("warehouse", "SQL warehouse", "statement execution API", "running"),
        Node("console", "console", "charts", "running"),
    ]
    # Broker processes and jobs there are not started from this machine's buttons: their Databricks panels do.
    return [_cloud_fix(node) for node in nodes]


def _cloud_fix(node: Node) -> Node:
    if node.fix in ("start-broker", "start-producer", "start-consumer", "start-demo"):
        fix: Fix = "setup" if node.key == "kafka" else "consumer-page"
        return Node(node.key, node.title, node.figure, node.health, node.problem, fix)
    return node


def problems(nodes: Sequence[Node]) -> list[Node]:
    """The hops that are not healthy and say what is wrong, in the order of the flow."""
    return [node for node in nodes if node.health != "running" and node.problem is not None]


def _quoted(text: str) -> str:
    """A DOT string literal: backslashes and quotes escaped, one line."""
    return '"' + " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(nodes: Sequence[Node]) -> str:
    """The flow as Graphviz DOT, left to right, each node filled by its health and labelled with its figure."""
    lines = [
        "digraph pipeline {",
        "  rankdir=LR; bgcolor=transparent;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=12, penwidth=2];',
        '  edge [color="#607d8b", penwidth=1.5];',
    ]
    for node in nodes:
        fill, border = COLOURS[node.health]
        parts = [node.title, node.figure, f"({HEALTH_WORDS[node.health]})"] if node.figure else [node.title]
        # Each part escaped on its own, then joined with DOT's line break (a literal backslash-n).
        label = DOT_NEWLINE.join(_quoted(part)[1:-1] for part in parts)
        health = _quoted(HEALTH_WORDS[node.health])
        lines.append(f'  {node.key} [label="{label}", fillcolor="{fill}", color="{border}", tooltip={health}];')
    for before, after in itertools.pairwise(nodes):
        lines.append(f"  {before.key} -> {after.key};")
    lines.append("}")
    return "\n".join(lines)

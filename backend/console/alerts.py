"""The pipeline's alerts: pure rules over what the monitor sampled, and since when each holds.

The monitor evaluates them at every sample (``evaluate``), an ``AlertBook`` remembers when each
started so the pages can say "since 12:03:10 UTC", and the webhook gets one message when an alert
starts and one when it clears. No I/O here: unit-tested in tests/unit/test_alerts.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

AlertKey = Literal["kafka-down", "producer-stalled", "falling-behind", "aged-out", "dead-letters"]
Where = Literal["kafka", "producer", "consumer"]  # the diagram's node an alert belongs to

STALLED_AFTER_S = 30.0  # a running producer with nothing acknowledged for this long is stalled
RISING_BATCHES = 5  # lag rising over this many batches in a row: falling behind
SLOW_BATCHES = 5  # batch duration above the trigger this many batches in a row: falling behind
DEAD_LETTER_SHARE = 0.05  # dead letters above this share of the recent batches' input
DEAD_LETTER_MIN_RECORDS = 100  # ...once that many records were read (a share of 3 records says nothing)


@dataclass(frozen=True)
class Finding:
    """One rule that holds now: what is wrong and what to do."""

    key: AlertKey
    where: Where
    title: str
    what_to_do: str


@dataclass(frozen=True)
class Alert:
    """A finding with since when it holds (seconds since the epoch)."""

    key: AlertKey
    where: Where
    title: str
    what_to_do: str
    since: float


@dataclass(frozen=True)
class BatchFigures:
    """What the rules need of one micro-batch (from the job's progress reports and its status file)."""

    batch_id: int
    lag: int | None  # records the topic held beyond the batch's end offsets (Spark's latestOffset - endOffset)
    duration_ms: int
    input_rows: int = 0
    dead_letters: int = 0


@dataclass(frozen=True)
class Inputs:
    """What the monitor sampled, reduced to what the rules read."""

    now: float
    kafka_sampled: bool  # at least one Kafka sample was taken
    kafka_reachable: bool
    kafka_was_reachable: bool  # some earlier sample reached it (a broker never started is no alert)
    kafka_error: str | None
    producer_running: bool
    producer_started_at: float | None
    last_ack_at: float | None  # when the producer's acknowledged counter last grew
    consumer_running: bool
    trigger_ms: int | None  # the job's trigger interval (None: unknown or available-now)
    batches: Sequence[BatchFigures] = ()  # the latest batches of the running query, oldest first
    aged_out: int = 0  # records retention deleted before the job read them


def producer_stalled(inputs: Inputs) -> Finding | None:
    if not inputs.producer_running:
        return None
    last = inputs.last_ack_at if inputs.last_ack_at is not None else inputs.producer_started_at
    if last is None or inputs.now - last < STALLED_AFTER_S:
        return None
    return Finding(
        "producer-stalled",
        "producer",
        f"Producer stalled: nothing acknowledged for {inputs.now - last:.0f} s",
        "Check that Kafka answers and read the producer's last error and log on the Producer page.",
    )


def falling_behind(inputs: Inputs) -> Finding | None:
    if not inputs.consumer_running:
        return None
    batches = list(inputs.batches)
    lags = [b.lag for b in batches[-(RISING_BATCHES + 1) :] if b.lag is not None]
    if len(lags) == RISING_BATCHES + 1 and all(b > a for a, b in itertools.pairwise(lags)):
        return Finding(
            "falling-behind",
            "consumer",
            f"Spark job falling behind: lag rose over the last {RISING_BATCHES} batches to {lags[-1]:,} records",
            "Lower the producer's rate, or give the job a longer trigger or more records per micro-batch.",
        )
    slow = batches[-SLOW_BATCHES:]
    if (
        inputs.trigger_ms is not None
        and len(slow) == SLOW_BATCHES
        and all(b.duration_ms > inputs.trigger_ms for b in slow)
    ):
        return Finding(
            "falling-behind",
            "consumer",
            f"Spark job falling behind: the last {SLOW_BATCHES} batches took longer than the "
            f"{inputs.trigger_ms / 1000:g} s trigger (latest {slow[-1].duration_ms / 1000:.1f} s)",
            "Give the job a longer trigger, or lower the producer's rate.",
        )
    return None


def aged_out(inputs: Inputs) -> Finding | None:
    if inputs.aged_out <= 0:
        return None
    return Finding(
        "aged-out",
        "kafka",
        f"{inputs.aged_out:,} records aged out of the topic before the Spark job read them",
        "Raise the topic's retention (retention.ms); see the Consumer page for the job's choice.",
    )


def dead_letters(inputs: Inputs) -> Finding | None:
    read = sum(b.input_rows for b in inputs.batches)
    dead = sum(b.dead_letters for b in inputs.batches)
    if read < DEAD_LETTER_MIN_RECORDS or dead <= DEAD_LETTER_SHARE * read:
        return None
    return Finding(
        "dead-letters",
        "consumer",
        f"Dead letters: {dead / read:.0%} of the last {read:,} records break the message contract",
        "Look at the sample on the Consumer page, then fix the producer or its source.",
    )


def kafka_down(inputs: Inputs) -> Finding | None:
    if not inputs.kafka_sampled or inputs.kafka_reachable:
        return None
    if not (inputs.kafka_was_reachable or inputs.producer_running or inputs.consumer_running):
        return None  # nothing uses it yet: the diagram says it is stopped, no alarm
    return Finding(
        "kafka-down",
        "kafka",
        f"Kafka does not answer: {inputs.kafka_error or 'unreachable'}",
        "Start the broker (the button under the diagram, or Setup), or check the connection profile on Setup.",
    )


RULES = (kafka_down, producer_stalled, falling_behind, aged_out, dead_letters)


def evaluate(inputs: Inputs) -> list[Finding]:
    """Every rule that holds now, in the order of RULES."""
    return [finding for rule in RULES if (finding := rule(inputs)) is not None]


@dataclass(frozen=True)
class Change:
    """An alert that started or cleared at this evaluation (what the webhook is told)."""

    kind: Literal["started", "cleared"]
    alert: Alert


class AlertBook:
    """Since when each alert holds, across evaluations; what started and cleared at each."""

    def __init__(self) -> None:
        self._active: dict[AlertKey, Alert] = {}

    def update(self, findings: Sequence[Finding], now: float) -> list[Change]:
        changes: list[Change] = []
        current: dict[AlertKey, Alert] = {}
        for finding in findings:
            held = self._active.get(finding.key)
            since = held.since if held is not None else now
            current[finding.key] = Alert(finding.key, finding.where, finding.title, finding.what_to_do, since)
            if held is None:
                changes.append(Change("started", current[finding.key]))
        changes.extend(Change("cleared", alert) for key, alert in self._active.items() if key not in current)
        self._active = current
        return changes

    def active(self) -> list[Alert]:
        return list(self._active.values())


def webhook_text(change: Change, clock: str) -> str:
    """The webhook's message for one change; ``clock`` is the time it happened, as the pages write it.

    Only the rule's own words: no setting, address with credentials or token is ever in it."""
    alert = change.alert
    if change.kind == "started":
        return f":rotating_light: Tweet stream alert since {clock}: {alert.title}. What to do: {alert.what_to_do}"
    return f":white_check_mark: Cleared at {clock}: {alert.title}."

"""The alert rules, their since-when book, the webhook sender, and the Overview's pipeline diagram."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from backend.aggregates.records import Progress
from backend.console import alerts, pipeline
from backend.console.alerts import AlertBook, BatchFigures, Inputs
from backend.console.monitor import batch_lag, trigger_ms
from backend.console.webhook import Webhook, post_json

NOW = 1_800_000_000.0
HEALTHY = Inputs(
    now=NOW,
    kafka_sampled=True,
    kafka_reachable=True,
    kafka_was_reachable=True,
    kafka_error=None,
    producer_running=True,
    producer_started_at=NOW - 300,
    last_ack_at=NOW - 1,
    consumer_running=True,
    trigger_ms=2000,
    batches=[BatchFigures(i, 40, 900, 100, 0) for i in range(8)],
)


def keys(inputs: Inputs) -> list[str]:
    return [finding.key for finding in alerts.evaluate(inputs)]


def test_a_healthy_pipeline_raises_nothing() -> None:
    assert keys(HEALTHY) == []


def test_kafka_down_only_once_sampled() -> None:
    down = dataclasses.replace(HEALTHY, kafka_reachable=False, kafka_error="the local broker is stopped")
    assert keys(down) == ["kafka-down"]
    [finding] = alerts.evaluate(down)
    assert "the local broker is stopped" in finding.title and finding.where == "kafka"
    assert keys(dataclasses.replace(down, kafka_sampled=False)) == []  # not checked yet is not down
    # A fresh clone: never up, nothing running: the diagram says stopped, no alarm. A job waiting on it: alarm.
    idle = dataclasses.replace(down, kafka_was_reachable=False, producer_running=False, consumer_running=False)
    assert keys(idle) == []
    assert keys(dataclasses.replace(idle, consumer_running=True, batches=[])) == ["kafka-down"]


def test_producer_stalled_after_30_s_without_an_acknowledgement() -> None:
    assert keys(dataclasses.replace(HEALTHY, last_ack_at=NOW - 29)) == []
    [finding] = alerts.evaluate(dataclasses.replace(HEALTHY, last_ack_at=NOW - 31))
    assert finding.key == "producer-stalled" and "31 s" in finding.title
    # Never acknowledged anything: counted from its start.
    assert keys(dataclasses.replace(HEALTHY, last_ack_at=None, producer_started_at=NOW - 45)) == ["producer-stalled"]
    assert keys(dataclasses.replace(HEALTHY, last_ack_at=NOW - 600, producer_running=False)) == []


def test_falling_behind_when_lag_rises_over_the_last_batches() -> None:
    rising = [BatchFigures(i, 100 * (i + 1), 900) for i in range(6)]
    [finding] = alerts.evaluate(dataclasses.replace(HEALTHY, batches=rising))
    assert finding.key == "falling-behind" and "600 records" in finding.title
    dip = [*rising[:3], BatchFigures(3, 50, 900), *rising[4:]]
    assert keys(dataclasses.replace(HEALTHY, batches=dip)) == []
    assert keys(dataclasses.replace(HEALTHY, batches=rising[1:])) == []  # only 4 rises: not yet


def test_falling_behind_when_batches_outlast_the_trigger() -> None:
    slow = [*HEALTHY.batches, *(BatchFigures(i, 40, 2500) for i in range(8, 13))]
    [finding] = alerts.evaluate(dataclasses.replace(HEALTHY, batches=slow))
    assert "last 5 batches took longer than the 2 s trigger" in finding.title and "2.5 s" in finding.title
    assert keys(dataclasses.replace(HEALTHY, batches=slow, trigger_ms=None)) == []  # available-now: no trigger
    assert keys(dataclasses.replace(HEALTHY, batches=slow[:-1])) == []  # 4 slow ones: not yet


def test_aged_out_and_dead_letters_above_their_share() -> None:
    assert keys(dataclasses.replace(HEALTHY, aged_out=12)) == ["aged-out"]
    dead = [BatchFigures(i, 40, 900, 100, 6) for i in range(3)]  # 18 of 300: 6 %
    [finding] = alerts.evaluate(dataclasses.replace(HEALTHY, batches=dead))
    assert finding.key == "dead-letters" and "6%" in finding.title
    few = [BatchFigures(i, 40, 900, 100, 5) for i in range(3)]  # 5 %: not above
    assert keys(dataclasses.replace(HEALTHY, batches=few)) == []
    tiny = [BatchFigures(0, 0, 900, 10, 9)]  # 10 records say nothing yet
    assert keys(dataclasses.replace(HEALTHY, batches=tiny)) == []


def test_the_book_keeps_since_when_and_says_what_started_and_cleared() -> None:
    book = AlertBook()
    down = alerts.evaluate(dataclasses.replace(HEALTHY, kafka_reachable=False, kafka_error="gone"))
    [started] = book.update(down, NOW)
    assert started.kind == "started" and started.alert.since == NOW
    assert book.update(down, NOW + 5) == []  # still on: no new message
    assert [a.since for a in book.active()] == [NOW]
    [cleared] = book.update([], NOW + 9)
    assert cleared.kind == "cleared" and cleared.alert.key == "kafka-down"
    assert book.active() == []
    text = alerts.webhook_text(started, "06:00:00 UTC")
    assert text.startswith(":rotating_light:") and "since 06:00:00 UTC" in text and "Start the broker" in text
    assert alerts.webhook_text(cleared, "06:00:09 UTC").startswith(":white_check_mark: Cleared at 06:00:09 UTC")


def test_trigger_and_batch_lag_from_the_jobs_own_records() -> None:
    assert trigger_ms(("--topic", "tweets", "--trigger", "2 seconds")) == 2000
    assert trigger_ms(("--topic=tweets", "--trigger=1 minute")) == 60_000
    assert trigger_ms(("--available-now",)) is None
    assert trigger_ms(()) == 2000  # the job's default, 2 seconds
    report = Progress("q", 1, 10, 1.0, 1.0, 5, {"0": 90}, {"0": 100, "1": 80}, latest_offsets={"0": 130, "1": 80})
    assert batch_lag(report) == 120  # waiting at the trigger: 130 - 90, and 80 in a partition not read before
    older = dataclasses.replace(report, latest_offsets={})  # a store that does not keep them: the sample's offsets
    assert batch_lag(older, {0: 110, 1: 85}) == 15
    assert batch_lag(older) is None


# -- the webhook --------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict], list[int]]]:
    """A real HTTP server on loopback; the first ``fail[0]`` requests get a 500."""
    received: list[dict] = []
    fail = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if fail[0] > 0:
                fail[0] -= 1
                self.send_response(500)
            else:
                received.append(body)
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received, fail
    finally:
        server.shutdown()


def test_the_webhook_posts_slack_json_and_retries_off_the_callers_thread(receiver) -> None:
    url, received, fail = receiver
    fail[0] = 1  # the first try is refused with a 500: the second goes through
    hook = Webhook(url, attempts=3, first_pause_s=0.05)
    hook.send("first")
    hook.send("second")
    hook.close()
    hook.join(10)
    assert received == [{"text": "first"}, {"text": "second"}]
    assert (hook.sent, hook.failed, hook.last_error) == (2, 0, "HTTP 500")
    assert url not in repr(hook)


def test_the_webhook_gives_up_after_its_attempts(receiver) -> None:
    url, received, fail = receiver
    fail[0] = 5
    hook = Webhook(url, attempts=2, first_pause_s=0.01)
    hook.send("lost")
    hook.close()
    hook.join(10)
    assert (received, hook.sent, hook.failed) == ([], 0, 1)
    with pytest.raises(OSError):  # nothing listens: refused at once, well within the timeout
        post_json("http://127.0.0.1:9/", {"text": "x"}, timeout_s=2)


# -- the pipeline diagram -------------------------------------------------------------------

FACTS = pipeline.Facts(
    kafka_reachable=True,
    kafka_error=None,
    broker_is_local=True,
    topic="tweets",
    topic_exists=True,
    topic_messages=12_345,
    lag=40,
    source="synthetic",
    producer_running=True,
    producer_state="running",
    producer_rate=20.0,
    consumer_running=True,
    consumer_state="running",
    batch_duration_ms=1500,
    input_rows_per_second=19.5,
    newest_window="2026-12-07T06:01:00Z",
)


def test_a_running_pipeline_is_all_healthy_with_its_figures() -> None:
    nodes = pipeline.local_nodes(FACTS)
    assert [n.key for n in nodes] == ["source", "producer", "kafka", "consumer", "store", "console"]
    assert {n.health for n in nodes} == {"running"}
    figures = {n.key: n.figure for n in nodes}
    assert figures["producer"] == "20.0 events/s"
    assert figures["kafka"] == "12,345 messages · lag 40"
    assert figures["consumer"] == "batch 1.5 s · 19.5 rows/s"
    assert figures["store"] == "newest window 06:01 UTC"
    assert pipeline.problems(nodes) == []
    text = pipeline.dot(nodes)
    assert text.startswith("digraph pipeline {") and "rankdir=LR" in text
    assert 'producer [label="producer\\n20.0 events/s\\n(healthy)", fillcolor="#d8f0dc"' in text
    assert "source -> producer;" in text and "store -> console;" in text


def test_a_fresh_clone_says_what_to_start() -> None:
    fresh = dataclasses.replace(
        FACTS,
        kafka_reachable=False,
        kafka_error="the local broker is stopped",
        producer_running=False,
        producer_state="never started",
        consumer_running=False,
        consumer_state="never started",
        newest_window=None,
        lag=None,
    )
    nodes = pipeline.local_nodes(fresh)
    health = {n.key: n.health for n in nodes}
    assert health == {
        "source": "stopped",
        "producer": "stopped",
        "kafka": "stopped",  # never started, nothing needs it yet: grey, not red
        "consumer": "stopped",
        "store": "stopped",
        "console": "running",
    }
    fixes = [(n.key, n.fix) for n in pipeline.problems(nodes)]
    assert fixes == [("producer", "start-producer"), ("kafka", "start-broker"), ("consumer", "start-consumer")]
    assert 'fillcolor="#fde0dc"' not in pipeline.dot(nodes)  # nothing red on a fresh clone
    down = alerts.Alert("kafka-down", "kafka", "Kafka does not answer: gone", "Start the broker.", NOW)
    kafka = next(n for n in pipeline.local_nodes(dataclasses.replace(fresh, alerts=[down])) if n.key == "kafka")
    assert (kafka.health, kafka.fix) == ("failing", "start-broker")  # it answered before: red


def test_alerts_colour_their_node_and_give_its_line() -> None:
    behind = alerts.Alert("falling-behind", "consumer", "Spark job falling behind: ...", "Lower the rate.", NOW)
    stalled = alerts.Alert("producer-stalled", "producer", "Producer stalled: ...", "Check Kafka.", NOW)
    nodes = {n.key: n for n in pipeline.local_nodes(dataclasses.replace(FACTS, alerts=[behind, stalled]))}
    assert nodes["consumer"].health == "behind" and nodes["consumer"].problem == behind.title
    assert nodes["producer"].health == "failing" and nodes["producer"].problem == stalled.title
    failed = pipeline.local_nodes(dataclasses.replace(FACTS, consumer_running=False, consumer_state="failed"))
    assert [(n.key, n.health, n.fix) for n in pipeline.problems(failed)] == [("consumer", "failing", "start-consumer")]


def test_the_azure_variant_and_escaped_labels() -> None:
    nodes = pipeline.azure_nodes(dataclasses.replace(FACTS, topic='we"ird\\topic', kafka_reachable=False))
    titles = [n.title for n in nodes]
    assert titles[1:6] == [
        "Databricks producer job",
        'HDInsight Kafka we"ird\\topic',
        "Databricks consumer job",
        "Delta tables",
        "SQL warehouse",
    ]
    assert next(n for n in nodes if n.key == "kafka").fix == "setup"  # no local broker to start there
    assert 'HDInsight Kafka we\\"ird\\\\topic' in pipeline.dot(nodes)

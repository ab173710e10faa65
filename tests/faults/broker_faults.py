"""Fault scenarios 1 and 2: the broker killed under a running producer.

The producer is idempotent with acks=all: a message acknowledged is on the broker's disk, and
librdkafka's retries of one that was not never write it twice. What the broker cannot take
within ``--delivery-timeout`` counts as failed and is kept in failed.jsonl, never dropped.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

from backend.kafka import local_broker
from backend.kafka.local_broker import LocalBroker
from backend.kafka.topics import TopicSpec
from backend.runtime.job_files import read_status
from backend.tweets.synthetic import SyntheticTweets
from tests.faults.harness import (
    Run,
    check,
    console_page_until,
    create_topic_on,
    run_job,
    scenario,
    start_job,
    wait_until,
)
from tests.support import read_topic

TOPIC = "tweets"


def generated_ids(seed: int, count: int) -> list[str]:
    """The ids of the first ``count`` synthetic tweets of ``seed``: what the producer sent, regenerated."""
    generator = SyntheticTweets(seed=seed)
    return [generator.tweet_json()[0] for _ in range(count)]


def stored_ids(broker: LocalBroker) -> Counter[str]:
    """How many times each tweet id is in the topic, read back to the end of every partition."""
    return Counter(json.loads(record.value)["data"]["id"] for record in read_topic(broker.bootstrap, TOPIC, 180))


def kill_broker(broker: LocalBroker) -> None:
    record = local_broker.status(broker)
    check(record.running and record.pid is not None, f"the broker is not running: {record}")
    os.kill(record.pid, signal.SIGKILL)
    wait_until(lambda: not local_broker.status(broker).running, 30, "the killed broker to be gone")


def producer_status(state_dir: Path) -> dict:
    return read_status(state_dir / "jobs" / "producer" / "status.json") or {}


@scenario(1, "broker-kill-9")
def broker_killed_three_times(run: Run) -> None:
    """kill -9 of the broker three times during a 100 000-event run: lost 0, duplicated 0."""
    count, seed = 100_000, 7
    state = run.folder("state")
    with run.broker() as broker:
        create_topic_on(broker, TopicSpec(TOPIC, partitions=4))
        # 1 500 events/s: about 67 s of sending, so all three kills (each ~5 s down, then a restart
        # that takes 5-15 s) fall inside the run, however slow the machine.
        args = ["--bootstrap", broker.bootstrap, "--count", str(count), "--rate", "1500", "--seed", str(seed)]
        producer = start_job("jobs.producer", args, state, run.workdir / "producer.log")
        disconnected = 0
        for kill, at_acked in enumerate((15_000, 35_000, 55_000), start=1):
            reached = lambda n=at_acked: producer_status(state).get("acked", 0) >= n  # noqa: E731
            wait_until(reached, 120, f"{at_acked} acks", producer)
            kill_broker(broker)
            now = producer_status(state)
            acked_then = now.get("acked", 0)
            check(now.get("sent", 0) < count, f"kill {kill} came after the producer had sent everything: {now}")
            down_since = time.monotonic()
            # Down for 5 s: the producer keeps sending into its queue and retrying.
            while time.monotonic() - down_since < 5:
                disconnected += producer_status(state).get("broker_connected") is False
                time.sleep(0.5)
            local_broker.start(broker, timeout=120)
            run.note(
                f"kill {kill}: broker kill -9 at {now.get('sent')} sent, {acked_then} acked; restarted after "
                f"{time.monotonic() - down_since:.1f} s"
            )
        code = producer.wait(timeout=300)
        summary = producer_status(state)
        run.result.sent, run.result.acked = summary.get("sent", 0), summary.get("acked", 0)
        check(code == 0, f"the producer exited {code}: {summary.get('last_error')}")
        check(disconnected > 0, "the producer's status never said the broker was unreachable while it was down")

        found = stored_ids(broker)
    expected = set(generated_ids(seed, count))
    run.result.stored = len(found)
    run.result.lost = len(expected - set(found))
    run.result.duplicated = sum(n - 1 for n in found.values())
    run.note(f"status said 'broker unreachable' in {disconnected} samples; failed {summary.get('failed')}")
    check(summary.get("failed") == 0, f"{summary.get('failed')} events failed")
    check(run.result.sent == run.result.acked == count, f"sent {run.result.sent}, acked {run.result.acked}")
    check(run.result.lost == 0 and run.result.duplicated == 0, "acknowledged events lost or duplicated")
    check(set(found) == expected, "the topic holds ids the producer never sent")


@scenario(2, "broker-down-past-delivery-timeout")
def broker_down_longer_than_the_delivery_timeout(run: Run) -> None:
    """The broker down for 25 s against a 10 s delivery timeout: those events fail, counted and kept."""
    count, seed, delivery_timeout = 30_000, 8, 10
    state = run.folder("state")
    with run.broker() as broker:
        create_topic_on(broker, TopicSpec(TOPIC, partitions=4))
        args = [
            *("--bootstrap", broker.bootstrap, "--count", str(count), "--rate", "1000", "--seed", str(seed)),
            *("--delivery-timeout", str(delivery_timeout)),
        ]
        log = run.workdir / "producer.log"
        producer = start_job("jobs.producer", args, state, log)
        wait_until(lambda: producer_status(state).get("acked", 0) >= 5_000, 60, "5 000 acks", producer)
        kill_broker(broker)
        acked_then = producer_status(state).get("acked", 0)
        down_since = time.monotonic()
        wait_until(lambda: producer_status(state).get("failed", 0) > 0, 60, "the first failed event", producer)
        run.note(
            f"broker kill -9 at {acked_then} acked; first failure reported "
            f"{time.monotonic() - down_since:.1f} s later (--delivery-timeout {delivery_timeout} s)"
        )
        while time.monotonic() - down_since < 25:
            time.sleep(0.5)
        local_broker.start(broker, timeout=120)
        run.note(f"broker restarted after {time.monotonic() - down_since:.1f} s down")
        code = producer.wait(timeout=300)
        summary = producer_status(state)
        sent, acked, failed = summary.get("sent", 0), summary.get("acked", 0), summary.get("failed", 0)
        run.result.sent, run.result.acked = sent, acked
        run.note(f"exit {code}; sent {sent}, acked {acked}, failed {failed}; last error: {summary.get('last_error')}")

        # The job says so: exit 1, its status names the failures and where they are kept.
        check(code == 1, f"the producer exited {code} although {failed} events failed")
        check(failed > 0 and acked + failed == sent == count, f"sent {sent} != acked {acked} + failed {failed}")
        check(f"{failed} events failed" in str(summary.get("last_error")), f"status: {summary.get('last_error')}")
        failed_file = Path(summary.get("failed_file") or "")
        kept = [json.loads(line)["data"]["id"] for line in failed_file.read_text().splitlines()]
        check(len(kept) == failed == len(set(kept)), f"failed.jsonl holds {len(kept)} lines for {failed} failed")

        # The dashboard says so too (the Producer page, as a user opens it).
        shown = console_page_until(
            state, broker, "pages/producer.py", lambda text: f"Failed (events): {failed:,}" in text
        )
        check(f"{failed} events failed" in shown, "the Producer page does not show the last error")
        run.note(f"Producer page: 'Failed (events): {failed:,}' and the error '{failed} events failed; kept in …'")

        found = stored_ids(broker)
        all_ids = generated_ids(seed, count)
        acked_ids = set(all_ids) - set(kept)
        run.result.stored = len(found)
        run.result.lost = len(acked_ids - set(found))
        run.result.duplicated = sum(n - 1 for n in found.values())
        # A failed event may still have reached the log before the broker died (its
        # acknowledgement never came): stored, and kept in failed.jsonl.
        written_anyway = len(set(kept) & set(found))
        run.note(f"of the {failed} failed events, {written_anyway} had reached the broker's log before it died")
        check(run.result.lost == 0 and run.result.duplicated == 0, "acknowledged events lost or duplicated")

        # Nothing is lost: failed.jsonl, sent again, fills the gap.
        code, resent = run_job(
            "jobs.producer",
            ["--bootstrap", broker.bootstrap, "--source", "replay", "--file", str(failed_file), "--rate", "0"],
            run.folder("resend"),
            run.workdir / "resend.log",
        )
        check(code == 0 and resent is not None and resent["acked"] == failed, f"the resend gave {code}: {resent}")
        after_resend = stored_ids(broker)
        missing = set(all_ids) - set(after_resend)
        twice = sum(n - 1 for n in after_resend.values())
        run.note(
            f"failed.jsonl sent again with --source replay: acked {resent['acked']}; missing now {len(missing)}, "
            f"stored twice {twice} (= the failed events that had reached the log: {written_anyway})"
        )
        check(not missing, f"{len(missing)} events are missing after the resend")
        check(twice == written_anyway, f"{twice} events twice after the resend, {written_anyway} expected")

"""The producer job as a user runs it (``python -m jobs.producer``), against a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.kafka.topics import TopicSpec, create_topic
from backend.runtime.job_files import read_status
from backend.tweets.contract import contract_problem
from tests.support import TWEET_PAYLOADS, free_port, read_topic

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def producer_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWEETSTREAM_") and k != "X_BEARER_TOKEN"}
    return {**env, "TWEETSTREAM_STATE_DIR": str(state_dir), **extra}


def run_producer(
    args: list[str], state_dir: Path, timeout: float = 120, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run the job to its end; return the process and its summary line."""
    done = subprocess.run(
        [sys.executable, "-m", "jobs.producer", *args],
        cwd=PROJECT_ROOT,
        env=producer_env(state_dir, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return done, (json.loads(lines[-1]) if lines else {})


@pytest.fixture
def topic(admin, topic_name):
    create_topic(admin, TopicSpec(topic_name, partitions=3))
    return topic_name


def test_n_synthetic_events_give_exactly_n_unique_valid_tweets(kafka_broker, topic, tmp_path):
    done, summary = run_producer(
        ["--bootstrap", kafka_broker.bootstrap, "--topic", topic, "--count", "20000", "--seed", "42", "--rate", "0"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert summary["sent"] == summary["acked"] == 20000
    assert summary["failed"] == summary["skipped"] == 0
    records = read_topic(kafka_broker.bootstrap, topic)
    assert len(records) == 20000
    ids = [json.loads(r.value)["data"]["id"] for r in records]
    assert len(set(ids)) == 20000
    assert all(r.key.decode() == i for r, i in zip(records, ids, strict=True))
    assert [r for r in records if contract_problem(r.value) is not None] == []
    status = read_status(tmp_path / "jobs" / "producer" / "status.json")
    assert status["state"] == "finished" and status["acked"] == 20000 and status["seed"] == 42
    assert 0 < len(status["sample"]) <= 20


def test_malformed_rate_sends_that_share_of_broken_values(kafka_broker, topic, tmp_path):
    done, summary = run_producer(
        [
            *("--bootstrap", kafka_broker.bootstrap, "--topic", topic),
            *("--count", "2000", "--malformed-rate", "0.05", "--rate", "0"),
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    broken = [r for r in read_topic(kafka_broker.bootstrap, topic) if contract_problem(r.value) is not None]
    assert len(broken) == summary["malformed_sent"]
    assert 50 <= len(broken) <= 160


@pytest.mark.parametrize(("name", "rows"), [("v1_statuses.jsonl", 73), ("v2_tweets.jsonl", 112)])
def test_real_payload_files_replay_completely(kafka_broker, topic, tmp_path, name, rows):
    done, summary = run_producer(
        [
            "--bootstrap",
            kafka_broker.bootstrap,
            "--topic",
            topic,
            "--source",
            "replay",
            "--file",
            str(TWEET_PAYLOADS / name),
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert summary["acked"] == rows and summary["skipped"] == 0
    records = read_topic(kafka_broker.bootstrap, topic)
    assert len(records) == rows
    tweets = [json.loads(r.value)["data"] for r in records]
    assert all(contract_problem(r.value) is None for r in records)
    if name.startswith("v1"):  # converted: v2 field names, RFC 3339 times
        assert all(t["created_at"].endswith("Z") and "author_id" in t for t in tweets)
        assert not any("id_str" in t or "user" in t for t in tweets)


def test_replay_skips_what_is_not_a_tweet_and_loops(kafka_broker, topic, tmp_path):
    replay = tmp_path / "tweets.jsonl"
    good = {"data": {"id": "11", "text": "one"}, "includes": {}}
    replay.write_text("\n".join([json.dumps(good), "not json at all", json.dumps({"hello": 1})]) + "\n")
    done, summary = run_producer(
        [
            "--bootstrap",
            kafka_broker.bootstrap,
            "--topic",
            topic,
            "--source",
            "replay",
            "--file",
            str(replay),
            "--loop",
            "--count",
            "3",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert summary["acked"] == 3
    assert summary["skipped"] >= 4  # two a pass, at least two passes
    assert [r.key for r in read_topic(kafka_broker.bootstrap, topic)] == [b"11"] * 3


def test_rate_is_an_upper_bound(kafka_broker, topic, tmp_path):
    began = time.monotonic()
    done, summary = run_producer(
        ["--bootstrap", kafka_broker.bootstrap, "--topic", topic, "--rate", "100", "--count", "150"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert summary["acked"] == 150
    assert time.monotonic() - began >= 1.49  # the 150th event is due 1.49 s after the first


def test_sigterm_flushes_and_exits_0(kafka_broker, topic, tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobs.producer",
            "--bootstrap",
            kafka_broker.bootstrap,
            "--topic",
            topic,
            "--rate",
            "2000",
        ],
        cwd=PROJECT_ROOT,
        env=producer_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    status_file = tmp_path / "jobs" / "producer" / "status.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = read_status(status_file) or {}
        if status.get("acked", 0) > 1000:
            break
        time.sleep(0.2)
    assert status.get("state") == "running", status
    assert status["acked_per_s"] > 0
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["state"] == "stopped"
    assert summary["acked"] == summary["sent"] > 1000
    assert len(read_topic(kafka_broker.bootstrap, topic)) == summary["acked"]


def test_unreachable_broker_is_a_clear_error_at_once(tmp_path):
    """A closed port is not waited for (CONNECT_TIMEOUT_S, 10 s, is for a silent address)."""
    bootstrap = f"127.0.0.1:{free_port()}"
    began = time.monotonic()
    done, summary = run_producer(["--bootstrap", bootstrap, "--count", "5"], tmp_path, timeout=30)
    assert time.monotonic() - began < 6  # the interpreter's start and imports, then about a second
    assert done.returncode == 1
    assert "cannot reach Kafka" in done.stderr and "is the broker running?" in done.stderr
    assert (
        f"error: cannot reach Kafka at {bootstrap}: connection refused (is the broker running? Is the port right?). "
        "For the local one: python -m backend.kafka.local_broker start"
    ) in done.stderr
    assert summary["state"] == "failed" and summary["sent"] == 0


def test_a_missing_topic_is_named_and_can_be_created(kafka_broker, topic_name, tmp_path):
    done, _summary = run_producer(
        ["--bootstrap", kafka_broker.bootstrap, "--topic", topic_name, "--count", "5"], tmp_path
    )
    assert done.returncode == 1
    assert f"topic {topic_name!r} does not exist" in done.stderr
    done, summary = run_producer(
        ["--bootstrap", kafka_broker.bootstrap, "--topic", topic_name, "--count", "5", "--create-topic"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert summary["acked"] == 5


def test_bad_options_start_nothing(tmp_path):
    done, summary = run_producer(["--rate", "-5"], tmp_path, timeout=30)
    assert done.returncode == 2
    assert "--rate must be 0 (no limit) or positive" in done.stderr
    assert summary == {}
    assert not (tmp_path / "jobs").exists()


def test_x_source_sends_the_stream_across_a_drop(kafka_broker, topic, tmp_path):
    from tests.standins.x_api import RULES_PATH, XApiStandIn, make_post, send_posts

    token = "x-canary-token-5f3a"
    with XApiStandIn(token=token) as x:
        x.add_rule("old rule")
        x.queue_stream(
            send_posts([make_post(n) for n in range(30)], end="drop"),
            send_posts([make_post(n) for n in range(30, 60)], end="heartbeats", heartbeats=True),
        )
        done, summary = run_producer(
            [
                "--bootstrap",
                kafka_broker.bootstrap,
                "--topic",
                topic,
                "--source",
                "x",
                "--query",
                "#Azure",
                "--count",
                "60",
            ],
            tmp_path,
            timeout=60,
            X_BEARER_TOKEN=token,
            TWEETSTREAM_X_API_BASE_URL=x.base_url,
        )
        rule_changes = [r.body for r in x.requests_to(RULES_PATH, "POST")]
    assert done.returncode == 0, done.stderr
    assert summary["acked"] == 60
    records = read_topic(kafka_broker.bootstrap, topic)
    envelopes = [json.loads(r.value) for r in records]
    assert sorted(int(e["data"]["id"]) for e in envelopes) == sorted(int(make_post(n)["data"]["id"]) for n in range(60))
    assert all(contract_problem(r.value) is None for r in records)
    assert all([u["id"] for u in e["includes"]["users"]] == [e["data"]["author_id"]] for e in envelopes)
    assert any("add" in body for body in rule_changes) and any("delete" in body for body in rule_changes)
    status_text = (tmp_path / "jobs" / "producer" / "status.json").read_text()
    assert token not in status_text and token not in done.stdout + done.stderr


def test_x_source_with_a_wrong_token_stops_with_a_clear_error(kafka_broker, topic, tmp_path):
    from tests.standins.x_api import XApiStandIn

    with XApiStandIn(token="the-right-token") as x:
        done, summary = run_producer(
            ["--bootstrap", kafka_broker.bootstrap, "--topic", topic, "--source", "x", "--query", "#Azure"],
            tmp_path,
            timeout=60,
            X_BEARER_TOKEN="a-wrong-canary-token",
            TWEETSTREAM_X_API_BASE_URL=x.base_url,
        )
    assert done.returncode == 1
    assert "X rejected the bearer token (HTTP 401)" in done.stderr
    assert summary["state"] == "failed" and summary["sent"] == 0
    assert "a-wrong-canary-token" not in done.stdout + done.stderr

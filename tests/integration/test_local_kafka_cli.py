"""`python -m backend.kafka.local_broker start|stop|status`, run as a user would, on its own broker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from backend.kafka import topics
from backend.kafka.topics import TopicSpec
from backend.settings import PROJECT_ROOT
from tests.support import free_port


def cli(env: dict[str, str], command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend.kafka.local_broker", command],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWEETSTREAM_")}
    env |= {
        "TWEETSTREAM_STATE_DIR": str(tmp_path / "state"),
        "TWEETSTREAM_KAFKA_PORT": str(free_port()),
        "TWEETSTREAM_KAFKA_CONTROLLER_PORT": str(free_port()),
        "TWEETSTREAM_KAFKA_HEAP": "512m",
    }
    yield env
    cli(env, "stop")  # whatever happened in the test


def broker_java_processes(state_dir: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "kafka.Kafka" in cmdline and any(state_dir in part for part in cmdline):
            found.append(process)
    return found


def read_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cli-test", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        for _ in range(60):
            values += [m.value() for m in consumer.consume(100, timeout=0.5) if m.error() is None]
            if len(values) >= expected:
                break
    finally:
        consumer.close()
    return values


def test_start_status_stop_and_data_survives(cli_env):
    bootstrap = f"127.0.0.1:{cli_env['TWEETSTREAM_KAFKA_PORT']}"

    down = cli(cli_env, "status")
    assert down.returncode == 3
    assert json.loads(down.stdout) == {"running": False, "bootstrap": bootstrap, "pid": None}

    started = cli(cli_env, "start")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == bootstrap
    assert "formatting KRaft storage" in started.stderr

    up = cli(cli_env, "status")
    assert up.returncode == 0
    state = json.loads(up.stdout)
    assert state["running"] is True and state["bootstrap"] == bootstrap
    assert [p.pid for p in broker_java_processes(cli_env["TWEETSTREAM_STATE_DIR"])] == [state["pid"]]

    again = cli(cli_env, "start")
    assert again.returncode == 0
    assert f"already running at {bootstrap} (pid {state['pid']})" in again.stderr
    assert again.stdout.strip() == bootstrap

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics.create_topic(admin, TopicSpec("kept", partitions=1))
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    producer.produce("kept", b"survives a restart")
    assert producer.flush(15) == 0

    stopped = cli(cli_env, "stop")
    assert stopped.returncode == 0
    assert "stopped" in stopped.stderr
    # Gone, or exited and waiting for its parent to collect it (a zombie runs nothing).
    assert not psutil.pid_exists(state["pid"]) or psutil.Process(state["pid"]).status() == psutil.STATUS_ZOMBIE
    assert broker_java_processes(cli_env["TWEETSTREAM_STATE_DIR"]) == []
    assert cli(cli_env, "status").returncode == 3

    restarted = cli(cli_env, "start")
    assert restarted.returncode == 0, restarted.stderr
    assert "formatting" not in restarted.stderr
    assert read_all(bootstrap, "kept", 1) == [b"survives a restart"]

    assert cli(cli_env, "stop").returncode == 0
    second_stop = cli(cli_env, "stop")
    assert second_stop.returncode == 0
    assert "not running" in second_stop.stderr


def test_simultaneous_starts_give_one_broker(cli_env):
    """Two terminals (or two Start clicks) at once: one starts the broker, the other finds it."""
    both = [
        subprocess.Popen(
            [sys.executable, "-m", "backend.kafka.local_broker", "start"],
            cwd=PROJECT_ROOT,
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180) for p in both]
    results = [(p.returncode, out, err) for p, (out, err) in zip(both, outputs, strict=True)]
    assert [code for code, _out, _err in results] == [0, 0]
    messages = sorted(err.strip().splitlines()[-1] for _code, _out, err in results)
    assert messages[0].startswith("Kafka broker already running at")
    assert messages[1].startswith("Kafka broker started in")
    assert len(broker_java_processes(cli_env["TWEETSTREAM_STATE_DIR"])) == 1


def test_a_taken_port_is_a_clear_error_and_starts_nothing(cli_env):
    port = int(cli_env["TWEETSTREAM_KAFKA_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = cli(cli_env, "start")
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use by pid {os.getpid()}" in result.stderr
    assert broker_java_processes(cli_env["TWEETSTREAM_STATE_DIR"]) == []
    assert cli(cli_env, "status").returncode == 3


def test_invalid_settings_are_refused(cli_env):
    cli_env["TWEETSTREAM_KAFKA_PORT"] = "not-a-port"
    result = cli(cli_env, "start")
    assert result.returncode == 2
    assert "invalid settings" in result.stderr and "kafka_port" in result.stderr

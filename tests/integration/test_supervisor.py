"""The supervisor against the real producer job and a real broker: one process per job, and a job
that outlives the dashboard's process is found again and stopped cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from backend.console import supervisor
from backend.kafka.local_broker import LocalBroker
from backend.runtime.job_files import JobFiles, read_status
from backend.settings import PROJECT_ROOT

CANARY = "console-secret-canary-19"


def job_env(broker: LocalBroker, state_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TWEETSTREAM_STATE_DIR": str(state_dir),
        "TWEETSTREAM_KAFKA_PORT": str(broker.port),
        "TWEETSTREAM_KAFKA_CONTROLLER_PORT": str(broker.controller_port),
    }


def producer_processes(state_dir: Path) -> list[psutil.Process]:
    """Every producer process of this state directory, whoever started it."""
    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        with_cmd = process.info["cmdline"] or []
        environ = process.info["environ"] or {}
        if "jobs.producer" in with_cmd and environ.get("TWEETSTREAM_STATE_DIR") == str(state_dir):
            found.append(process)
    return found


def wait_for_status(state_dir: Path, predicate, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = read_status(JobFiles(state_dir, "producer").status_file)
        if status is not None and predicate(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"status not reached within {timeout} s: {status}")


def test_start_clicked_from_four_places_at_once_gives_one_process(kafka_broker, topic_name, tmp_path):
    env = job_env(kafka_broker, tmp_path)
    env |= {"TWEETSTREAM_CONSOLE_PASSWORD": CANARY, "AZURE_CLIENT_SECRET": CANARY, "DATABRICKS_TOKEN": CANARY}
    arguments = ["--topic", topic_name, "--create-topic", "--rate", "50"]
    results: list[tuple[supervisor.JobView, bool]] = []

    def click() -> None:
        results.append(supervisor.start_job(tmp_path, "producer", arguments, env=env))

    clicks = [threading.Thread(target=click) for _ in range(4)]
    try:
        for thread in clicks:
            thread.start()
        for thread in clicks:
            thread.join(timeout=60)
        assert sorted(already for _, already in results) == [False, True, True, True]
        assert len({view.pid for view, _ in results}) == 1
        assert [p.pid for p in producer_processes(tmp_path)] == [results[0][0].pid]
        wait_for_status(tmp_path, lambda s: s["acked"] > 0)
        # Issue 19, items 5 and 6: the console's own secrets stay out of the job; its files are private.
        environ = psutil.Process(results[0][0].pid).environ()
        assert [name for name, value in environ.items() if value == CANARY] == []
        assert environ["TWEETSTREAM_STATE_DIR"] == str(tmp_path)
        files = JobFiles(tmp_path, "producer")
        modes = {path.name: oct(path.stat().st_mode & 0o777) for path in (files.log_file, files.status_file)}
        assert modes == {"log": "0o600", "status.json": "0o600"}
    finally:
        assert supervisor.stop_job(tmp_path, "producer", timeout=30) == "terminated"
    assert producer_processes(tmp_path) == []
    status = read_status(JobFiles(tmp_path, "producer").status_file)
    assert status["state"] == "stopped" and status["failed"] == 0 and status["acked"] == status["sent"]


def test_a_job_outlives_the_dashboard_process_and_is_stopped_by_the_next_one(kafka_broker, topic_name, tmp_path):
    env = job_env(kafka_broker, tmp_path)
    # The first "dashboard": a separate Python process that starts the job and exits.
    script = (
        "import json, sys; from pathlib import Path; from backend.console import supervisor; "
        f"view, _ = supervisor.start_job(Path({str(tmp_path)!r}), 'producer', "
        f"['--topic', {topic_name!r}, '--create-topic', '--rate', '50']); "
        "print(json.dumps({'pid': view.pid, 'started_at': view.started_at}))"
    )
    first = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0, first.stderr
    started = json.loads(first.stdout)
    wait_for_status(tmp_path, lambda s: s["acked"] > 0)

    # The next dashboard (this process) recognises the job by pid and start time.
    view = supervisor.job_view(tmp_path, "producer")
    assert view.running and view.pid == started["pid"] and view.started_at == started["started_at"]
    assert view.arguments[:2] == ("--topic", topic_name)

    began = time.monotonic()
    assert supervisor.stop_job(tmp_path, "producer", timeout=30) == "terminated"
    print(f"stopped in {time.monotonic() - began:.1f} s")
    assert not psutil.pid_exists(started["pid"]) or psutil.Process(started["pid"]).status() == psutil.STATUS_ZOMBIE
    after = supervisor.job_view(tmp_path, "producer")
    assert not after.running and after.state == "stopped"
    assert after.status["acked"] == after.status["sent"] > 0
    assert any(
        "stop requested by the console: terminated" in line for line in supervisor.log_tail(tmp_path, "producer")
    )


def test_a_job_started_from_a_terminal_is_found_stopped_and_never_doubled(kafka_broker, topic_name, tmp_path):
    env = job_env(kafka_broker, tmp_path)
    arguments = ["--topic", topic_name, "--create-topic", "--rate", "50"]
    terminal = subprocess.Popen(
        [sys.executable, "-m", "jobs.producer", *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_status(tmp_path, lambda s: s["acked"] > 0 and s["pid"] == terminal.pid)
        # The console sees it, and its Start does not start a second one.
        view, already = supervisor.start_job(tmp_path, "producer", arguments, env=env)
        assert already and view.pid == terminal.pid and view.state == "running"
        # A second terminal refuses too, and says why.
        second = subprocess.run(
            [sys.executable, "-m", "jobs.producer", *arguments],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert f"error: the producer is already running as pid {terminal.pid}" in second.stderr
        assert [p.pid for p in producer_processes(tmp_path)] == [terminal.pid]
        # The console's Stop reaches it.
        assert supervisor.stop_job(tmp_path, "producer", timeout=30) == "terminated"
        assert terminal.wait(timeout=10) == 0
    finally:
        if terminal.poll() is None:
            terminal.kill()
            terminal.wait()
    assert supervisor.job_view(tmp_path, "producer").state == "stopped"
    assert not JobFiles(tmp_path, "producer").pid_file.exists()

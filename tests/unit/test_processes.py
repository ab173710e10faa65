import os
import subprocess
import sys
import time

import psutil

from backend.runtime import processes
from backend.runtime.processes import ProcessRecord

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
# Ignores SIGTERM, so only SIGKILL ends it.
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)",
]


def test_pid_file_round_trip_and_garbage(tmp_path):
    path = tmp_path / "job.pid"
    assert processes.read_pid_file(path) is None
    record = ProcessRecord(pid=123, create_time=1700000000.25, info={"bootstrap": "127.0.0.1:9092"})
    processes.write_pid_file(path, record)
    assert processes.read_pid_file(path) == record
    path.write_text("not json")
    assert processes.read_pid_file(path) is None


def test_spawned_process_is_alive_then_terminated(tmp_path):
    record = processes.spawn_detached(SLEEPER, log_file=tmp_path / "sleeper.log")
    assert processes.is_alive(record)
    # Its own session: a Ctrl+C in the caller's terminal does not reach it.
    assert os.getsid(record.pid) == record.pid != os.getsid(0)
    assert processes.terminate(record, timeout=10) == "terminated"
    assert not processes.is_alive(record)
    assert not psutil.pid_exists(record.pid) or psutil.Process(record.pid).status() == psutil.STATUS_ZOMBIE


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(tmp_path):
    log = tmp_path / "stubborn.log"
    record = processes.spawn_detached(STUBBORN, log_file=log)
    deadline = time.monotonic() + 10
    while "ready" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    began = time.monotonic()
    assert processes.terminate(record, timeout=1) == "killed"
    assert time.monotonic() - began >= 1
    assert not processes.is_alive(record)


def test_a_reused_pid_is_not_taken_for_ours(tmp_path):
    """Same pid, different start time: another process got the pid; it must be left alone."""
    record = processes.spawn_detached(SLEEPER, log_file=tmp_path / "other.log")
    try:
        impostor = ProcessRecord(pid=record.pid, create_time=record.create_time - 3600)
        assert not processes.is_alive(impostor)
        assert processes.terminate(impostor, timeout=1) == "not running"
        assert processes.is_alive(record)
    finally:
        processes.terminate(record, timeout=10)


def test_output_goes_to_the_log_file(tmp_path):
    log = tmp_path / "echo.log"
    record = processes.spawn_detached([sys.executable, "-c", "print('hello from the job')"], log_file=log)
    psutil.Process(record.pid).wait(timeout=10)
    assert log.read_text() == "hello from the job\n"


def test_another_process_stops_our_child_without_waiting_for_its_zombie(tmp_path):
    # The console's server starts a job (its child); a terminal stops it. The exited job stays a
    # zombie until its parent reaps it: the terminal must not take that for a job still running.
    record = processes.spawn_detached(SLEEPER, log_file=tmp_path / "sleeper.log")
    stopper = (
        "import sys; from backend.runtime import processes; "
        f"record = processes.ProcessRecord.from_json({record.to_json()!r}); "
        "print(processes.terminate(record, timeout=30))"
    )
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-c", stopper], capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - began
    assert result.stdout.strip() == "terminated", result.stderr
    assert elapsed < 10, f"the stopper waited {elapsed:.1f} s for a zombie"
    processes.reap(record.pid)  # the zombie is ours to collect
    assert not psutil.pid_exists(record.pid)


def test_a_spawned_process_and_its_log_write_files_for_their_owner_only(tmp_path):
    # Issue 19, item 6: logs and what the jobs wrote were 0644, readable by every local user.
    made = tmp_path / "made-by-the-child"
    writer = [sys.executable, "-c", f"open({str(made)!r}, 'w').write('tweets'); print('done', flush=True)"]
    record = processes.spawn_detached(writer, log_file=tmp_path / "logs" / "job.log")
    deadline = time.monotonic() + 30
    while processes.is_alive(record) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert made.read_text() == "tweets"
    assert oct(made.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "logs" / "job.log").stat().st_mode & 0o777) == "0o600"

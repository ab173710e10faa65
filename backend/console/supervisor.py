"""Job control for the console: start, find and stop the producer and the Spark consumer.

Each job runs detached and is known by its pid file (pid and process start time), so it outlives the console and a
reused pid is never taken for ours; Start holds the job's lock, so one process runs per job however many tabs
click it. Why, and jobs started from a terminal: docs/design.md, "Job processes".
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from backend.runtime import processes
from backend.runtime.job_files import JobFiles, read_status
from backend.runtime.private import private_folder, private_opener
from backend.settings import PROJECT_ROOT

JobName = Literal["producer", "consumer"]
JOB_NAMES: tuple[JobName, ...] = ("producer", "consumer")
MODULES: dict[JobName, str] = {"producer": "jobs.producer", "consumer": "jobs.consumer"}
# How long Stop waits for a clean exit before SIGKILL: the producer flushes its acknowledgements
# (30 s by default); the consumer finishes its micro-batch (its own grace is 60 s).
STOP_TIMEOUTS_S: dict[JobName, float] = {"producer": 45.0, "consumer": 90.0}
# The log is appended to at every start; past this size the old one is kept as log.1.
MAX_LOG_BYTES = 20 * 1024 * 1024
# Started and gone within this time: most likely refused its options or failed at once.
EARLY_EXIT_WINDOW_S = 3.0


class JobError(RuntimeError):
    """A job could not be started; the message says why."""


@dataclass(frozen=True)
class JobView:
    """What the console knows about one job right now."""

    name: JobName
    running: bool
    pid: int | None
    started_at: float | None  # seconds since the epoch (the process start time)
    arguments: tuple[str, ...]  # the job's command-line options (never secrets: those go by environment)
    status: dict[str, Any] | None  # the job's own status file, None before its first start

    @property
    def state(self) -> str:
        """'running', or the last state the job wrote ('stopped', 'finished', 'failed'...), or 'never started'."""
        if self.running:
            return str(self.status.get("state", "starting")) if self.status else "starting"
        if self.status is None:
            return "never started"
        written = str(self.status.get("state", "stopped"))
        # A job killed with SIGKILL cannot write its last state: do not show it as running.
        return "exited" if written in ("starting", "connecting", "running", "stopping") else written


def _files(state_dir: Path, name: JobName) -> JobFiles:
    if name not in JOB_NAMES:
        raise ValueError(f"unknown job '{name}' (known: {', '.join(JOB_NAMES)})")
    return JobFiles(state_dir, name)


def job_view(state_dir: Path, name: JobName) -> JobView:
    files = _files(state_dir, name)
    record = processes.read_pid_file(files.pid_file)
    running = processes.is_alive(record)
    status = read_status(files.status_file)
    if running and status is not None and status.get("pid") != record.pid:
        status = None  # written by an earlier run: the new one has not written its first status yet
    return JobView(
        name=name,
        running=running,
        pid=record.pid if record is not None and running else None,
        started_at=record.create_time if record is not None and running else None,
        arguments=tuple(record.info.get("arguments", ())) if record is not None else (),
        status=status,
    )


# What a job gets of the console's environment: the system's, Python's and Spark's own variables, and the
# settings a job reads (TWEETSTREAM_*, X_BEARER_TOKEN), but not the console's own secrets: its password,
# Azure's service principal, the Databricks token. The Spark JVM and its Python workers inherit all of it.
JOB_ENV_NAMES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"})
JOB_ENV_NAMES |= {"JAVA_HOME", "PYTHONPATH", "PYTHONHASHSEED", "VIRTUAL_ENV", "X_BEARER_TOKEN"}
# The X source's HTTPS: a company's CA bundle and proxy.
JOB_ENV_NAMES |= {
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
}
JOB_ENV_PREFIXES = ("LC_", "SPARK_", "PYSPARK_", "HADOOP_", "TWEETSTREAM_")
JOB_ENV_REFUSED_PREFIXES = ("TWEETSTREAM_CONSOLE_", "TWEETSTREAM_AZURE_", "TWEETSTREAM_DATABRICKS_")


def job_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed part of ``environ`` that a job started by the console gets."""
    return {
        name: value
        for name, value in environ.items()
        if (name in JOB_ENV_NAMES or name.startswith(JOB_ENV_PREFIXES))
        and not name.startswith(JOB_ENV_REFUSED_PREFIXES)
    }


def job_command(name: JobName, arguments: Sequence[str]) -> list[str]:
    """The command line of a job: this interpreter running the job's module."""
    return [sys.executable, "-m", MODULES[name], *arguments]


def start_job(
    state_dir: Path,
    name: JobName,
    arguments: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> tuple[JobView, bool]:
    """Start the job unless it runs already. Returns its view and whether it was already running.

    ``env`` (default: the console's own environment) is passed through ``job_environment``: the secrets a
    job needs reach it there, never through ``arguments``. A job that exits within a few seconds of its start
    (options refused, broker unreachable) raises JobError with the end of its log.
    """
    files = _files(state_dir, name)
    private_folder(state_dir)
    with processes.exclusive(files.lock_file):
        current = job_view(state_dir, name)
        if current.running:
            return current, True
        _rotate_log(files.log_file)
        started = time.time()
        with open(files.log_file, "a", opener=private_opener) as log:
            now = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n== {now} started by the console: {name} {' '.join(arguments)}\n")
        job_env = job_environment(os.environ if env is None else env)
        job_env["PYTHONUNBUFFERED"] = "1"  # the log shows lines as they are printed
        record = processes.spawn_detached(
            job_command(name, arguments),
            log_file=files.log_file,
            env=job_env,
            cwd=PROJECT_ROOT,
            info={"arguments": list(arguments)},
        )
        processes.write_pid_file(files.pid_file, record)
    # Outside the lock: a second Start meanwhile finds the process and does nothing.
    deadline = started + EARLY_EXIT_WINDOW_S
    while time.time() < deadline:
        if not processes.is_alive(record):
            exit_code = processes.reap(record.pid)
            view = job_view(state_dir, name)
            written_by_it = view.status is not None and view.status.get("pid") == record.pid
            if exit_code == 0 or (exit_code is None and written_by_it and view.state in ("finished", "stopped")):
                return view, False  # done already (a small --count): not an error
            tail = "\n".join(log_tail(state_dir, name, 8))
            code = f" with code {exit_code}" if exit_code is not None else ""
            raise JobError(f"the {name} exited{code} right after its start; the end of its log:\n{tail}")
        time.sleep(0.1)
    return job_view(state_dir, name), False


def stop_job(state_dir: Path, name: JobName, timeout: float | None = None) -> str:
    """SIGTERM, then wait up to ``timeout`` seconds for the job to finish its batch or flush, then SIGKILL.

    Returns "terminated", "killed" or "not running".
    """
    files = _files(state_dir, name)
    with processes.exclusive(files.lock_file):
        record = processes.read_pid_file(files.pid_file)
        if record is None:
            return "not running"
        outcome = processes.terminate(record, STOP_TIMEOUTS_S[name] if timeout is None else timeout)
        files.pid_file.unlink(missing_ok=True)
        with open(files.log_file, "a") as log:
            log.write(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} stop requested by the console: {outcome}\n")
        return outcome


def log_tail(state_dir: Path, name: JobName, lines: int = 200) -> list[str]:
    """The last ``lines`` lines of the job's log (fewer when the log is shorter; none before a start)."""
    path = _files(state_dir, name).log_file
    try:
        with open(path, "rb") as handle:
            # Read only the end: a long-running job's log can be large.
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return list(deque(text.splitlines(), maxlen=lines))


def _rotate_log(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size > MAX_LOG_BYTES:
        path.replace(path.with_name(path.name + ".1"))

"""Detached background processes recorded in pid files.

A pid file holds the pid *and* the process's start time: after a reboot or a long run the
kernel may hand the same pid to an unrelated process, which must not be mistaken for ours
(and must never receive our SIGTERM).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from backend.runtime.private import UMASK, private_opener


@dataclass(frozen=True)
class ProcessRecord:
    """What a pid file says about a process we started."""

    pid: int
    create_time: float  # seconds since the epoch, as psutil reports it
    info: dict[str, Any] = field(default_factory=dict)  # e.g. the address a broker listens on

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ProcessRecord:
        raw = json.loads(text)
        return cls(pid=int(raw["pid"]), create_time=float(raw["create_time"]), info=dict(raw.get("info", {})))


def read_pid_file(path: Path) -> ProcessRecord | None:
    """The record in ``path``, or None when there is none or it cannot be read."""
    try:
        return ProcessRecord.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_pid_file(path: Path, record: ProcessRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(record.to_json() + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` for the block (other processes and threads wait).

    Makes check-then-start atomic: two Start clicks, two tabs or two terminals cannot both
    find a job stopped and both start it.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _process(record: ProcessRecord) -> psutil.Process | None:
    """The live process behind ``record``, or None when it is gone or the pid was reused."""
    try:
        process = psutil.Process(record.pid)
        # create_time is rounded differently on some platforms: allow a small tolerance.
        if abs(process.create_time() - record.create_time) > 0.05:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_alive(record: ProcessRecord | None) -> bool:
    return record is not None and _process(record) is not None


def spawn_detached(
    command: Sequence[str],
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    info: Mapping[str, Any] | None = None,
) -> ProcessRecord:
    """Start ``command`` in its own session, stdout and stderr appended to ``log_file``.

    The child does not die with the caller (a CLI that exits, a Streamlit rerun).
    Secrets must reach it through ``env``, never through ``command``.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab", opener=private_opener) as log:
        child = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
            umask=UMASK,  # what it (and its children) write is its owner's only
        )
    return ProcessRecord(pid=child.pid, create_time=psutil.Process(child.pid).create_time(), info=dict(info or {}))


def terminate(record: ProcessRecord, timeout: float) -> str:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL.

    Returns "terminated", "killed" or "not running". A process that has exited counts as gone
    even while it waits as a zombie for its parent (the console's server, when a terminal
    stops what the console started); when we are its parent, it is reaped here.
    """
    process = _process(record)
    if process is None:
        return "not running"
    try:
        process.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        return "terminated"
    if _wait_gone(process, timeout):
        return "terminated"
    with contextlib.suppress(psutil.NoSuchProcess):
        process.kill()
    _wait_gone(process, 10)
    return "killed"


def _wait_gone(process: psutil.Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        reap(process.pid)
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def listener_pids(host: str, port: int) -> list[int]:
    """Pids of processes listening on host:port (empty when unknown or not permitted)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, PermissionError):
        return []
    return sorted(
        {
            c.pid
            for c in connections
            if c.status == psutil.CONN_LISTEN
            and c.pid is not None
            and c.laddr
            and c.laddr.port == port
            and c.laddr.ip in (host, "0.0.0.0", "::", "::ffff:" + host)
        }
    )


def describe_pid(pid: int) -> str:
    try:
        process = psutil.Process(pid)
        return f"pid {pid} ({process.name()})"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return f"pid {pid}"


def reap(pid: int) -> int | None:
    """Collect the exit status of ``pid`` if it is our exited child (so no zombie is left behind).

    Returns its exit code (negative: killed by that signal), or None when it is not our child
    or has not exited.
    """
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        return None
    return os.waitstatus_to_exitcode(status) if reaped == pid else None


class AlreadyRunning(RuntimeError):
    """Another live process holds the pid file."""


@contextlib.contextmanager
def hold_pid_file(pid_file: Path, lock_file: Path) -> Iterator[ProcessRecord]:
    """Record this process in ``pid_file`` for the block, unless another live process is there.

    A job started from a terminal is then known to the console as well as one the console
    started (which wrote the same record before the job got here); a second copy refuses to
    run instead of writing the same status file and checkpoint. Raises AlreadyRunning.
    """
    me = ProcessRecord(pid=os.getpid(), create_time=psutil.Process().create_time())
    with exclusive(lock_file):  # waits while the console is still writing our record
        current = read_pid_file(pid_file)
        if current is not None and current.pid != me.pid and is_alive(current):
            raise AlreadyRunning(f"already running as pid {current.pid} (pid file {pid_file}); stop that one first")
        if current is None or current.pid != me.pid:
            write_pid_file(pid_file, me)
    try:
        yield me
    finally:
        # No lock here: a Stop holds it while it waits for us to exit.
        left = read_pid_file(pid_file)
        if left is not None and left.pid == me.pid:
            pid_file.unlink(missing_ok=True)

"""Where a job keeps its pid, log and status files, and how its status file is written.

Every job (the producer, the Spark consumer) owns a folder ``<state_dir>/jobs/<name>/``:
``pid`` (see backend.runtime.processes), ``log`` (its stdout and stderr) and ``status.json``,
the dashboard's source of truth for what the job is doing. The status file is replaced
atomically, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class JobFiles:
    """The files of one job."""

    state_dir: Path
    name: str  # "producer" or "consumer"

    @property
    def folder(self) -> Path:
        return self.state_dir / "jobs" / self.name

    @property
    def pid_file(self) -> Path:
        return self.folder / "pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "log"

    @property
    def status_file(self) -> Path:
        return self.folder / "status.json"

    @property
    def lock_file(self) -> Path:
        return self.folder / "lock"


def pid_and_lock_files(status_file: Path) -> tuple[Path, Path]:
    """The pid and lock files that go with a job's status file: ``pid`` and ``lock`` beside the
    console's ``status.json`` (as JobFiles names them), else ``<status file>.pid`` and ``.lock``,
    so two jobs given status files in one folder do not share them."""
    if status_file.name == "status.json":
        return status_file.with_name("pid"), status_file.with_name("lock")
    return status_file.with_name(status_file.name + ".pid"), status_file.with_name(status_file.name + ".lock")


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file at ``path`` with ``status`` plus the time it was written.

    ``updated_at`` (seconds since the epoch) lets a reader tell a live job from a stale file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {**status, "updated_at": time.time()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


def read_status(path: Path) -> dict[str, Any] | None:
    """The last status written to ``path``, or None when there is none (or it is unreadable)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None

"""The state folder and the files in it are its owner's only: logs, status files, uploads and the store
hold tweets, broker addresses and job states that other local users have no business reading."""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077  # what the console's child processes (jobs, the broker, Spark's workers) create files with


def private_folder(path: Path) -> Path:
    """``path`` created if missing, and readable by its owner only (an existing one is narrowed too)."""
    path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    if path.stat().st_mode & 0o777 != FOLDER_MODE:
        path.chmod(FOLDER_MODE)
    return path


def private_opener(path: str, flags: int) -> int:
    """For ``open(..., opener=private_opener)``: a new file is created 0600, whatever the umask."""
    return os.open(path, flags, FILE_MODE)

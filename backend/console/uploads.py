"""Replay files uploaded through the console: kept in the state directory under a safe name."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from backend.runtime.private import FILE_MODE, private_folder

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# File systems take 255 bytes a name; the saved name adds a 13-character hash prefix and a temporary suffix.
MAX_NAME = 120


def safe_name(name: str) -> str:
    """A file name without folders or unusual characters ('../../x y.jsonl' → 'x_y.jsonl')."""
    cleaned = _UNSAFE.sub("_", Path(name).name).strip("._") or "upload"
    if len(cleaned) > MAX_NAME:  # shortened, keeping the extension: it says what the file is
        _stem, dot, suffix = cleaned.rpartition(".")
        keep = suffix if dot and len(suffix) <= 16 else ""
        ending = f".{keep}" if keep else ""
        cleaned = cleaned[: MAX_NAME - len(ending)].rstrip("._") + ending
    return cleaned


def save_upload(state_dir: Path, name: str, content: bytes) -> Path:
    """Write ``content`` to ``<state dir>/uploads/<hash>-<name>``; the same content is written once."""
    private_folder(state_dir)
    folder = private_folder(state_dir / "uploads")
    digest = hashlib.sha256(content).hexdigest()[:12]
    path = folder / f"{digest}-{safe_name(name)}"
    if not path.exists():
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(content)
        tmp.chmod(FILE_MODE)
        tmp.replace(path)
    return path


def expand_path(text: str) -> Path:
    """A path typed by the user: ``~`` expanded, made absolute."""
    return Path(text).expanduser().resolve()

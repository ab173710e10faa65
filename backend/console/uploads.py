"""Replay files uploaded through the console: kept in the state directory under a safe name."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A file name without folders or unusual characters ('../../x y.jsonl' → 'x_y.jsonl')."""
    cleaned = _UNSAFE.sub("_", Path(name).name).strip("._")
    return cleaned or "upload"


def save_upload(state_dir: Path, name: str, content: bytes) -> Path:
    """Write ``content`` to ``<state dir>/uploads/<hash>-<name>``; the same content is written once."""
    folder = state_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(content).hexdigest()[:12]
    path = folder / f"{digest}-{safe_name(name)}"
    if not path.exists():
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(content)
        tmp.replace(path)
    return path


def expand_path(text: str) -> Path:
    """A path typed by the user: ``~`` expanded, made absolute."""
    return Path(text).expanduser().resolve()

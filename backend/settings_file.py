"""Writing top-level keys of the secrets file the settings are read from (.streamlit/secrets.toml, or
TWEETSTREAM_SECRETS_FILE): Kafka profiles, the HDInsight logins, the pipeline target. A small TOML
writer keeps the rest of the file as it was."""

from __future__ import annotations

import math
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

from backend.settings import secrets_file

PIPELINE_TARGET_ENV = "TWEETSTREAM_PIPELINE_TARGET"


def save_pipeline_target(value: str) -> str | None:
    """Save the profile's pipeline target ("local" or "azure") to the secrets file; the note to show when the
    environment overrides the file (then the saved value does not count)."""
    if value not in ("local", "azure"):
        raise ValueError(f"pipeline target must be 'local' or 'azure', not {value!r}")
    save_top_level(secrets_file(), {"pipeline_target": value}, ["pipeline_target"])
    if os.environ.get(PIPELINE_TARGET_ENV, value) != value:
        return f"{PIPELINE_TARGET_ENV} is set in the console's environment and wins over the saved value"
    return None


def save_top_level(secrets_file: Path, values: Mapping[str, str], keys: Sequence[str]) -> None:
    """Set the top-level keys ``keys`` of the TOML file to ``values`` (a key of ``keys`` missing from
    ``values`` is removed), atomically.

    Every other key and table stays; so do comments and layout where the file allows a
    line-wise edit (checked by parsing the result), otherwise the file is rewritten from its
    parsed content. The file is created with mode 0600, and
    an existing one loses any group and other permissions (it holds a password). Raises
    ValueError when the existing file is not valid TOML (it is then left as it is).
    """
    target = Path(os.path.realpath(secrets_file))
    old_text = target.read_text(encoding="utf-8") if target.exists() else ""
    try:
        old = tomllib.loads(old_text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{target} is not valid TOML ({error}): fix or remove it, then save again") from error
    expected = {key: value for key, value in old.items() if key not in keys} | dict(values)
    text = _edit_lines(old_text, values, keys)
    if not _parses_to(text, expected):
        text = toml_dumps(expected)
        if not _parses_to(text, expected):  # a value the writer cannot express: keep the file as it is
            raise ValueError(f"{target} holds values that cannot be written back; nothing was changed")
    mode = (target.stat().st_mode & 0o700) if target.exists() else 0o600
    _write_atomically(target, text, mode)


def _parses_to(text: str, expected: Mapping[str, Any]) -> bool:
    try:
        return tomllib.loads(text) == expected
    except tomllib.TOMLDecodeError:
        return False


def _edit_lines(text: str, values: Mapping[str, str], keys: Sequence[str]) -> str:
    """Replace our top-level ``key = value`` lines (those before the first table) with ``values``."""
    lines = text.splitlines(keepends=True)
    first_table = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    ours = re.compile(r"\s*(?:" + "|".join(re.escape(k) for k in keys) + r")\s*=")
    removed = [i for i in range(first_table) if ours.match(lines[i])]
    new = [f"{key} = {_toml_value(value)}\n" for key, value in values.items()]
    if not removed and new and lines:
        new.append("\n")  # a blank line between our keys, put first, and what the file held
    at = removed[0] if removed else 0  # where our first key was: the lines before it all stay
    kept = [line for i, line in enumerate(lines) if i not in set(removed)]
    return "".join(kept[:at] + new + kept[at:])


def _write_atomically(target: Path, text: str, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# --- a small TOML writer ------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_dumps(data: Mapping[str, Any]) -> str:
    """TOML for what ``tomllib`` reads: str, int, float, bool, dates and times, lists and tables."""
    lines: list[str] = []
    _emit_table([], data, lines, header=None)
    return "\n".join(lines).lstrip("\n") + "\n"


def _emit_table(path: list[str], table: Mapping[str, Any], lines: list[str], header: str | None) -> None:
    plain = [(k, v) for k, v in table.items() if not isinstance(v, Mapping) and not _is_table_array(v)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    arrays = [(k, v) for k, v in table.items() if _is_table_array(v)]
    if header is not None and (plain or not (tables or arrays) or header.startswith("[[")):
        lines += ["", header]
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in plain]
    for key, sub in tables:
        sub_path = [*path, key]
        _emit_table(sub_path, sub, lines, header=f"[{_dotted(sub_path)}]")
    for key, items in arrays:
        sub_path = [*path, key]
        for item in items:
            _emit_table(sub_path, item, lines, header=f"[[{_dotted(sub_path)}]]")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, Mapping) for item in value)


def _dotted(path: Iterable[str]) -> str:
    return ".".join(_toml_key(part) for part in path)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    escaped = "".join(_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text)
    return f'"{escaped}"'


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"TOML has no value of type {type(value).__name__}")

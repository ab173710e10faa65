"""The SQLite store's hour rollups: which UTC hour a window falls in, and reading ranges through them.

``hashtags_per_hour`` and ``languages_per_hour`` hold the per-window counts summed per UTC hour of
the window start. A read over a range takes its whole hours from these and only the minutes at
either end from the per-window tables (``range_parts``), and finds the top keys without summing
every key (``top_by_bounds``).
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta

from backend.aggregates.records import Ranked, iso_utc

# The per-window tables that have an hour rollup: table -> (rollup, key column).
ROLLUPS = {
    "hashtags_per_window": ("hashtags_per_hour", "hashtag"),
    "languages_per_window": ("languages_per_hour", "lang"),
}
# What window starts look like (iso_utc); the hour of one is its first 13 characters.
_WINDOW_START = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def hour_of(window_start: str, hours: dict[str, str]) -> str:
    """The UTC hour ``window_start`` falls in, as a window start (``hours`` remembers those seen)."""
    hour = hours.get(window_start)
    if hour is None:
        if not _WINDOW_START.fullmatch(window_start):
            raise ValueError(f"window start {window_start!r} is not an ISO 8601 UTC time like 2026-11-27T18:00:00Z")
        hour = hours[window_start] = window_start[:13] + ":00:00Z"
    return hour


def _whole_hours(since: str, until: str) -> tuple[str, str] | None:
    """``(first, end)``: the whole UTC hours inside [since, until) are those starting in [first, end).

    None when there is none, or when a bound is not a window start (then no rollup is used).
    ``""`` and ``"~"`` (no bound) stay as they are.
    """
    if (since and not _WINDOW_START.fullmatch(since)) or (until != "~" and not _WINDOW_START.fullmatch(until)):
        return None
    first = since[:13] + ":00:00Z" if since else since
    if first != since:
        try:
            first = iso_utc(datetime.strptime(first, "%Y-%m-%dT%H:%M:%SZ") + timedelta(hours=1))
        except (OverflowError, ValueError):  # in year 9999, or not a date at all: no rollup
            return None
    end = until if until == "~" else until[:13] + ":00:00Z"
    return (first, end) if first < end else None


# A part of a range: (table, its time column, from, to), the rows with from <= time < to.
Part = tuple[str, str, str, str]


def range_parts(table: str, since: str, until: str) -> list[Part]:
    """Where the rows of ``table`` with window starts in [since, until) are summed from.

    The whole hours inside the range come from the table's hour rollup, the minutes before the
    first and after the last from the table itself.
    """
    rollup = ROLLUPS.get(table)
    hours = _whole_hours(since, until)
    if rollup is None or hours is None:
        return [(table, "window_start", since, until)]
    first, end = hours
    parts = [(rollup[0], "hour_start", first, end)]
    if since < first:
        parts.insert(0, (table, "window_start", since, first))
    if end < until:
        parts.append((table, "window_start", end, until))
    return parts


def _keys(connection: sqlite3.Connection, part: Part) -> list[str]:
    """The distinct window (or hour) starts in ``part``, one index seek each."""
    table, key, low, high = part
    found: list[str] = []
    (value,) = connection.execute(
        f"SELECT MIN({key}) FROM {table} WHERE {key} >= ? AND {key} < ?", (low, high)
    ).fetchone()
    while value is not None:
        found.append(value)
        (value,) = connection.execute(
            f"SELECT MIN({key}) FROM {table} WHERE {key} > ? AND {key} < ?", (value, high)
        ).fetchone()
    return found


def top_by_bounds(connection: sqlite3.Connection, parts: list[Part], column: str, limit: int) -> list[Ranked] | None:
    """The ``limit`` keys with the most tweets over ``parts`` (ties by key), without summing every key.

    Each part is cut into segments (one window, or one hour of a rollup) and the ``depth`` largest
    counts of each segment are read from its ranked index. A key missing from a segment's list has
    at most the list's last count there (0 when the list holds the whole segment). So a key on no
    list has at most ``outside``, the sum of those last counts; a listed key at least the sum of its
    listed counts and at most that plus the last counts of the lists it is missing from. Once the
    ``limit``-th largest listed sum (``threshold``) exceeds ``outside``, only the listed keys whose
    upper bound reaches ``threshold`` can be in the answer: those are summed exactly. Every other key
    has fewer tweets than ``limit`` keys that are summed, so the answer is exactly that of
    ``GROUP BY key ORDER BY SUM(tweets) DESC, key LIMIT limit``.

    Hashtag counts are skewed (a few big ones, a long tail), so one round with a short list decides.
    None when even the longer lists cannot (counts too even): the caller sums every key instead.
    """
    segments = [(part[0], part[1], key) for part in parts for key in _keys(connection, part)]
    if not segments:
        return []
    for depth in (max(2 * limit, 20), max(8 * limit, 100)):
        listed: dict[str, int] = {}  # key -> sum of its listed counts
        covered: dict[str, int] = {}  # key -> sum of the last counts of the lists it is on
        outside = 0
        for table, key_column, key in segments:
            rows = connection.execute(
                f"SELECT {column}, tweets FROM {table} WHERE {key_column} = ? ORDER BY tweets DESC LIMIT ?",
                (key, depth),
            ).fetchall()
            last = rows[-1][1] if len(rows) == depth else 0
            outside += last
            for name, tweets in rows:
                listed[name] = listed.get(name, 0) + tweets
                covered[name] = covered.get(name, 0) + last
        if outside == 0:  # every list held its whole segment: the listed sums are the totals
            totals = listed
        else:
            if len(listed) < limit:
                continue
            threshold = sorted(listed.values(), reverse=True)[limit - 1]
            if outside >= threshold:
                continue
            contenders = [name for name, tweets in listed.items() if tweets + outside - covered[name] >= threshold]
            totals = _totals(connection, segments, column, contenders)
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [Ranked(key, total) for key, total in ranked]
    return None


def _totals(
    connection: sqlite3.Connection, segments: list[tuple[str, str, str]], column: str, names: list[str]
) -> dict[str, int]:
    """Tweets of each of ``names`` summed over ``segments``: one primary-key lookup per (segment, name)."""
    by_table: dict[tuple[str, str], list[str]] = {}
    for table, key_column, key in segments:
        by_table.setdefault((table, key_column), []).append(key)
    totals: dict[str, int] = {}
    for (table, key_column), keys in by_table.items():
        # CROSS JOIN keeps this join order: the table last, looked up by its whole primary key.
        rows = connection.execute(
            f"""
            SELECT t.{column}, SUM(t.tweets) FROM json_each(?) AS k CROSS JOIN json_each(?) AS n
            CROSS JOIN {table} AS t ON t.{key_column} = k.value AND t.{column} = n.value
            GROUP BY t.{column}
            """,
            (json.dumps(keys), json.dumps(names)),
        ).fetchall()
        for name, tweets in rows:
            totals[name] = totals.get(name, 0) + tweets
    return totals

"""What a checkpoint and a store were counted with (topic, window length): noted at each start, and
checked before the next, which refuses to mix two countings in one store."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from backend.aggregates.interfaces import AggregatesWriter
from jobs.consumer.options import ConsumerOptions, spark_interval
from jobs.consumer.sinks import Sink, sink_for

# Written in a local checkpoint folder: the topic and window length its store counts with.
JOB_SHAPE_FILE = "tweetstream-job.json"


class ShapeConflict(Exception):
    """This start cannot count into the store and checkpoint it was given; the message says why."""


def local_folder(location: str) -> Path | None:
    """A checkpoint location as a local folder (a path or a file: URI); None for other URIs."""
    if location.startswith("file://"):
        host, _, path = location.removeprefix("file://").partition("/")
        return Path("/" + path) if host in ("", "localhost") else None  # file://host/... is not this machine
    if location.startswith("file:"):
        return Path(location.removeprefix("file:"))
    return None if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+:", location) else Path(location)


def shape_problems(
    options: ConsumerOptions, sink: Sink, stored_window_ms: int | None, recorded: dict[str, Any] | None
) -> list[str]:
    """What differs between this start and what the store holds / the checkpoint's note says."""
    found = []
    if stored_window_ms is not None and stored_window_ms != options.window_ms:
        found.append(f"{sink.description} {sink.holds} windows of {spark_interval(stored_window_ms)}")
    if recorded is not None:
        if recorded.get("window_ms") != options.window_ms:
            found.append(
                f"the checkpoint {options.checkpoint} counted windows of {spark_interval(recorded['window_ms'])}"
            )
        if recorded.get("topic") != options.topic:
            found.append(f"the checkpoint {options.checkpoint} reads topic '{recorded.get('topic')}'")
    return found


def shape_conflict(
    options: ConsumerOptions, store: AggregatesWriter | None = None, sink: Sink | None = None
) -> str | None:
    """Why the store and checkpoint cannot take this start's counts (another window length or
    topic), or None. Reads only: a refused start writes nothing.

    ``store``: the writer whose window length counts; by default the one the sink can read without
    Spark (SQLite's). Delta tables are read through Spark: without their ``DeltaStore`` only the
    checkpoint's note is compared.
    """
    sink = sink or sink_for(options)
    folder = local_folder(options.checkpoint)
    recorded = None
    # The note counts once the checkpoint has planned a batch: a start that failed before any
    # left a note, but nothing counted with it.
    if folder is not None and (folder / JOB_SHAPE_FILE).exists() and any((folder / "aggregates" / "offsets").glob("*")):
        try:
            recorded = json.loads((folder / JOB_SHAPE_FILE).read_text())
            if not isinstance(recorded, dict) or not isinstance(recorded.get("window_ms"), int):
                raise ValueError("not a note of this job")
        except (OSError, ValueError) as error:
            return (
                f"refusing to start: the checkpoint's note {folder / JOB_SHAPE_FILE} cannot be read ({error}), so "
                "whether this start counts like the last one is unknown. Delete the note if the --window and "
                "--topic are the ones the checkpoint was written with, or give a new --store and --checkpoint."
            )
    store = store if store is not None else sink.store_without_spark()
    found = shape_problems(options, sink, None if store is None else store.window_length_ms(), recorded)
    if not found:
        return None
    return (
        f"refusing to start: {'; '.join(found)}, but this start asks for windows of "
        f"{spark_interval(options.window_ms)} on topic '{options.topic}'. Going on would mix two countings in one "
        f"store. Start with the --window and --topic they were written with, or give a new {sink.new_store_options} "
        "and --checkpoint (or delete both to count the topic again from the start)."
    )


def record_shape(options: ConsumerOptions) -> None:
    """Note the topic and window length in a local checkpoint folder, for the next start's check."""
    folder = local_folder(options.checkpoint)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        shape = {"topic": options.topic, "window_ms": options.window_ms}
        # Written aside and renamed: a kill -9 mid-write leaves the old note or the new one, never half.
        partial = folder / f".{JOB_SHAPE_FILE}.{os.getpid()}"
        partial.write_text(json.dumps(shape) + "\n")
        os.replace(partial, folder / JOB_SHAPE_FILE)

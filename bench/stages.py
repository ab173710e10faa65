"""Where the consumer's Spark time goes: a Java Flight Recording of the job, its executor threads'
samples put into stages by the frames on their stacks (``stage_shares``, pure) and printed as shares."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path


def recording_options(path: Path) -> str:
    """What the JVM that runs the job records (JAVA_TOOL_OPTIONS of that process only): the "profile"
    settings sample running Java code every 10 ms and threads in native code (socket reads) every 20 ms."""
    return f"-XX:StartFlightRecording=filename={path},settings=profile,dumponexit=true"


# (stage, frame fragments): a sample belongs to the stage of the innermost frame that names one
# (a Kafka fetch inside the archive's write is Kafka); the generic stages count only when no
# frame names a specific one (a string copy inside the JSON parser is parsing).
SPECIFIC_STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Python UDF (VADER, Arrow exchange)", ("sql.execution.python.", "org.apache.arrow.", "api.python.")),
    ("JSON parse (from_json, variants)", ("JacksonParser", "com.fasterxml.jackson.", "types.variant.", "Variant")),
    ("archive write (Parquet)", ("org.apache.parquet.", "FileFormatWriter", "datasources.parquet.")),
    ("cache (persist, read back)", ("columnar.InMemory", "InMemoryRelation", "CachedBatch", "columnar.compression")),
    ("Kafka read", ("org.apache.kafka.", "sql.kafka010.")),
    ("aggregation and shuffle", ("aggregate.", "BytesToBytesMap", "shuffle.", "GenerateExec", "UnsafeExternal")),
)
GENERIC_STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("regex, UTF-8 and string functions", ("java.util.regex.", "UTF8String", "regexp")),
    ("other generated code (projection, row copies)", ("GeneratedClass", "codegen.")),
)
OTHER = "other (Spark's task overhead)"
EXECUTOR_THREAD = "Executor task launch worker"


def stage_of(frames: Iterable[str]) -> str:
    """The stage of one sample, from its frames (innermost first)."""
    frames = list(frames)
    for stages in (SPECIFIC_STAGES, GENERIC_STAGES):
        for frame in frames:
            for stage, fragments in stages:
                if any(fragment in frame for fragment in fragments):
                    return stage
    return OTHER


def stage_shares(samples: Iterable[tuple[str, list[str]]]) -> list[tuple[str, float]]:
    """(stage, share of the executor threads' samples), largest first; ``samples`` are (thread, frames)."""
    counts = Counter(stage_of(frames) for thread, frames in samples if thread.startswith(EXECUTOR_THREAD))
    total = sum(counts.values())
    return [(stage, n / total) for stage, n in counts.most_common()] if total else []


def parse_samples(lines: Iterable[str]) -> Iterator[tuple[str, list[str]]]:
    """(thread name, frames) of each event in ``jfr print`` output."""
    thread, frames, in_stack = "", [], False
    for raw in lines:
        line = raw.strip()
        if line.endswith("{") and line.startswith("jdk."):
            thread, frames, in_stack = "", [], False
        elif line.startswith("sampledThread =") or line.startswith("eventThread ="):
            thread = line.split("=", 1)[1].strip().strip('"').split('" (')[0]
        elif line.startswith("stackTrace = ["):
            in_stack = True
        elif in_stack and line == "]":
            in_stack = False
        elif in_stack and line and line != "...":
            frames.append(line)
        elif line == "}" and not in_stack:
            yield thread, frames
            thread, frames = "", []


def recorded_shares(recording: Path) -> list[tuple[str, float]]:
    """The stage shares of one recording (Java samples and native ones: a thread reading the Python worker's socket)."""
    jfr = shutil.which("jfr") or "jfr"
    done = subprocess.run(
        [jfr, "print", "--stack-depth", "64", "--events", "jdk.ExecutionSample,jdk.NativeMethodSample", str(recording)],
        capture_output=True,
        text=True,
        check=True,
    )
    return stage_shares(parse_samples(done.stdout.splitlines()))

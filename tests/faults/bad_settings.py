"""Fault scenario 9, bad settings: each gives a clear message within 15 s and starts nothing.

An unreachable bootstrap server (a closed port), a bad topic name, a negative rate (the
consumer's is --max-offsets-per-trigger), a missing replay file and a wrong SASL password
(against a SASL broker of the scenario's own), for the producer and the Spark consumer, each
through two doors: the console (its page, rendered with AppTest in this process, Start
clicked: the page runs the job's own checks, asks Kafka, then has the supervisor spawn the
job) and the command line (``python -m jobs.producer`` / ``python -m jobs.consumer``).

After each attempt: the words a user needs are in the message, it came within 15 s (the
time is noted), no process of ours appeared (a zombie counts: a job spawned by the console
that failed at once is one), no pid file names a live job, a console attempt left no job log
or status file, the consumer made no checkpoint or archive, and the broker holds the one
topic made beforehand, still empty.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from backend.console import supervisor
from backend.kafka.topics import TopicSpec, create_topic
from backend.runtime import processes
from backend.runtime.job_files import JobFiles
from tests.faults.harness import (
    Run,
    SaslCluster,
    ScenarioFailed,
    check,
    console_app,
    job_env,
    kill_tree,
    sasl_broker,
    scenario,
    start_job,
)
from tests.support import free_port

LIMIT_S = 15.0
TOPIC = "tweets"  # made before the attempts; it must stay the only topic, and empty
BAD_TOPIC = "tweets feed!"
CLI_WAIT_S = 40.0  # how long a command line is given before it counts as hanging (and is killed)


@dataclass(frozen=True)
class Case:
    setting: str  # what is wrong, as the report says it
    job: supervisor.JobName
    words: tuple[str, ...]  # what the message must say (case-insensitive)
    cli_args: tuple[str, ...] = ()
    # The page's widgets for the same request: (kind, key, value), kind "text", "number" or "radio".
    widgets: tuple[tuple[str, str, Any], ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # the settings (environment) of both doors


@dataclass
class Attempt:
    seconds: float
    message: str


def cases(cluster: SaslCluster, closed: str, missing: Path, wrong_password: str) -> list[Case]:
    good = cluster.settings_env()
    wrong = cluster.settings_env(password=wrong_password)
    unreachable = {"TWEETSTREAM_BOOTSTRAP_SERVERS": closed}
    producer_base = ("--topic", TOPIC, "--create-topic", "--count", "50")
    consumer_base = ("--master", "local[2]", "--trigger", "1s", "--topic", TOPIC)
    return [
        Case("an unreachable bootstrap server", "producer", ("cannot reach", closed), producer_base, env=unreachable),
        Case(
            "a bad topic name",
            "producer",
            ("topic name", BAD_TOPIC),
            ("--topic", BAD_TOPIC, "--create-topic", "--count", "50"),
            (("text", "producer-topic", BAD_TOPIC),),
            good,
        ),
        Case(
            "a negative rate",
            "producer",
            ("--rate", "-5"),
            (*producer_base, "--rate", "-5"),
            (("number", "producer-rate", -5.0),),
            good,
        ),
        Case(
            "a missing replay file",
            "producer",
            ("replay file not found", str(missing)),
            ("--topic", TOPIC, "--source", "replay", "--file", str(missing)),
            (("radio", "producer-source", "replay"), ("text", "producer-path", str(missing))),
            good,
        ),
        Case("a wrong SASL password", "producer", ("authentication failed", "password"), producer_base, env=wrong),
        Case("an unreachable bootstrap server", "consumer", ("cannot reach", closed), consumer_base, env=unreachable),
        Case(
            "a bad topic name",
            "consumer",
            ("topic name", BAD_TOPIC),
            ("--master", "local[2]", "--trigger", "1s", "--topic", BAD_TOPIC),
            (("text", "consumer-topic", BAD_TOPIC),),
            good,
        ),
        Case(
            "a negative rate",
            "consumer",
            ("--max-offsets-per-trigger", "-100"),
            (*consumer_base, "--max-offsets-per-trigger", "-100"),
            (("number", "consumer-max", -100),),
            good,
        ),
        Case("a wrong SASL password", "consumer", ("authentication failed", "password"), consumer_base, env=wrong),
    ]


@scenario(9, "bad-settings")
def bad_settings(run: Run) -> None:
    password = f"right-{uuid.uuid4().hex}"
    with sasl_broker(run, password) as cluster:
        admin = AdminClient({**cluster.client_config(), "error_cb": lambda _error: None, "log_level": 0})
        create_topic(admin, TopicSpec(TOPIC, partitions=2))
        closed = f"127.0.0.1:{free_port()}"  # nothing listens there
        missing = run.folder("inputs") / "no-such-dump.jsonl"
        run.note(f"SASL broker at {cluster.bootstrap} (topic {TOPIC!r}, 2 partitions, empty); closed port {closed}")
        slowest = 0.0
        wrong_password = f"wrong-{uuid.uuid4().hex}"
        passwords = (password, wrong_password)
        for number, case in enumerate(cases(cluster, closed, missing, wrong_password), 1):
            for door in ("console", "command line"):
                state_dir = run.folder(f"{number}-{case.job}-{'console' if door == 'console' else 'cli'}")
                before = _our_processes()
                if door == "console":
                    attempt = _console_attempt(case, state_dir)
                else:
                    attempt = _cli_attempt(case, state_dir, run.workdir / f"{state_dir.name}.log")
                where = f"{case.setting}, {case.job}, {door}"
                first = attempt.message.strip().splitlines()[0] if attempt.message.strip() else "(no message)"
                run.note(f"{where}: {attempt.seconds:.1f} s: {first[:240]}")
                slowest = max(slowest, attempt.seconds)
                check(
                    attempt.seconds < LIMIT_S,
                    f"{where}: the message took {attempt.seconds:.1f} s (limit {LIMIT_S:g} s)",
                )
                lowered = attempt.message.lower()
                missing_words = [w for w in case.words if w.lower() not in lowered]
                check(not missing_words, f"{where}: the message lacks {missing_words}: {attempt.message[-1500:]}")
                check(not any(p in attempt.message for p in passwords), f"{where}: the message shows a password")
                _check_nothing_started(where, case, door, state_dir, before, admin)
        # Nor does any file of the attempts (logs, status files) hold a password, right or wrong.
        files = [f for f in run.workdir.rglob("*") if f.is_file() and run.workdir / "broker" not in f.parents]
        holding = [str(f) for f in files if any(p.encode() in f.read_bytes() for p in passwords)]
        check(not holding, f"files holding a password: {holding}")
        run.note(
            f"18 attempts, each refused within {slowest:.1f} s; nothing started, topic {TOPIC!r} still empty; "
            f"neither password in any message or in the {len(files)} files of the attempts"
        )


# -- the two doors ---------------------------------------------------------------------------


def _console_attempt(case: Case, state_dir: Path) -> Attempt:
    """The page of the job, its widgets set to the case's request, Start clicked: what it says, how fast."""
    env = job_env(
        state_dir,
        TWEETSTREAM_SECRETS_FILE=str(state_dir / "secrets.toml"),  # none: never the developer's
        TWEETSTREAM_KAFKA_PORT=str(free_port()),
        TWEETSTREAM_KAFKA_CONTROLLER_PORT=str(free_port()),
        **case.env,
    )
    with console_app(env, f"pages/{case.job}.py") as app:
        for kind, key, value in case.widgets:
            widget = {"text": app.text_input, "number": app.number_input, "radio": app.radio}[kind](key=key)
            (widget.input(value) if kind == "text" else widget.set_value(value)).run()
        if case.job == "producer":  # should a run begin anyway, a short one
            app.number_input(key="producer-count").set_value(50).run()
        began = time.monotonic()
        app.button(key=f"{case.job}-start").click().run()
        seconds = time.monotonic() - began
        if app.exception:
            raise ScenarioFailed(f"the {case.job} page raised: {[e.value for e in app.exception]}")
        said = [str(e.value) for e in app.error] + [str(s.value) for s in app.success]
        return Attempt(seconds, "\n".join(line for line in said if "started" in line.lower()) or "\n".join(said))


def _cli_attempt(case: Case, state_dir: Path, log: Path) -> Attempt:
    """``python -m jobs.<job> <args>`` with the case's settings: its output, and how long until it exited."""
    began = time.monotonic()
    process = start_job(f"jobs.{case.job}", list(case.cli_args), state_dir, log, **case.env)
    try:
        process.wait(timeout=CLI_WAIT_S)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        raise ScenarioFailed(
            f"{case.setting}, {case.job}, command line: still running after {CLI_WAIT_S:g} s; "
            f"its output ends: {log.read_text(errors='replace')[-1500:]}"
        ) from None
    seconds = time.monotonic() - began
    output = log.read_text(errors="replace")
    check(process.returncode != 0, f"{case.setting}, {case.job}, command line: exit code 0; output: {output[-1500:]}")
    errors = [line for line in output.splitlines() if re.search(r"\berror\b", line, re.IGNORECASE)]
    # The job's own line first (the producer's "error: ...", the consumer's "ERROR consumer: ..."),
    # then the rest of its output, for the words.
    return Attempt(seconds, "\n".join([*errors[-1:], output]))


# -- nothing started -------------------------------------------------------------------------


def _our_processes() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def _describe(pid: int) -> str:
    """``pid (status: command line)``, as far as a process that may have exited still tells."""
    try:
        process = psutil.Process(pid)
        status = process.status()
    except psutil.NoSuchProcess:
        return f"{pid} (gone)"
    command = ""
    with contextlib.suppress(psutil.Error):  # a zombie has no command line left on some systems
        command = " ".join(process.cmdline())[:160]
    return f"{pid} ({status}: {command or process.name()})"


def _check_nothing_started(
    where: str, case: Case, door: str, state_dir: Path, before: set[int], admin: AdminClient
) -> None:
    # Any process the attempt left as our child counts, a zombie too: a job the console's
    # supervisor spawned (a child of this runner) that failed at once is one until reaped.
    # The command line's own job was waited for (reaped), so it is not among them.
    new = sorted(_our_processes() - before)
    described = [_describe(pid) for pid in new]
    for pid in new:
        kill_tree(pid)
    check(not new, f"{where}: processes started: {described}")
    files = JobFiles(state_dir, case.job)
    record = processes.read_pid_file(files.pid_file)
    check(not processes.is_alive(record), f"{where}: the pid file names a live job ({record})")
    if door == "console":  # a job spawned, even one that failed at once, has written its log
        made = [str(path) for path in (files.log_file, files.status_file) if path.exists()]
        check(not made, f"{where}: the job's files exist, so it was started: {made}")
    if case.job == "consumer":
        made = [name for name in ("consumer/checkpoint", "archive") if (state_dir / name).exists()]
        check(not made, f"{where}: the consumer made {made} in {state_dir}")
    topics = sorted(name for name in admin.list_topics(timeout=10).topics if not name.startswith("__"))
    check(topics == [TOPIC], f"{where}: the broker's topics are {topics}, not just {TOPIC!r}")
    partitions = [TopicPartition(TOPIC, p) for p in range(2)]
    futures = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions}, request_timeout=10)
    written = sum(future.result(timeout=15).offset for future in futures.values())
    check(written == 0, f"{where}: {written} records were written to {TOPIC!r}")

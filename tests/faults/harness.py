"""What every fault scenario shares: its result line, its working folder, brokers and jobs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka.admin import AdminClient

from backend.kafka import local_broker
from backend.kafka.local_broker import LocalBroker
from backend.kafka.topics import TopicSpec, create_topic
from backend.settings import PROJECT_ROOT
from tests.console_server import local_console_env, without_outside_settings
from tests.support import free_port
from tests.support import kill_process_tree as kill_tree  # kill -9 of a pid and its children
from tests.truth import wait_for


class ScenarioFailed(AssertionError):
    """A scenario saw something other than what it proves; the message says what."""


def check(condition: bool, reason: str) -> None:
    """Fail the scenario with ``reason`` unless ``condition`` holds."""
    if not condition:
        raise ScenarioFailed(reason)


@dataclass
class Result:
    """One scenario's figures; filled in as it runs, so a failure still shows how far it got."""

    name: str
    sent: int = 0
    acked: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    failure: str | None = None
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None

    def line(self) -> str:
        verdict = "ok" if self.ok else f"FAIL: {self.failure}"
        return (
            f"{self.name}: sent {self.sent}, acked {self.acked}, stored {self.stored}, "
            f"lost {self.lost}, duplicated {self.duplicated}, {verdict}"
        )


@dataclass
class Run:
    """What a scenario gets: its folder (kept after a failure), its result, a log of what it saw."""

    workdir: Path
    result: Result
    started: float = field(default_factory=time.monotonic)

    def note(self, message: str) -> None:
        """A detail printed under the scenario's line (figures, not adjectives)."""
        self.result.details.append(message)
        print(f"    [{time.monotonic() - self.started:6.1f} s] {message}", flush=True)

    def folder(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextlib.contextmanager
    def broker(self, name: str = "broker", **options: Any) -> Iterator[LocalBroker]:
        """A broker of this scenario's own, on free ports, stopped at the end whatever happened."""
        broker = LocalBroker(
            state_dir=self.folder(name), port=free_port(), controller_port=free_port(), heap="512m", **options
        )
        local_broker.start(broker, timeout=120)
        try:
            yield broker
        finally:
            local_broker.stop(broker)


# -- a broker whose client listener wants SASL/PLAIN ----------------------------------------

SASL_USERNAME = "tweetstream"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class SaslCluster:
    """A broker of a scenario's own whose client listener wants SASL/PLAIN (user SASL_USERNAME).

    ``broker.bootstrap`` is its PLAINTEXT listener, kept for the broker's own start check and
    for a scenario's look at its topics; the jobs and the console get ``bootstrap``.
    """

    broker: LocalBroker
    bootstrap: str  # the SASL_PLAINTEXT listener
    password: str

    def settings_env(self, password: str | None = None) -> dict[str, str]:
        """The console's settings (environment variables) for this cluster."""
        return {
            "TWEETSTREAM_BOOTSTRAP_SERVERS": self.bootstrap,
            "TWEETSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "TWEETSTREAM_KAFKA_SASL_MECHANISM": "PLAIN",
            "TWEETSTREAM_KAFKA_SASL_USERNAME": SASL_USERNAME,
            "TWEETSTREAM_KAFKA_SASL_PASSWORD": self.password if password is None else password,
        }

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings of a client that logs in on the SASL listener."""
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": SASL_USERNAME,
            "sasl.password": self.password,
        }


def sasl_properties(port: int, controller_port: int, sasl_port: int, password: str) -> tuple[tuple[str, str], ...]:
    """server.properties lines adding a SASL_PLAINTEXT listener (PLAIN, one user) to the local broker's.

    The PLAINTEXT listener stays the inter-broker one and the controller's stays as it is.
    """
    jaas = (
        f"org.apache.kafka.common.security.plain.PlainLoginModule required user_{SASL_USERNAME}={json.dumps(password)};"
    )
    return (
        (
            "listeners",
            f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port},SASL_PLAINTEXT://{HOST}:{sasl_port}",
        ),
        ("advertised.listeners", f"PLAINTEXT://{HOST}:{port},SASL_PLAINTEXT://{HOST}:{sasl_port}"),
        ("listener.security.protocol.map", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", jaas),
    )


@contextlib.contextmanager
def sasl_broker(run: Run, password: str, name: str = "broker") -> Iterator[SaslCluster]:
    """A broker of the scenario's own with a SASL listener, stopped at the end whatever happened.

    Its folder (``run.folder(name)``) holds the password in server.properties, legitimately: it
    is no part of the console's state.
    """
    port, controller_port, sasl_port = free_port(), free_port(), free_port()
    broker = LocalBroker(
        state_dir=run.folder(name),
        port=port,
        controller_port=controller_port,
        heap="512m",
        extra_properties=sasl_properties(port, controller_port, sasl_port, password),
    )
    local_broker.start(broker, timeout=120)
    try:
        yield SaslCluster(broker, f"{HOST}:{sasl_port}", password)
    finally:
        local_broker.stop(broker)


Scenario = Callable[[Run], None]
_REGISTERED: dict[str, tuple[int, Scenario]] = {}


def scenario(number: int, name: str) -> Callable[[Scenario], Scenario]:
    """Register a scenario: its number in the issue (the order they run in) and the name its line starts with."""

    def register(function: Scenario) -> Scenario:
        _REGISTERED[name] = (number, function)
        return function

    return register


def scenarios() -> dict[str, Scenario]:
    """The registered scenarios by name, in their numbers' order."""
    return {name: function for name, (_n, function) in sorted(_REGISTERED.items(), key=lambda item: item[1][0])}


def run_scenario(name: str, function: Scenario, workdir: Path) -> Result:
    result = Result(name)
    run = Run(workdir, result)
    try:
        function(run)
    except AssertionError as failure:  # ScenarioFailed, or a wait that timed out
        result.failure = str(failure)
    except Exception as error:  # a crash of the scenario is its failure, with the trace kept
        result.failure = f"{type(error).__name__}: {error}"
        (workdir / "traceback.txt").write_text(traceback.format_exc())
    finally:
        result.seconds = time.monotonic() - run.started
        for leftover in kill_children():
            run.note(f"killed a process the scenario left behind: {leftover}")
    return result


def kill_children() -> list[str]:
    """kill -9 whatever this runner started and is still running (zombies aside); what they were."""
    children = [child for child in psutil.Process().children(recursive=True) if _alive(child)]
    names = []
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            names.append(f"{child.pid} {' '.join(child.cmdline())[:120]}")
            child.kill()
    psutil.wait_procs(children, timeout=30)
    return names


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- the jobs, run as a user runs them ------------------------------------------------------


def job_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a job: this one without outside settings (those of whoever runs
    ``make faults``: tests.console_server.OUTSIDE_SETTINGS), plus the scenario's."""
    return {**without_outside_settings(os.environ), "TWEETSTREAM_STATE_DIR": str(state_dir), **extra}


@contextlib.contextmanager
def swapped_environment(env: Mapping[str, str]) -> Iterator[None]:
    """This process's environment is exactly ``env`` inside the block, and what it was after it."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def start_job(module: str, args: list[str], state_dir: Path, log: Path, **env: str) -> subprocess.Popen[str]:
    """``python -m <module> <args>`` in the background; stdout and stderr go to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=PROJECT_ROOT,
            env=job_env(state_dir, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def run_job(
    module: str, args: list[str], state_dir: Path, log: Path, timeout: float = 300, **env: str
) -> tuple[int, dict[str, Any] | None]:
    """Run a job to its end: its exit code and the last JSON line it printed (the producer's summary)."""
    process = start_job(module, args, state_dir, log, **env)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        raise ScenarioFailed(f"python -m {module} did not end within {timeout:g} s (log: {log})") from None
    return code, last_json_line(log)


def last_json_line(log: Path) -> dict[str, Any] | None:
    for line in reversed(log.read_text(encoding="utf-8", errors="replace").splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                return json.loads(line)
    return None


# Waits for a condition (the seconds it took); a timeout or an exited job fails the scenario.
wait_until = wait_for


# -- the console, rendered in this process (AppTest) ----------------------------------------


def create_topic_on(broker: LocalBroker, spec: TopicSpec) -> None:
    """Create a topic with an admin client that stays quiet when the broker is later killed."""
    # log_level 2: librdkafka's "connection refused" lines (level 3) would flood the output.
    create_topic(AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 2}), spec)


def console_env(state_dir: Path, broker: LocalBroker) -> dict[str, str]:
    """The environment of a console on ``state_dir`` whose local broker is ``broker``."""
    return job_env(
        state_dir, **local_console_env(state_dir, state_dir / "secrets.toml", broker.port, broker.controller_port)
    )


def console_environment(state_dir: Path, broker: LocalBroker) -> contextlib.AbstractContextManager[None]:
    """This process's environment made the console's for ``state_dir`` and ``broker``, for AppTest."""
    return swapped_environment(console_env(state_dir, broker))


@contextlib.contextmanager
def console_app(env: Mapping[str, str], page: str) -> Iterator[Any]:
    """The console rendered in this process (AppTest) with ``env`` as the environment, ``page`` open.

    At the end every monitor the pages made is closed (backend.console.monitor.close_all): none samples
    a broker the scenario stops, or a state folder it leaves, afterwards.
    """
    from streamlit.testing.v1 import AppTest

    from backend.console.monitor import close_all

    with swapped_environment(env):
        try:
            app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60)
            app.run()
            app.switch_page(page).run()
            yield app
        finally:
            close_all()


def page_text(app: Any) -> str:
    """What a user reads on an AppTest page: headings, text, alerts, metrics (label: value), captions."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "text", "caption", "error", "warning", "info", "success"):
        parts += [str(element.value) for element in getattr(app, kind)]
    parts += [f"{metric.label}: {metric.value}" for metric in app.metric]
    return "\n".join(parts)


def console_page_until(
    state_dir: Path, broker: LocalBroker, page: str, condition: Callable[[str], bool], timeout: float = 30
) -> str:
    """Render ``page`` of the console (AppTest) until its text meets ``condition``; that text.

    The pages read a monitor that samples once a second, so the first render may predate it.
    """
    with console_app(console_env(state_dir, broker), page) as app:
        deadline = time.monotonic() + timeout
        while True:
            text = page_text(app)
            if app.exception:
                raise ScenarioFailed(f"{page} raised: {[e.value for e in app.exception]}")
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise ScenarioFailed(f"{page} did not show what was expected within {timeout:g} s; it showed:\n{text}")
            time.sleep(1)
            app.run()

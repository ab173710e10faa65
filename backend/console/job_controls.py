"""Start and stop the producer and the Spark job where the pipeline target runs them.

Two controls answer the same calls (``describe``, ``buttons``, ``start``, ``stop``, ``states``...):
``LocalJobControls`` runs the jobs as processes on this machine (backend/console/supervisor.py);
``DatabricksJobControls`` runs the Azure wizard's jobs on Databricks (backend/azure/cloud_jobs.py).
Outcomes come back as text for the page, which draws them and decides nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from backend.console import supervisor, views
from backend.console.job_requests import RequestError
from backend.console.monitor import Monitor, Snapshot
from backend.console.supervisor import JobName
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.azure.cloud_jobs import CloudJobView
    from backend.azure.deployment import Deployment

# What the pages call each job, in a sentence ("Start the Spark job"); capitalised, its heading.
JOB_LABELS: dict[JobName, str] = {"producer": "producer", "consumer": "Spark job"}
STARTED_NOTES: dict[JobName, str] = {"producer": "", "consumer": "; its first micro-batch follows in about 20 s"}
STOPPING_NOTES: dict[JobName, str] = {
    "producer": " (it flushes what Kafka has not acknowledged yet)",
    "consumer": " after its current micro-batch",
}
CLOUD_STATE_TTL_S = 10.0  # the sidebar asks Databricks for the jobs' runs at most this often


@dataclass(frozen=True)
class Outcome:
    """What a Start or Stop came to: the message's kind, its headline, and lines to show under it (a log)."""

    kind: Literal["success", "info", "warning", "error"]
    headline: str
    detail: str | None = None


@dataclass(frozen=True)
class Buttons:
    """The texts and widget keys of one job's Start and Stop."""

    start: str
    stop: str
    start_key: str
    stop_key: str
    starting: str  # shown while Start works
    stopping: str  # shown while Stop works


@dataclass(frozen=True)
class JobState:
    """One job's line in the sidebar."""

    heading: str  # Markdown
    running: bool
    line: str


class KafkaUnreachable(RuntimeError):
    """Kafka does not answer: a job started now would only fail."""


def require_kafka(current: Monitor) -> None:
    """Sample Kafka now (bounded) and raise KafkaUnreachable with what to do when it does not answer."""
    snapshot = current.refresh()
    if snapshot.kafka.reachable:
        return
    # The monitor's reason tells a refused login or certificate from a closed port.
    if current.settings.bootstrap_servers:
        what_to_do = "Check the connection profile on the Setup page."
    else:
        what_to_do = "Start the local broker on the Setup page, or check the connection profile there."
    raise KafkaUnreachable(f"Kafka does not answer ({snapshot.kafka.error}). {what_to_do}")


class JobControls(Protocol):
    """Start, stop and watch the jobs of one pipeline target."""

    @property
    def takes_options(self) -> bool:
        """Whether ``start`` runs the options the page's form gives (else the jobs' options are fixed)."""
        ...

    @property
    def reports_counters(self) -> bool:
        """Whether the jobs' own status files (counters, last error, log) are on this machine."""
        ...

    @property
    def fixed_topic(self) -> str | None:
        """The topic the jobs read and write when the controls fix it (else the job's options say)."""
        ...

    def describe(self, name: JobName) -> str:
        """Where the job runs, in a sentence."""
        ...

    def buttons(self, name: JobName) -> Buttons: ...

    def running(self, name: JobName, snapshot: Snapshot) -> bool: ...

    def start(self, name: JobName, arguments: Callable[[], list[str]], kafka: Monitor) -> Outcome:
        """Start the job; ``arguments`` gives its checked options or raises RequestError, ``kafka`` is sampled."""
        ...

    def stop(self, name: JobName) -> Outcome: ...

    def status(self, name: JobName, snapshot: Snapshot) -> dict[str, Any] | None:
        """The job's own status file (None where the job does not write one here)."""
        ...

    def now(self, name: JobName, snapshot: Snapshot) -> str | None:
        """The job's state in a line (None where it is shown elsewhere)."""
        ...

    def states(self, snapshot: Snapshot) -> list[JobState]:
        """Both jobs' lines for the sidebar."""
        ...


class LocalJobControls:
    """The jobs as processes on this machine, through the supervisor (pid files in the state directory)."""

    takes_options = True
    reports_counters = True
    fixed_topic: str | None = None

    def __init__(
        self,
        state_dir: Path,
        start_job: Callable[[Path, JobName, Sequence[str]], tuple[supervisor.JobView, bool]] = supervisor.start_job,
        stop_job: Callable[[Path, JobName], str] = supervisor.stop_job,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state_dir = state_dir
        self._start_job = start_job
        self._stop_job = stop_job
        self._clock = clock

    def describe(self, name: JobName) -> str:
        return f"The {JOB_LABELS[name]} runs as a process on this machine (state in `{self.state_dir}`)."

    def buttons(self, name: JobName) -> Buttons:
        label = JOB_LABELS[name]
        return Buttons(
            start=f"Start {label}",
            stop=f"Stop {label}",
            start_key=f"{name}-start",
            stop_key=f"{name}-stop",
            starting=f"Starting the {label}…",
            stopping=f"Stopping the {label}{STOPPING_NOTES[name]}…",
        )

    def running(self, name: JobName, snapshot: Snapshot) -> bool:
        return _view(name, snapshot).running

    def start(self, name: JobName, arguments: Callable[[], list[str]], kafka: Monitor) -> Outcome:
        label = JOB_LABELS[name]
        try:
            checked = arguments()
            require_kafka(kafka)
            started, already = self._start_job(self.state_dir, name, checked)
        except (RequestError, KafkaUnreachable) as error:
            return Outcome("error", f"Not started: {error}")
        except supervisor.JobError as error:
            headline, _, detail = str(error).partition("\n")
            return Outcome("error", f"Not started: {headline}", detail or None)
        if already:
            return Outcome("info", f"The {label} is already running (pid {started.pid}).")
        if not started.running:
            return Outcome("success", f"The {label} ran and {started.state} already.")
        return Outcome("success", f"{_capital(label)} started (pid {started.pid}){STARTED_NOTES[name]}.")

    def stop(self, name: JobName) -> Outcome:
        began = self._clock()
        outcome = self._stop_job(self.state_dir, name)
        return Outcome("info", f"{_capital(JOB_LABELS[name])} {outcome} after {self._clock() - began:.1f} s.")

    def status(self, name: JobName, snapshot: Snapshot) -> dict[str, Any] | None:
        return _view(name, snapshot).status or {}

    def now(self, name: JobName, snapshot: Snapshot) -> str | None:
        return views.job_line(_view(name, snapshot))

    def states(self, snapshot: Snapshot) -> list[JobState]:
        views_ = {name: _view(name, snapshot) for name in supervisor.JOB_NAMES}
        return [
            JobState(f"**{_capital(JOB_LABELS[name])}**", view.running, views.job_line(view))
            for name, view in views_.items()
        ]


class DatabricksJobControls:
    """The jobs the Azure wizard made, run on Databricks; their options were fixed when the wizard made them."""

    takes_options = False
    reports_counters = False

    def __init__(
        self,
        settings: Settings,
        deployment: Deployment,
        cache_key: tuple[str, ...],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.deployment = deployment
        self._cache_key = cache_key  # the deployment and identity: the sidebar's cached states are theirs
        self._clock = clock

    @property
    def fixed_topic(self) -> str | None:
        return self.deployment.topic

    def describe(self, name: JobName) -> str:
        deployment = self.deployment
        return (
            f"The {name} job the Azure wizard made (job {deployment.jobs[name]}) in workspace "
            f"`{deployment.workspace_url}`, on cluster `{deployment.cluster_id}`, topic `{deployment.topic}` "
            f"on the HDInsight brokers `{deployment.bootstrap_servers}`."
        )

    def buttons(self, name: JobName) -> Buttons:
        return Buttons(
            start="Start on Databricks",
            stop="Stop on Databricks",
            start_key=f"cloud-{name}-start",
            stop_key=f"cloud-{name}-stop",
            starting="Asking Databricks to run the job…",
            stopping="Cancelling the run and waiting until Databricks says it ended…",
        )

    def view(self, name: JobName) -> CloudJobView:
        """The job's newest run, or why the workspace could not say (one REST call)."""
        from backend.azure import cloud_jobs

        return cloud_jobs.job_view(self.settings, self.deployment, name)

    def running(self, name: JobName, snapshot: Snapshot) -> bool:
        return self.view(name).running

    def start(self, name: JobName, arguments: Callable[[], list[str]] | None = None, kafka: Any = None) -> Outcome:
        """Run the job now, with the parameters the wizard gave it (``arguments`` and ``kafka`` are not used)."""
        from backend.azure import cloud_jobs

        started, message = cloud_jobs.start(self.settings, self.deployment, name)
        return Outcome("success" if started else "warning", message)

    def stop(self, name: JobName) -> Outcome:
        from backend.azure import cloud_jobs

        stopped, message = cloud_jobs.stop(self.settings, self.deployment, name)
        return Outcome("success" if stopped else "warning", message)

    def status(self, name: JobName, snapshot: Snapshot) -> dict[str, Any] | None:
        return None  # the run's own counters stay on Databricks

    def now(self, name: JobName, snapshot: Snapshot) -> str | None:
        return None  # the run's state is in the Databricks panel

    def states(self, snapshot: Snapshot) -> list[JobState]:
        """The newest run of each job, asked at most every CLOUD_STATE_TTL_S whatever the number of tabs and
        sessions (each ask is a REST call to the workspace)."""
        now = self._clock()
        with _states_lock:
            cached = _states_cache.get(self._cache_key)
            if cached is not None and now - cached[0] < CLOUD_STATE_TTL_S:
                return cached[1]
        states = []
        for name in supervisor.JOB_NAMES:
            view = self.view(name)
            states.append(
                JobState(f"**{_capital(JOB_LABELS[name])}** (Databricks)", view.running, view.error or view.state)
            )
        with _states_lock:
            _states_cache.clear()  # one deployment at a time: the current one
            _states_cache[self._cache_key] = (now, states)
        return states


_states_cache: dict[tuple[str, ...], tuple[float, list[JobState]]] = {}
_states_lock = threading.Lock()


def _view(name: JobName, snapshot: Snapshot) -> supervisor.JobView:
    return snapshot.producer if name == "producer" else snapshot.consumer


def _capital(label: str) -> str:
    return label[0].upper() + label[1:]

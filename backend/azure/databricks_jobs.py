"""The producer and consumer as Databricks jobs on the plan's cluster, one-off runs (the topic), and
starting, stopping and reading the jobs' runs. REST: jobs 2.2, as databricks-sdk 0.162.0 calls it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.jobs import (
    JobSettings,
    QueueSettings,
    Run,
    RunLifeCycleState,
    Source,
    SparkPythonTask,
    SubmitTask,
    Task,
)

from backend.azure.arm import Progress, StepResult, report
from backend.azure.databricks import DatabricksFailure, enum_text, error_code, failed, tagged_for
from backend.azure.plan import Plan
from backend.azure.plan_config import TAG_KEY

JOB = "databricks.job"
RUN = "databricks.run"
TASK_KEY = "main"
_TERMINAL_RUN = {RunLifeCycleState.TERMINATED, RunLifeCycleState.SKIPPED, RunLifeCycleState.INTERNAL_ERROR}
_LOGS_TAIL_CHARS = 4000


@dataclass(frozen=True)
class RunStatus:
    run_id: int
    life_cycle_state: str
    result_state: str | None
    state_message: str
    start_time_ms: int | None
    end_time_ms: int | None
    run_page_url: str | None
    error: str | None
    logs_tail: str | None


# --- jobs -----------------------------------------------------------------------------------------


def _job_settings(plan: Plan, name: str, cluster_id: str, python_file: str, parameters: list[str]) -> JobSettings:
    return JobSettings(
        name=name,
        tags={TAG_KEY: plan.config.tag_value},
        max_concurrent_runs=1,
        # Jobs API 2.2 queues a run that finds one active; a second start (two clicks, the workspace's
        # Run now) would then run after Stop. Without the queue it is skipped at once.
        queue=QueueSettings(enabled=False),
        tasks=[
            Task(
                task_key=TASK_KEY,
                existing_cluster_id=cluster_id,
                spark_python_task=SparkPythonTask(
                    python_file=python_file, parameters=list(parameters), source=Source.WORKSPACE
                ),
            )
        ],
    )


def _comparable(settings: JobSettings) -> dict[str, Any]:
    """What we set, as the service returns it (it adds defaults of its own, ignored here)."""
    data = settings.as_dict()
    tasks = [
        {key: task.get(key) for key in ("task_key", "existing_cluster_id", "spark_python_task")}
        for task in data.get("tasks", [])
    ]
    for task in tasks:
        (task.get("spark_python_task") or {}).setdefault("parameters", [])
    return {
        "name": data.get("name"),
        "tags": data.get("tags") or {},
        "max_concurrent_runs": data.get("max_concurrent_runs"),
        "queue": data.get("queue"),
        "tasks": tasks,
    }


def ensure_job(
    client: WorkspaceClient,
    plan: Plan,
    name: str,
    *,
    cluster_id: str,
    python_file: str,
    parameters: list[str],
    progress: Progress | None = None,
) -> tuple[StepResult, int]:
    """Find (by name and tag) or create a job running ``python_file`` on the cluster; reset it if its
    settings differ. A failed result comes with job id 0 (no job)."""
    wanted = _job_settings(plan, name, cluster_id, python_file, parameters)
    try:
        for job in client.jobs.list(name=name):
            if job.job_id is None or job.settings is None or not tagged_for(job.settings.tags, plan):
                continue
            current = client.jobs.get(job.job_id).settings
            if current is not None and _comparable(current) == _comparable(wanted):
                return StepResult(JOB, name, "exists", f"job {job.job_id}"), job.job_id
            report(progress, StepResult(JOB, name, "creating", f"job {job.job_id}: settings differ, resetting"))
            client.jobs.reset(job.job_id, wanted)
            return StepResult(JOB, name, "created", f"updated job {job.job_id} (settings reset)"), job.job_id
        report(progress, StepResult(JOB, name, "creating", python_file))
        created = client.jobs.create(**wanted.as_shallow_dict())  # every setting, as reset sends them
    except DatabricksError as exc:
        return failed(JOB, name, exc), 0
    if created.job_id is None:
        return StepResult(JOB, name, "failed", "jobs/create answered without a job_id", "NO_JOB_ID", None), 0
    return StepResult(JOB, name, "created", f"job {created.job_id}"), created.job_id


# --- runs -----------------------------------------------------------------------------------------


def _status(client: WorkspaceClient, run: Run, *, with_output: bool) -> RunStatus:
    state = run.state
    life = enum_text(state.life_cycle_state) if state is not None else None
    error = logs = None
    if with_output and state is not None and state.life_cycle_state in _TERMINAL_RUN:
        # get-output wants a task's run id; a 2.2 run lists its tasks.
        task_run = next((t.run_id for t in run.tasks or [] if t.run_id is not None), run.run_id)
        if task_run is not None:
            try:
                output = client.jobs.get_run_output(task_run)
                error = output.error
                if output.error_trace:
                    error = f"{error or ''}\n{output.error_trace}".strip()
                logs = output.logs[-_LOGS_TAIL_CHARS:] if output.logs else None
            except DatabricksError as exc:
                error = f"output not available: {error_code(exc)}: {exc}"
    return RunStatus(
        run_id=run.run_id or 0,
        life_cycle_state=life or "UNKNOWN",
        result_state=enum_text(state.result_state) if state is not None else None,
        state_message=(state.state_message or "") if state is not None else "",
        start_time_ms=run.start_time or None,
        end_time_ms=run.end_time or None,
        run_page_url=run.run_page_url,
        error=error,
        logs_tail=logs,
    )


def _wait_run(
    client: WorkspaceClient,
    run_id: int,
    label: str,
    progress: Progress | None,
    timeout_s: float,
    poll_s: float,
) -> tuple[Run, bool]:
    deadline = time.monotonic() + timeout_s
    seen: tuple[str | None, str] | None = None
    while True:
        run = client.jobs.get_run(run_id)
        state = run.state
        now = (enum_text(state.life_cycle_state) if state else None, (state.state_message or "") if state else "")
        if now != seen:
            seen = now
            text = f"{now[0]}: {now[1]}" if now[1] else f"{now[0]}"
            report(progress, StepResult(RUN, label, "creating", f"run {run_id} {text}"))
        if state is not None and state.life_cycle_state in _TERMINAL_RUN:
            return run, True
        if time.monotonic() > deadline:
            return run, False
        time.sleep(poll_s)


def run_once(
    client: WorkspaceClient,
    *,
    cluster_id: str,
    python_file: str,
    parameters: list[str],
    run_name: str,
    progress: Progress | None = None,
    timeout_s: float = 900,
    poll_s: float = 5,
) -> RunStatus:
    """Submit a one-off run of ``python_file`` on the cluster and wait for its end; the status
    carries the error and the tail of its logs. A run still going after ``timeout_s`` is cancelled."""
    try:
        submitted = client.jobs.submit(
            run_name=run_name,
            tasks=[
                SubmitTask(
                    task_key=TASK_KEY,
                    existing_cluster_id=cluster_id,
                    spark_python_task=SparkPythonTask(
                        python_file=python_file, parameters=list(parameters), source=Source.WORKSPACE
                    ),
                )
            ],
        )
        run_id = int(submitted.run_id)
        run, ended = _wait_run(client, run_id, run_name, progress, timeout_s, poll_s)
        if not ended:
            client.jobs.cancel_run(run_id)
            status = _status(client, run, with_output=False)
            return replace(status, error=f"still {status.life_cycle_state} after {timeout_s:.0f} s: cancelled")
        return _status(client, run, with_output=True)
    except DatabricksError as exc:
        raise DatabricksFailure(error_code(exc), str(exc)) from None


def _newest(runs: Iterable[Any]) -> Any | None:
    return next(iter(runs), None)  # runs/list answers newest first; only the first page is read


def start_run(client: WorkspaceClient, job_id: int) -> int:
    """Start the job (run-now), or return the id of its run that is already active."""
    try:
        active = _newest(client.jobs.list_runs(job_id=job_id, active_only=True, limit=1))
        if active is not None and active.run_id is not None:
            return int(active.run_id)
        return int(client.jobs.run_now(job_id).run_id)
    except DatabricksError as exc:
        raise DatabricksFailure(error_code(exc), str(exc)) from None


def stop_run(client: WorkspaceClient, run_id: int, *, timeout_s: float = 120, poll_s: float = 2) -> RunStatus:
    """Cancel the run and wait until it is TERMINATED (result CANCELED, or how it ended first)."""
    try:
        client.jobs.cancel_run(run_id)
        run, _ = _wait_run(client, run_id, str(run_id), None, timeout_s, poll_s)
        return _status(client, run, with_output=False)
    except DatabricksError as exc:
        raise DatabricksFailure(error_code(exc), str(exc)) from None


def run_status(client: WorkspaceClient, job_id: int) -> RunStatus | None:
    """The job's newest run, an active one first; None if it never ran. A finished run carries its
    error and logs tail."""
    try:
        newest = _newest(client.jobs.list_runs(job_id=job_id, active_only=True, limit=1))
        if newest is None:
            newest = _newest(client.jobs.list_runs(job_id=job_id, limit=1))
        if newest is None or newest.run_id is None:
            return None
        return _status(client, client.jobs.get_run(newest.run_id), with_output=True)
    except DatabricksError as exc:
        raise DatabricksFailure(error_code(exc), str(exc)) from None

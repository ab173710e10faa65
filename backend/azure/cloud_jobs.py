"""Start, stop and watch the producer and consumer jobs the Azure wizard made on Databricks.

The Producer and Consumer pages call these when a deployment (deployment.json) has the jobs: each
call reads the record, signs in as the wizard did, and asks the workspace. Failures come back as
text for the page, never as exceptions; no secret is in them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from azure.core.exceptions import AzureError
from databricks.sdk.errors import DatabricksError

from backend.azure import databricks
from backend.azure.credentials import credential_from
from backend.azure.databricks_jobs import RunStatus, run_status, start_run, stop_run
from backend.azure.deployment import Deployment, load_deployment
from backend.settings import Settings

log = logging.getLogger(__name__)

CloudJob = Literal["producer", "consumer"]
ACTIVE_STATES = ("QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED", "WAITING_FOR_RETRY")


@dataclass(frozen=True)
class CloudJobView:
    """What the page shows about one cloud job."""

    name: CloudJob
    job_id: int
    workspace_url: str
    status: RunStatus | None  # the newest run; None: never run
    error: str | None = None  # the workspace could not be asked: why

    @property
    def running(self) -> bool:
        return self.status is not None and self.status.life_cycle_state in ACTIVE_STATES

    @property
    def state(self) -> str:
        if self.error is not None:
            return "unknown"
        if self.status is None:
            return "never run"
        if self.status.result_state:
            return f"{self.status.life_cycle_state} ({self.status.result_state})"
        return self.status.life_cycle_state

    def rows(self, now: datetime | None = None) -> list[dict[str, str]]:
        """The run's facts as (what, value) rows, each value with its unit."""
        run = self.status
        if run is None:
            return []
        now = now or datetime.now(UTC)
        rows = [{"what": "run", "value": str(run.run_id)}, {"what": "state", "value": self.state}]
        if run.state_message:
            rows.append({"what": "message", "value": run.state_message})
        if run.start_time_ms:
            started = datetime.fromtimestamp(run.start_time_ms / 1000, UTC)
            ended = datetime.fromtimestamp(run.end_time_ms / 1000, UTC) if run.end_time_ms else now
            rows.append({"what": "started", "value": started.strftime("%Y-%m-%d %H:%M:%S UTC")})
            rows.append({"what": "ran for", "value": f"{(ended - started).total_seconds():,.0f} s"})
        return rows


def cloud_deployment(settings: Settings) -> Deployment | None:
    """The wizard's deployment when it has made the jobs; None otherwise (or when unreadable)."""
    try:
        deployment = load_deployment(settings.state_dir)
    except ValueError:
        return None
    if deployment is None or not deployment.jobs or not deployment.workspace_url:
        return None
    if not deployment.workspace_resource_id:
        return None
    return deployment


_clients: dict[tuple[str, ...], databricks.WorkspaceClient] = {}
_clients_lock = threading.Lock()


def workspace_client(settings: Settings, deployment: Deployment) -> databricks.WorkspaceClient:
    """One client (and credential, with its token cache) per workspace and identity: the pages ask every
    few seconds, and a new credential each time would sign in each time."""
    if deployment.workspace_url is None or deployment.workspace_resource_id is None:
        raise ValueError("the deployment record has no workspace: run the Azure wizard's build again")
    ca_bundle = str(settings.azure_ca_bundle) if settings.azure_ca_bundle is not None else None
    secret = settings.azure_client_secret.get_secret_value() if settings.azure_client_secret else ""
    key = (
        deployment.workspace_url,
        deployment.workspace_resource_id,
        settings.azure_authority_host,
        str(settings.azure_tenant_id),
        str(settings.azure_client_id),
        hashlib.sha256(secret.encode()).hexdigest(),  # a changed secret makes a new client
        str(ca_bundle),
    )
    with _clients_lock:
        if key not in _clients:
            for old in [k for k in _clients if k[0] == key[0]]:  # one client per workspace: the newest identity
                del _clients[old]
            _clients[key] = databricks.workspace_client(
                deployment.workspace_url,
                credential_from(settings),
                deployment.workspace_resource_id,
                ca_bundle=ca_bundle,
            )
        return _clients[key]


def _why(exc: Exception) -> str:
    """One line for the page; a failure that is not the service's or the settings' is also logged (ours)."""
    if not isinstance(exc, AzureError | DatabricksError | ValueError | OSError):
        log.error("cloud job call failed", exc_info=exc)
    message = str(getattr(exc, "message", "") or exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {message}"


def job_view(settings: Settings, deployment: Deployment, name: CloudJob) -> CloudJobView:
    """The newest run of the job, or why the workspace could not say."""
    job_id = deployment.jobs[name]
    url = deployment.workspace_url or ""
    try:
        status = run_status(workspace_client(settings, deployment), job_id)
    except Exception as exc:  # shown on the page, never a traceback (no secret is in these messages)
        return CloudJobView(name, job_id, url, None, f"cannot ask the workspace {url}: {_why(exc)}")
    return CloudJobView(name, job_id, url, status)


def start(settings: Settings, deployment: Deployment, name: CloudJob) -> tuple[bool, str]:
    """Run the job now (one run at a time: an active run is reported, not doubled)."""
    job_id = deployment.jobs[name]
    try:
        client = workspace_client(settings, deployment)
        before = run_status(client, job_id)
        run_id = start_run(client, job_id)
    except Exception as exc:  # shown on the page, never a traceback
        return False, f"Not started: {_why(exc)}"
    if before is not None and before.run_id == run_id and before.life_cycle_state in ACTIVE_STATES:
        return False, f"Already running: run {run_id} of job {job_id}"
    return True, f"Started run {run_id} of job {job_id} on Databricks"


def stop(settings: Settings, deployment: Deployment, name: CloudJob) -> tuple[bool, str]:
    """Cancel the active run and wait until Databricks says it ended."""
    job_id = deployment.jobs[name]
    try:
        client = workspace_client(settings, deployment)
        current = run_status(client, job_id)
        if current is None or current.life_cycle_state not in ACTIVE_STATES:
            return False, "No run is active"
        ended = stop_run(client, current.run_id)
    except Exception as exc:  # shown on the page, never a traceback
        return False, f"Not stopped: {_why(exc)}"
    return True, f"Run {ended.run_id} {ended.life_cycle_state} ({ended.result_state or 'no result'})"

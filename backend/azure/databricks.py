"""The Databricks side of the Azure plan, over the Databricks REST API with databricks-sdk 0.162.0.

What the wizard does in the workspace once it exists: the all-purpose cluster whose Spark is
ours, with Spark's Kafka connector (Maven) and the Python packages the jobs import that a runtime
lacks (PyPI, CLUSTER_PYPI); the job files uploaded as workspace files; the X bearer token as a secret; the producer and
consumer as jobs on that cluster; one-off runs (the topic) and start, stop, status of the jobs.

REST versions are the SDK's: clusters 2.1, libraries 2.0, workspace 2.0, secrets 2.0, jobs 2.2,
SCIM Me 2.0 (preview path). Each step finds what exists first (by name and the plan's tag) and
creates only what is missing, so a rerun resumes.

Authentication: a Microsoft Entra token from our azure-core TokenCredential for the Azure
Databricks resource and the workspace's resource id in X-Databricks-Azure-Workspace-Resource-Id
(as the SDK does on Azure); for a service principal only, as the SDK's azure-client-secret strategy
does (one that is not yet a workspace user), an ARM token in X-Databricks-Azure-SP-Management-Token.

Secrets: the X bearer token arrives as a SecretStr, goes only into POST secrets/put (whose body
the SDK's debug log redacts) and reaches the jobs as the cluster's spark_env_vars reference
``{{secrets/<scope>/<key>}}``. Classic jobs on an existing cluster cannot set environment
variables per task (job-level environment_variables serve serverless tasks only), so the
reference lives on the cluster (``ensure_cluster(..., spark_env_vars=...)``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import posixpath
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.credentials_provider import CredentialsProvider, CredentialsStrategy, OAuthCredentialsProvider
from databricks.sdk.errors import DatabricksError, NotFound, ResourceAlreadyExists
from databricks.sdk.oauth import Token
from databricks.sdk.service.compute import (
    ClusterDetails,
    DataSecurityMode,
    Library,
    LibraryInstallStatus,
    PythonPyPiLibrary,
    State,
)
from databricks.sdk.service.jobs import (
    JobSettings,
    Run,
    RunLifeCycleState,
    Source,
    SparkPythonTask,
    SubmitTask,
    Task,
)
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, ObjectType
from pydantic import SecretStr
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from backend.azure.plan import TAG_KEY, Plan
from backend.azure.provision import Progress, StepResult, report

# Azure Databricks' application id (its Entra resource) and Azure Resource Manager's.
DATABRICKS_SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
ARM_SCOPE = "https://management.core.windows.net/.default"

CLUSTER = "databricks.cluster"
FILES = "databricks.files"
JOB = "databricks.job"
RUN = "databricks.run"

TASK_KEY = "main"
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"
_TERMINAL_RUN = {RunLifeCycleState.TERMINATED, RunLifeCycleState.SKIPPED, RunLifeCycleState.INTERNAL_ERROR}
_LOGS_TAIL_CHARS = 4000


class DatabricksFailure(DatabricksError):
    """A Databricks call that failed, with its error code; the message never holds a secret.

    A DatabricksError (so an OSError), caught where callers catch the SDK's own errors."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}", error_code=error_code)


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


# --- the client -----------------------------------------------------------------------------------


class _EntraTokenCredentials(CredentialsStrategy):
    """A credentials strategy that asks our azure-core credential for tokens (azure-identity caches
    and refreshes them), with the headers the SDK's azure-client-secret strategy adds."""

    def __init__(self, credential: TokenCredential, workspace_resource_id: str, service_principal: bool | None) -> None:
        self._credential = credential
        self._resource_id = workspace_resource_id
        self._service_principal = service_principal

    def auth_type(self) -> str:
        return "azure-token-credential"

    def __call__(self, cfg: Any) -> CredentialsProvider:
        def token() -> Token:
            access = self._credential.get_token(DATABRICKS_SCOPE)
            expiry = datetime.datetime.fromtimestamp(access.expires_on, tz=datetime.UTC)
            return Token(access_token=access.token, token_type="Bearer", expiry=expiry)

        def headers() -> dict[str, str]:
            sent = {
                "Authorization": f"Bearer {token().access_token}",
                "X-Databricks-Azure-Workspace-Resource-Id": self._resource_id,
            }
            principal = self._service_principal
            if principal is None:  # decided once a token came (a chain knows then which one signed in)
                principal = self._service_principal = is_service_principal(self._credential)
            if principal:
                sent["X-Databricks-Azure-SP-Management-Token"] = self._credential.get_token(ARM_SCOPE).token
            return sent

        return OAuthCredentialsProvider(headers, token)


class _WorkspaceConfig(Config):
    """The SDK's Config without its host-metadata probe.

    Config() first GETs {host}/.well-known/databricks-config with a client of its own that takes
    no CA bundle (and retries a TLS failure for the whole retry budget, 300 s). It only fills in
    account id, workspace id, OIDC discovery and cloud, none of which this module uses: host and
    credentials are given.
    """

    def _resolve_host_metadata(self) -> None:
        return None


# Config finds its attributes in its own class __dict__ and caches them in _attributes: give the
# subclass the parent's list (databricks-sdk 0.162.0, as pinned).
_WorkspaceConfig._attributes = list(Config.attributes())  # type: ignore[attr-defined]


class _CaBundleAdapter(HTTPAdapter):
    """Verifies servers against one CA bundle whatever the environment says (requests lets
    REQUESTS_CA_BUNDLE override a session's ``verify``), keeping the rest (proxies) as it is."""

    def __init__(self, ca_bundle: str) -> None:
        self._ca_bundle = ca_bundle
        super().__init__(pool_connections=20, pool_maxsize=20, pool_block=True)  # the SDK's own settings

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        kwargs["verify"] = self._ca_bundle
        return super().send(request, **kwargs)


def is_service_principal(credential: TokenCredential) -> bool:
    """Whether ``credential`` signs in as a service principal: with a secret, a certificate or a client
    assertion, as a managed identity or a workload identity (azure.identity's credentials of those kinds,
    also inside an EnvironmentCredential, or the one of a chain such as DefaultAzureCredential that gave
    the last token). A user (az login, a browser) is not one."""
    from azure.identity import (
        CertificateCredential,
        ChainedTokenCredential,
        ClientAssertionCredential,
        ClientSecretCredential,
        EnvironmentCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )

    if isinstance(credential, ChainedTokenCredential):
        credential = getattr(credential, "_successful_credential", None)
    if isinstance(credential, EnvironmentCredential):
        credential = getattr(credential, "_credential", None)  # what the environment configured
    return isinstance(
        credential,
        (
            ClientSecretCredential,
            CertificateCredential,
            ClientAssertionCredential,
            ManagedIdentityCredential,
            WorkloadIdentityCredential,
        ),
    )


def workspace_client(
    url: str,
    credential: TokenCredential,
    workspace_resource_id: str,
    *,
    ca_bundle: str | None = None,
    service_principal: bool | None = None,
) -> WorkspaceClient:
    """A WorkspaceClient for the workspace at ``url`` that signs in with ``credential``.

    ``service_principal``: whether the credential is a service principal's, so that an ARM token goes
    along in X-Databricks-Azure-SP-Management-Token; None: :func:`is_service_principal` decides
    (after the first token).

    ``ca_bundle``: a PEM file to trust for this client only (no process-wide environment change).
    databricks-sdk 0.162.0 has no option for it (databricks-sdk-py issue 972), so an adapter that
    verifies with it is mounted on the SDK's requests session.
    """
    strategy = _EntraTokenCredentials(credential, workspace_resource_id, service_principal)
    config = _WorkspaceConfig(host=url, credentials_strategy=strategy)
    client = WorkspaceClient(config=config)
    if ca_bundle is not None:
        session = getattr(getattr(client.api_client, "_api_client", None), "_session", None)
        if session is None:
            raise RuntimeError("this databricks-sdk keeps no requests session where expected: cannot set ca_bundle")
        session.mount("https://", _CaBundleAdapter(ca_bundle))
    return client


# --- helpers -------------------------------------------------------------------------------------


def _code(exc: DatabricksError) -> str:
    return exc.error_code or type(exc).__name__


def _failed(step_type: str, name: str, exc: DatabricksError, advice: str | None = None) -> StepResult:
    code = _code(exc)
    return StepResult(
        step_type, name, "failed", f"{code}: {exc}", code, advice or "Fix what the message says and run again."
    )


def _enum(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


# What the jobs import that a Databricks runtime lacks (bundle.third_party_imports lists the imports).
CLUSTER_PYPI = ("confluent-kafka", "pydantic-settings", "vaderSentiment", "psutil")

# Imports of the job bundle that every Databricks runtime already has, left as they are there. Source:
# the "System environment" / installed Python libraries tables of the Databricks Runtime release
# notes (https://docs.databricks.com/aws/en/release-notes/runtime/), e.g. 17.3 LTS.
RUNTIME_PROVIDED = ("pandas", "requests", "pydantic", "numpy", "pyarrow")


def pypi_pin(package: str, requirements: Path = REQUIREMENTS) -> str:
    """``package==X`` as requirements.txt pins it."""
    pattern = re.escape(package).replace(r"\-", "[-_]")
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = re.match(rf"\s*{pattern}\s*==\s*([^\s;#]+)", line, re.I)
        if match:
            return f"{package}=={match.group(1)}"
    raise ValueError(f"{requirements} pins no {package} version")


def _cluster_properties(plan: Plan) -> Mapping[str, Any]:
    for resource in plan.resources:
        if resource.type == CLUSTER:
            return resource.properties
    raise ValueError("the plan has no databricks.cluster resource")


def _ours(tags: Mapping[str, str] | None, plan: Plan) -> bool:
    return (tags or {}).get(TAG_KEY) == plan.config.tag_value


def _find_cluster(client: WorkspaceClient, plan: Plan) -> ClusterDetails | None:
    for cluster in client.clusters.list():
        if cluster.cluster_name == plan.names.databricks_cluster and _ours(cluster.custom_tags, plan):
            return cluster
    return None


def _version_tuple(key: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", key.split("-")[0]))


# --- the cluster and its libraries ----------------------------------------------------------------


def ensure_cluster(
    client: WorkspaceClient,
    plan: Plan,
    *,
    progress: Progress | None = None,
    timeout_s: float = 1800,
    poll_s: float = 10,
    spark_env_vars: Mapping[str, str] | None = None,
) -> tuple[StepResult, str | None]:
    """Find or create the plan's cluster, wait until it runs, install its libraries.

    Returns the step's result and the cluster id (None if there is no cluster to use).
    ``spark_env_vars``: environment variables of the cluster's Spark processes, e.g. a secret
    reference ``{"X_BEARER_TOKEN": "{{secrets/scope/key}}"}``; an existing cluster with other ones
    is edited (Databricks restarts it).
    """
    name = plan.names.databricks_cluster
    props = _cluster_properties(plan)
    env = dict(spark_env_vars or {})
    try:
        offered = client.clusters.spark_versions().versions or []
        keys = [version.key for version in offered if version.key]
        if props["spark_version"] not in keys:
            spark = f"Apache Spark {props['apache_spark']}"
            same = [v.key for v in offered if v.key and spark in (v.name or "")]
            newest = sorted(keys, key=_version_tuple, reverse=True)[:5]
            listed = (
                f"runtimes with {spark} here: {', '.join(same)}"
                if same
                else f"none has {spark}; the newest: {', '.join(newest)}"
            )
            detail = f"the workspace does not offer the runtime {props['spark_version']}: {listed}"
            advice = (
                "Set databricks.runtime in the plan to one the workspace offers with our Spark, "
                "or wait until it is offered."
            )
            return StepResult(CLUSTER, name, "failed", detail, "SPARK_VERSION_NOT_OFFERED", advice), None

        existing = _find_cluster(client, plan)
        if existing is not None and existing.cluster_id:
            cluster_id, status = existing.cluster_id, "exists"
            notes = []
            edit = bool(env) and (existing.spark_env_vars or {}) != env
            # clusters/edit is refused (INVALID_STATE) unless RUNNING or TERMINATED; a TERMINATING
            # cluster can be started once it is TERMINATED.
            settled = {State.RUNNING, State.TERMINATED} if edit else {State.TERMINATED}
            if edit or existing.state == State.TERMINATING:
                existing, failure = _wait_settled(client, plan, existing, settled, progress, timeout_s, poll_s)
                if failure is not None:
                    return failure, cluster_id
            if edit:
                running = existing.state == State.RUNNING
                what = "updating its environment variables" + (
                    " (Databricks restarts it: runs on it now stop)" if running else ""
                )
                report(progress, StepResult(CLUSTER, name, "creating", what))
                _edit_env(client, cluster_id, props, existing, env)
                notes.append("environment variables updated")
                if running:  # the restart starts a moment later: do not take the old RUNNING for the new
                    deadline = time.monotonic() + min(60.0, timeout_s)
                    while client.clusters.get(cluster_id).state == State.RUNNING and time.monotonic() < deadline:
                        time.sleep(poll_s)
            if existing.state == State.TERMINATED:
                report(progress, StepResult(CLUSTER, name, "creating", "TERMINATED: starting it again"))
                client.clusters.start(cluster_id)
                notes.append("was TERMINATED, started")
            note = ", ".join(notes)
        else:
            user = client.current_user.me().user_name
            report(
                progress, StepResult(CLUSTER, name, "creating", f"{props['spark_version']}, {props['node_type_id']}")
            )
            created = client.clusters.create(
                spark_version=props["spark_version"],
                cluster_name=name,
                node_type_id=props["node_type_id"],
                driver_node_type_id=props["driver_node_type_id"],
                num_workers=props["num_workers"],
                autotermination_minutes=props["autotermination_minutes"],
                custom_tags=dict(props["custom_tags"]),
                # Dedicated (single user): Maven libraries, the Kafka source and full Python are
                # allowed; standard (shared) access mode restricts them.
                data_security_mode=DataSecurityMode.DATA_SECURITY_MODE_DEDICATED,
                single_user_name=user,
                spark_env_vars=env or None,
            )
            cluster_id, status, note = created.cluster_id, "created", ""

        failure = _wait_running(client, plan, cluster_id, progress, timeout_s, poll_s)
        if failure is not None:
            return failure, cluster_id
        failure, installed = _ensure_libraries(client, plan, cluster_id, props, progress, timeout_s, poll_s)
        if failure is not None:
            return failure, cluster_id
    except DatabricksError as exc:
        return _failed(CLUSTER, name, exc), None
    detail = ", ".join(part for part in (note, f"RUNNING, {cluster_id}", installed) if part)
    return StepResult(CLUSTER, name, status, detail), cluster_id  # type: ignore[arg-type]


def _edit_env(
    client: WorkspaceClient, cluster_id: str, props: Mapping[str, Any], existing: ClusterDetails, env: dict[str, str]
) -> None:
    # clusters/edit replaces the whole spec, so it carries every field the create sent.
    client.clusters.edit(
        cluster_id=cluster_id,
        spark_version=existing.spark_version or props["spark_version"],
        cluster_name=existing.cluster_name,
        node_type_id=existing.node_type_id,
        driver_node_type_id=existing.driver_node_type_id,
        num_workers=existing.num_workers,
        autotermination_minutes=existing.autotermination_minutes,
        custom_tags=existing.custom_tags,
        data_security_mode=existing.data_security_mode,
        single_user_name=existing.single_user_name,
        spark_env_vars=env,
    )


def _wait_settled(
    client: WorkspaceClient,
    plan: Plan,
    cluster: ClusterDetails,
    states: set[State],
    progress: Progress | None,
    timeout_s: float,
    poll_s: float,
) -> tuple[ClusterDetails, StepResult | None]:
    """Wait until the cluster is in one of ``states`` (or has failed: TERMINATED, ERROR)."""
    name = plan.names.databricks_cluster
    wanted = " or ".join(sorted(_enum(state) or "" for state in states))
    deadline = time.monotonic() + timeout_s
    seen = None
    while cluster.state not in states and cluster.state not in (State.TERMINATED, State.ERROR):
        if cluster.state != seen:
            seen = cluster.state
            report(progress, StepResult(CLUSTER, name, "creating", f"{_enum(seen)}: waiting until {wanted}"))
        if time.monotonic() > deadline:
            detail = f"still {_enum(cluster.state)} after {timeout_s:.0f} s (waiting until {wanted})"
            return cluster, StepResult(CLUSTER, name, "failed", detail, "Timeout", "Run again later to resume waiting.")
        time.sleep(poll_s)
        cluster = client.clusters.get(cluster.cluster_id or "")
    return cluster, None


def _wait_running(
    client: WorkspaceClient,
    plan: Plan,
    cluster_id: str,
    progress: Progress | None,
    timeout_s: float,
    poll_s: float,
) -> StepResult | None:
    name = plan.names.databricks_cluster
    deadline = time.monotonic() + timeout_s
    seen: tuple[str | None, str] | None = None
    while True:
        cluster = client.clusters.get(cluster_id)
        state = _enum(cluster.state)
        message = cluster.state_message or ""
        if (state, message) != seen:
            seen = (state, message)
            report(progress, StepResult(CLUSTER, name, "creating", f"{state}: {message}" if message else f"{state}"))
        if cluster.state == State.RUNNING:
            return None
        if cluster.state in (State.TERMINATED, State.ERROR):
            reason = cluster.termination_reason
            code = _enum(reason.code) if reason is not None else None
            kind = _enum(reason.type) if reason is not None else None
            params = ", ".join(f"{k}={v}" for k, v in sorted((reason.parameters or {}).items())) if reason else ""
            detail = f"{state}: {code or 'no reason given'}" + (f" ({kind})" if kind else "")
            detail += f" {params}" if params else ""
            detail += f": {message}" if message else ""
            advice = (
                "Azure could not start the cluster's VMs: check the subscription's vCPU quota for the node type "
                "in the region (Azure portal, Quotas), then run again."
                if code and ("QUOTA" in code or "CLOUD_PROVIDER" in code)
                else "See the reason above; fix it and run again: the cluster is kept and started again."
            )
            return StepResult(CLUSTER, name, "failed", detail, code or state, advice)
        if time.monotonic() > deadline:
            return StepResult(
                CLUSTER,
                name,
                "failed",
                f"still {state} after {timeout_s:.0f} s",
                "Timeout",
                "Run again later to resume waiting.",
            )
        time.sleep(poll_s)


def _library_label(library: Library) -> str:
    if library.maven is not None:
        return f"maven {library.maven.coordinates}"
    if library.pypi is not None:
        return f"pypi {library.pypi.package}"
    return str(library.as_dict())


def _ensure_libraries(
    client: WorkspaceClient,
    plan: Plan,
    cluster_id: str,
    props: Mapping[str, Any],
    progress: Progress | None,
    timeout_s: float,
    poll_s: float,
) -> tuple[StepResult | None, str]:
    name = plan.names.databricks_cluster
    wanted = [Library.from_dict(dict(item)) for item in props["libraries"]]
    wanted.extend(Library(pypi=PythonPyPiLibrary(package=pypi_pin(package))) for package in CLUSTER_PYPI)
    labels = [_library_label(library) for library in wanted]
    current = {_library_label(s.library): s.status for s in client.libraries.cluster_status(cluster_id) if s.library}
    # A FAILED library stays FAILED until it is uninstalled, which takes effect when the cluster
    # restarts (Libraries API, uninstall): do that, then install it again.
    failed = [lib for lib in wanted if current.get(_library_label(lib)) == LibraryInstallStatus.FAILED]
    leaving = [lib for lib in wanted if current.get(_library_label(lib)) == LibraryInstallStatus.UNINSTALL_ON_RESTART]
    if failed or leaving:
        if failed:
            listed = ", ".join(map(_library_label, failed))
            report(progress, StepResult(CLUSTER, name, "creating", f"FAILED before: uninstalling {listed}"))
            client.libraries.uninstall(cluster_id, failed)
        report(
            progress,
            StepResult(CLUSTER, name, "creating", "restarting the cluster to remove the libraries (runs on it stop)"),
        )
        client.clusters.restart(cluster_id)
        failure = _wait_running(client, plan, cluster_id, progress, timeout_s, poll_s)
        if failure is not None:
            return failure, ""
        removed = {_library_label(lib) for lib in (*failed, *leaving)}
        current = {label: status for label, status in current.items() if label not in removed}
    missing = [library for library in wanted if _library_label(library) not in current]
    if missing:
        report(progress, StepResult(CLUSTER, name, "creating", "installing " + ", ".join(map(_library_label, missing))))
        client.libraries.install(cluster_id, missing)
    deadline = time.monotonic() + timeout_s
    seen: dict[str, str] = {}
    while True:
        statuses = {_library_label(s.library): s for s in client.libraries.cluster_status(cluster_id) if s.library}
        for label in labels:
            status = statuses.get(label)
            state = _enum(status.status) if status is not None else "MISSING"
            if seen.get(label) != state:
                seen[label] = state or ""
                report(progress, StepResult(CLUSTER, name, "creating", f"library {label}: {state}"))
            if status is not None and status.status == LibraryInstallStatus.FAILED:
                messages = "; ".join(status.messages or []) or "no message"
                detail = f"library {label} FAILED: {messages}"
                advice = (
                    "Check the library's coordinates and the cluster's access to the package repository, "
                    "then run again."
                )
                return StepResult(CLUSTER, name, "failed", detail, "LIBRARY_FAILED", advice), ""
        done = {LibraryInstallStatus.INSTALLED, LibraryInstallStatus.RESTORED}
        if all(label in statuses and statuses[label].status in done for label in labels):
            return None, f"libraries installed: {', '.join(labels)}"
        if time.monotonic() > deadline:
            waiting = ", ".join(f"{label} {seen.get(label)}" for label in labels)
            return StepResult(CLUSTER, name, "failed", f"libraries still not installed: {waiting}", "Timeout", None), ""
        time.sleep(poll_s)


# --- workspace files ------------------------------------------------------------------------------


def upload_files(
    client: WorkspaceClient, folder: str, files: Sequence[tuple[str, bytes]], *, progress: Progress | None = None
) -> StepResult:
    """Upload ``files`` (path relative to ``folder``, content) as workspace files, skipping unchanged ones."""
    folder = folder.rstrip("/")
    uploaded = unchanged = size = 0
    try:
        made: set[str] = set()
        for relative, content in files:
            path = posixpath.join(folder, relative)
            parent = posixpath.dirname(path)
            if parent not in made:
                client.workspace.mkdirs(parent)  # like mkdir -p: no error if it exists
                made.add(parent)
            if _current_content(client, path) == content:
                unchanged += 1
                continue
            report(progress, StepResult(FILES, folder, "creating", f"{relative}: {len(content)} bytes"))
            # AUTO keeps a .py without the notebook header a workspace file (the jobs' python_file).
            client.workspace.import_(
                path,
                content=base64.b64encode(content).decode("ascii"),
                format=ImportFormat.AUTO,
                overwrite=True,
            )
            uploaded += 1
            size += len(content)
    except DatabricksError as exc:
        return _failed(FILES, folder, exc)
    status = "created" if uploaded else "exists"
    return StepResult(FILES, folder, status, f"{uploaded} files, {size} bytes uploaded, {unchanged} unchanged")


def _current_content(client: WorkspaceClient, path: str) -> bytes | None:
    try:
        info = client.workspace.get_status(path)
    except NotFound:
        return None
    if info.object_type != ObjectType.FILE:
        return None  # a notebook or folder by that name: overwrite it
    exported = client.workspace.export(path, format=ExportFormat.AUTO)
    return base64.b64decode(exported.content or "")


# --- secrets --------------------------------------------------------------------------------------


def put_secret(client: WorkspaceClient, scope: str, key: str, value: SecretStr) -> None:
    """Store ``value`` as ``scope``/``key`` (creating the scope if missing); jobs read it through
    ``{{secrets/<scope>/<key>}}`` in the cluster's spark_env_vars."""
    raw = value.get_secret_value()
    try:
        if scope not in {s.name for s in client.secrets.list_scopes()}:
            with contextlib.suppress(ResourceAlreadyExists):  # made by someone else meanwhile: fine
                client.secrets.create_scope(scope)
        client.secrets.put_secret(scope, key, string_value=raw)
    except DatabricksError as exc:
        message = str(exc).replace(raw, "**********") if raw else str(exc)
        raise DatabricksFailure(_code(exc), message) from None


def secret_reference(scope: str, key: str) -> str:
    return "{{secrets/" + scope + "/" + key + "}}"


# --- jobs -----------------------------------------------------------------------------------------


def _job_settings(plan: Plan, name: str, cluster_id: str, python_file: str, parameters: list[str]) -> JobSettings:
    return JobSettings(
        name=name,
        tags={TAG_KEY: plan.config.tag_value},
        max_concurrent_runs=1,
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
            if job.job_id is None or job.settings is None or not _ours(job.settings.tags, plan):
                continue
            current = client.jobs.get(job.job_id).settings
            if current is not None and _comparable(current) == _comparable(wanted):
                return StepResult(JOB, name, "exists", f"job {job.job_id}"), job.job_id
            report(progress, StepResult(JOB, name, "creating", f"job {job.job_id}: settings differ, resetting"))
            client.jobs.reset(job.job_id, wanted)
            return StepResult(JOB, name, "created", f"updated job {job.job_id} (settings reset)"), job.job_id
        report(progress, StepResult(JOB, name, "creating", python_file))
        created = client.jobs.create(
            name=wanted.name,
            tags=wanted.tags,
            max_concurrent_runs=wanted.max_concurrent_runs,
            tasks=wanted.tasks,
        )
    except DatabricksError as exc:
        return _failed(JOB, name, exc), 0
    if created.job_id is None:
        return StepResult(JOB, name, "failed", "jobs/create answered without a job_id", "NO_JOB_ID", None), 0
    return StepResult(JOB, name, "created", f"job {created.job_id}"), created.job_id


# --- runs -----------------------------------------------------------------------------------------


def _status(client: WorkspaceClient, run: Run, *, with_output: bool) -> RunStatus:
    state = run.state
    life = _enum(state.life_cycle_state) if state is not None else None
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
                error = f"output not available: {_code(exc)}: {exc}"
    return RunStatus(
        run_id=run.run_id or 0,
        life_cycle_state=life or "UNKNOWN",
        result_state=_enum(state.result_state) if state is not None else None,
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
        now = (_enum(state.life_cycle_state) if state else None, (state.state_message or "") if state else "")
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
        raise DatabricksFailure(_code(exc), str(exc)) from None


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
        raise DatabricksFailure(_code(exc), str(exc)) from None


def stop_run(client: WorkspaceClient, run_id: int, *, timeout_s: float = 120, poll_s: float = 2) -> RunStatus:
    """Cancel the run and wait until it is TERMINATED (result CANCELED, or how it ended first)."""
    try:
        client.jobs.cancel_run(run_id)
        run, _ = _wait_run(client, run_id, str(run_id), None, timeout_s, poll_s)
        return _status(client, run, with_output=False)
    except DatabricksError as exc:
        raise DatabricksFailure(_code(exc), str(exc)) from None


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
        raise DatabricksFailure(_code(exc), str(exc)) from None

"""The plan's all-purpose Databricks cluster: its Spark is ours (with the runtime's own Kafka source),
and every third-party Python package the jobs import, pinned as locally (PyPI). Found by name and the
plan's tag, created when missing, started when TERMINATED, edited when its environment variables differ."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.compute import (
    ClusterDetails,
    DataSecurityMode,
    Library,
    LibraryInstallStatus,
    PythonPyPiLibrary,
    State,
)

from backend.azure.arm import Progress, StepResult, report
from backend.azure.databricks import enum_text, failed, tagged_for
from backend.azure.plan import Plan

CLUSTER = "databricks.cluster"
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"

# Every third-party package the job bundle imports (bundle.third_party_imports; a test keeps the two equal),
# installed at requirements.txt's pins: Runtime 19 dropped many packages earlier runtimes bundled, and
# what a runtime happens to ship cannot be checked from here.
CLUSTER_PYPI = ("confluent-kafka", "pandas", "psutil", "pydantic", "pydantic-settings", "requests", "vaderSentiment")


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


def _find_cluster(client: WorkspaceClient, plan: Plan) -> ClusterDetails | None:
    for cluster in client.clusters.list():
        if cluster.cluster_name == plan.names.databricks_cluster and tagged_for(cluster.custom_tags, plan):
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
        not_offered = _runtime_not_offered(client, name, props)
        if not_offered is not None:
            return not_offered, None
        existing = _find_cluster(client, plan)
        if existing is not None and existing.cluster_id:
            cluster_id, status = existing.cluster_id, "exists"
            note, failure = _resume(client, plan, existing, props, env, progress, timeout_s, poll_s)
            if failure is not None:
                return failure, cluster_id
        else:
            cluster_id, status, note = _create(client, name, props, env, progress), "created", ""

        failure = _wait_running(client, plan, cluster_id, progress, timeout_s, poll_s)
        if failure is not None:
            return failure, cluster_id
        failure, installed = _ensure_libraries(client, plan, cluster_id, props, progress, timeout_s, poll_s)
        if failure is not None:
            return failure, cluster_id
    except DatabricksError as exc:
        return failed(CLUSTER, name, exc), None
    detail = ", ".join(part for part in (note, f"RUNNING, {cluster_id}", installed) if part)
    return StepResult(CLUSTER, name, status, detail), cluster_id


def _runtime_not_offered(client: WorkspaceClient, name: str, props: Mapping[str, Any]) -> StepResult | None:
    """The failed result when the workspace does not offer the plan's runtime (with the ones it does)."""
    offered = client.clusters.spark_versions().versions or []
    keys = [version.key for version in offered if version.key]
    if props["spark_version"] in keys:
        return None
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
        "Set databricks.runtime in the plan to one the workspace offers with our Spark, or wait until it is offered."
    )
    return StepResult(CLUSTER, name, "failed", detail, "SPARK_VERSION_NOT_OFFERED", advice)


def _resume(
    client: WorkspaceClient,
    plan: Plan,
    existing: ClusterDetails,
    props: Mapping[str, Any],
    env: dict[str, str],
    progress: Progress | None,
    timeout_s: float,
    poll_s: float,
) -> tuple[str, StepResult | None]:
    """Bring an existing cluster to the plan's environment variables and start it if TERMINATED; a note
    on what was done, or the failure."""
    name, cluster_id = plan.names.databricks_cluster, existing.cluster_id or ""
    notes = []
    edit = bool(env) and (existing.spark_env_vars or {}) != env
    # clusters/edit is refused (INVALID_STATE) unless RUNNING or TERMINATED; a TERMINATING
    # cluster can be started once it is TERMINATED.
    settled = {State.RUNNING, State.TERMINATED} if edit else {State.TERMINATED}
    if edit or existing.state == State.TERMINATING:
        existing, failure = _wait_settled(client, plan, existing, settled, progress, timeout_s, poll_s)
        if failure is not None:
            return "", failure
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
    return ", ".join(notes), None


def _create(
    client: WorkspaceClient, name: str, props: Mapping[str, Any], env: dict[str, str], progress: Progress | None
) -> str:
    user = client.current_user.me().user_name
    report(progress, StepResult(CLUSTER, name, "creating", f"{props['spark_version']}, {props['node_type_id']}"))
    created = client.clusters.create(
        spark_version=props["spark_version"],
        cluster_name=name,
        node_type_id=props["node_type_id"],
        driver_node_type_id=props["driver_node_type_id"],
        num_workers=props["num_workers"],
        autotermination_minutes=props["autotermination_minutes"],
        custom_tags=dict(props["custom_tags"]),
        # Single user (dedicated): the Kafka source and full Python are allowed; standard (shared) access
        # mode restricts them. SINGLE_USER is the name every API version takes; DATA_SECURITY_MODE_DEDICATED
        # was refused without kind = CLASSIC_PREVIEW (Clusters API reference, create: kind).
        data_security_mode=DataSecurityMode.SINGLE_USER,
        single_user_name=user,
        spark_env_vars=env or None,
    )
    return created.cluster_id  # type: ignore[return-value]


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
    wanted = " or ".join(sorted(enum_text(state) or "" for state in states))
    deadline = time.monotonic() + timeout_s
    seen = None
    while cluster.state not in states and cluster.state not in (State.TERMINATED, State.ERROR):
        if cluster.state != seen:
            seen = cluster.state
            report(progress, StepResult(CLUSTER, name, "creating", f"{enum_text(seen)}: waiting until {wanted}"))
        if time.monotonic() > deadline:
            detail = f"still {enum_text(cluster.state)} after {timeout_s:.0f} s (waiting until {wanted})"
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
        state = enum_text(cluster.state)
        message = cluster.state_message or ""
        if (state, message) != seen:
            seen = (state, message)
            report(progress, StepResult(CLUSTER, name, "creating", f"{state}: {message}" if message else f"{state}"))
        if cluster.state == State.RUNNING:
            return None
        if cluster.state in (State.TERMINATED, State.ERROR):
            reason = cluster.termination_reason
            code = enum_text(reason.code) if reason is not None else None
            kind = enum_text(reason.type) if reason is not None else None
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


# Final states short of installed: FAILED, and SKIPPED ("Library Manager decided to skip installation").
_NOT_INSTALLED = (LibraryInstallStatus.FAILED, LibraryInstallStatus.SKIPPED)


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
    wanted = [Library(pypi=PythonPyPiLibrary(package=pypi_pin(package))) for package in CLUSTER_PYPI]
    labels = [_library_label(library) for library in wanted]
    current = {_library_label(s.library): s.status for s in client.libraries.cluster_status(cluster_id) if s.library}
    # A FAILED (or SKIPPED) library stays so until it is uninstalled, which takes effect when the
    # cluster restarts (Libraries API, uninstall): do that, then install it again.
    failed = [lib for lib in wanted if current.get(_library_label(lib)) in _NOT_INSTALLED]
    leaving = [lib for lib in wanted if current.get(_library_label(lib)) == LibraryInstallStatus.UNINSTALL_ON_RESTART]
    if failed or leaving:
        if failed:
            listed = ", ".join(map(_library_label, failed))
            report(progress, StepResult(CLUSTER, name, "creating", f"FAILED or SKIPPED before: uninstalling {listed}"))
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
            state = enum_text(status.status) if status is not None else "MISSING"
            if seen.get(label) != state:
                seen[label] = state or ""
                report(progress, StepResult(CLUSTER, name, "creating", f"library {label}: {state}"))
            if status is not None and status.status in _NOT_INSTALLED:
                messages = "; ".join(status.messages or []) or "no message"
                detail = f"library {label} {state}: {messages}"
                advice = (
                    "Check the library's coordinates and the cluster's access to the package repository, "
                    "then run again."
                )
                return StepResult(CLUSTER, name, "failed", detail, f"LIBRARY_{state}", advice), ""
        done = {LibraryInstallStatus.INSTALLED, LibraryInstallStatus.RESTORED}
        if all(label in statuses and statuses[label].status in done for label in labels):
            return None, f"libraries installed: {', '.join(labels)}"
        if time.monotonic() > deadline:
            waiting = ", ".join(f"{label} {seen.get(label)}" for label in labels)
            return StepResult(CLUSTER, name, "failed", f"libraries still not installed: {waiting}", "Timeout", None), ""
        time.sleep(poll_s)

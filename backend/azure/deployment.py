"""What the Azure wizard built, as the console needs it later: the record of one deployment
(``<state dir>/azure/deployment.json``, written atomically after each step that learns something). It
holds no secret.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.settings import Settings

JOB_NAMES = ("producer", "consumer")


@dataclass(frozen=True)
class Deployment:
    subscription: str
    resource_group: str
    tag_value: str
    hdinsight_cluster: str
    topic: str
    gateway_url: str | None = None  # https://CLUSTER.azurehdinsight.net: Ambari
    bootstrap_servers: str | None = None  # the brokers' private IPs, after IP advertising
    workspace_url: str | None = None  # https://adb-….azuredatabricks.net
    workspace_resource_id: str | None = None
    cluster_id: str | None = None  # the Databricks cluster both jobs run on
    files_folder: str | None = None  # the workspace folder holding the job bundle
    jobs: dict[str, int] = field(default_factory=dict)  # "producer" / "consumer" -> Databricks job id
    warehouse_id: str | None = None  # the SQL warehouse the console reads the Delta tables through
    table_prefix: str | None = None  # the consumer's Delta tables: <table_prefix>tweets_per_window...
    updated: str = ""  # ISO 8601 UTC, set when saved

    def with_(self, **changes: Any) -> Deployment:
        return replace(self, **changes)


def deployment_file(state_dir: Path) -> Path:
    return state_dir / "azure" / "deployment.json"


def load_deployment(state_dir: Path) -> Deployment | None:
    """The saved deployment, or None when there is none; ValueError when the file is unreadable."""
    path = deployment_file(state_dir)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["jobs"] = {str(name): int(job) for name, job in (data.get("jobs") or {}).items()}
        return Deployment(**data)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} cannot be read ({error}): run the wizard again to rewrite it") from error


def save_deployment(state_dir: Path, deployment: Deployment) -> Deployment:
    """Write the record atomically, stamped with the time; returns what was written."""
    stamped = replace(deployment, updated=datetime.now(UTC).isoformat(timespec="seconds"))
    path = deployment_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".deployment.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(asdict(stamped), handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return stamped


def forget_deployment(state_dir: Path) -> None:
    """After teardown: nothing is left to point at."""
    deployment_file(state_dir).unlink(missing_ok=True)


def deployment_rows(settings: Settings) -> list[dict[str, str]]:
    """The saved deployment as (what, where) rows for the page; empty when there is none."""
    try:
        deployment = load_deployment(settings.state_dir)
    except ValueError as error:
        return [{"what": "deployment record", "where": str(error)}]
    if deployment is None:
        return []
    rows = [
        ("resource group", f"{deployment.resource_group} (subscription {deployment.subscription})"),
        ("Ambari (cluster gateway)", deployment.gateway_url),
        ("Kafka brokers (private IPs)", deployment.bootstrap_servers),
        ("topic", deployment.topic),
        ("Databricks workspace", deployment.workspace_url),
        ("Databricks cluster", deployment.cluster_id),
        ("job files", deployment.files_folder),
        ("jobs", ", ".join(f"{name} {job}" for name, job in sorted(deployment.jobs.items())) or None),
        ("SQL warehouse (the console's reads)", deployment.warehouse_id),
        ("Delta tables", f"{deployment.table_prefix}*" if deployment.table_prefix else None),
        ("recorded", deployment.updated),
    ]
    return [{"what": what, "where": where or "not yet"} for what, where in rows]

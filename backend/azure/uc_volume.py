"""The Unity Catalog volume that holds the cloud consumer's checkpoint and archive: found, or made with its
schema, in the plan's catalog (the workspace's default catalog unless the plan names one).

Why a volume: the DBFS root and mounts are deprecated and new workspaces have none ("disable legacy
features"); a volume is storage every node shares and that outlives the cluster, as a checkpoint needs.
"""

from __future__ import annotations

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.catalog import VolumeType

from backend.azure.arm import Progress, StepResult, report
from backend.azure.databricks import failed
from backend.azure.plan import Plan
from backend.azure.plan_resources import volume_path

VOLUME = "databricks.volume"
HIVE_METASTORE = "hive_metastore"


def ensure_volume(
    client: WorkspaceClient, plan: Plan, *, progress: Progress | None = None
) -> tuple[StepResult, str | None]:
    """Find or make the plan's schema and MANAGED volume; the step's result and the volume's /Volumes path.

    A rerun only reads (the metastore assignment, the schema, the volume). Errors come back as a failed
    result with Databricks' error code, never raised.
    """
    names = plan.names
    name = f"{names.uc_catalog or '<default catalog>'}.{names.uc_schema}.{names.uc_volume}"
    try:
        catalog = names.uc_catalog or client.metastores.current().default_catalog_name or ""
        if not catalog:
            detail = "NO_DEFAULT_CATALOG: the workspace has no default catalog (is it enabled for Unity Catalog?)"
            advice = "Set databricks.catalog in the plan to a catalog you may create schemas in, then run again."
            return StepResult(VOLUME, name, "failed", detail, "NO_DEFAULT_CATALOG", advice), None
        name = f"{catalog}.{names.uc_schema}.{names.uc_volume}"
        if catalog.lower() == HIVE_METASTORE:  # legacy: Unity Catalog makes no schema or volume there
            detail = (
                f"DEFAULT_CATALOG_IS_HIVE_METASTORE: the workspace's default catalog is {catalog}, the legacy "
                "Hive metastore, which holds no volumes"
            )
            advice = (
                "Set databricks.catalog in the plan to a Unity Catalog catalog you may create schemas in (or make "
                "a Unity Catalog catalog the workspace's default in its admin settings), then run again."
            )
            return StepResult(VOLUME, name, "failed", detail, "DEFAULT_CATALOG_IS_HIVE_METASTORE", advice), None
        made = []
        try:
            client.schemas.get(f"{catalog}.{names.uc_schema}")
        except NotFound:
            report(progress, StepResult(VOLUME, name, "creating", f"schema {catalog}.{names.uc_schema}"))
            client.schemas.create(names.uc_schema, catalog, comment=f"tweetstream {plan.config.tag_value}")
            made.append("schema")
        try:
            client.volumes.read(name)
        except NotFound:
            report(progress, StepResult(VOLUME, name, "creating", "MANAGED volume"))
            client.volumes.create(catalog, names.uc_schema, names.uc_volume, VolumeType.MANAGED)
            made.append("volume")
    except DatabricksError as exc:
        advice = (
            "The identity needs USE CATALOG and CREATE SCHEMA on the catalog (or set databricks.catalog and "
            "databricks.schema_name in the plan to ones it may use), then run again."
        )
        return failed(VOLUME, name, exc, advice), None
    path = volume_path(catalog, names)
    detail = path + (f" ({' and '.join(made)} made)" if made else "")
    return StepResult(VOLUME, name, "created" if made else "exists", detail), path

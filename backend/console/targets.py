"""Where the console reads its numbers: the implementations of the store and Kafka metrics for the active profile.

Pages ask this module for an ``AggregatesReader`` and a ``KafkaMetrics`` and never learn which they got:

| ``pipeline_target`` | aggregates                                           | Kafka metrics                       |
|---------------------|------------------------------------------------------|-------------------------------------|
| ``local``           | the SQLite store in the state directory              | the Kafka admin client               |
| ``azure``           | the Delta tables, through the wizard's SQL warehouse | Ambari on the HDInsight gateway, and |
|                     |                                                      | end offsets the Spark job samples    |

A banner on the pages says which (``Target.source``) and how old the numbers are.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backend.aggregates.interfaces import AggregatesReader
from backend.aggregates.sqlite_store import AggregatesStore, default_store_path
from backend.settings import Settings
from backend.settings_file import save_pipeline_target  # noqa: F401  (the Setup page saves it through here)

if TYPE_CHECKING:
    from backend.azure.deployment import Deployment
    from backend.kafka.metrics import KafkaMetrics


class TargetError(RuntimeError):
    """The active profile's target cannot be read from (what is missing, and what to do)."""


@dataclass(frozen=True)
class Target:
    name: str  # "local" or "azure"
    title: str  # for the banner: "this machine", "Azure (HDInsight Kafka, Databricks)"
    source: str  # where the aggregates come from, in words
    reader: AggregatesReader

    @property
    def is_cloud(self) -> bool:
        return self.name == "azure"


def azure_deployment(settings: Settings) -> Deployment:
    """The wizard's deployment record, complete enough to read from; TargetError says what is missing."""
    from backend.azure.cloud_jobs import cloud_deployment

    deployment = cloud_deployment(settings)
    if deployment is None:
        raise TargetError(
            "the profile's pipeline target is Azure, but the Azure wizard has not built the jobs yet: build them "
            "on the Setup page (5. Azure), or set the target back to this machine there"
        )
    missing = [
        what
        for what, value in (
            ("the SQL warehouse", deployment.warehouse_id),
            ("the Delta tables' prefix", deployment.table_prefix),
            ("the HDInsight gateway", deployment.gateway_url),
        )
        if not value
    ]
    if missing:
        raise TargetError(
            f"the Azure deployment record has no {' and no '.join(missing)}: run the wizard's build again on the "
            "Setup page (a rerun only adds what is missing)"
        )
    return deployment


def target_key(settings: Settings) -> tuple[str, ...]:
    """What makes two targets' readers and monitors different: the target, the deployment it reads and the
    identities it reads with (as a digest: a corrected password or secret gets new clients; never shown)."""
    if settings.pipeline_target != "azure":
        return ("local",)
    from backend.azure.cloud_jobs import cloud_deployment

    deployment = cloud_deployment(settings)
    secrets = [settings.azure_hdinsight_password, settings.azure_client_secret]
    digest = hashlib.sha256("\0".join(s.get_secret_value() if s else "" for s in secrets).encode()).hexdigest()
    if deployment is None:
        return ("azure", "no deployment", digest)
    return (
        "azure",
        str(deployment.workspace_url),
        str(deployment.warehouse_id),
        str(deployment.table_prefix),
        str(deployment.gateway_url),
        deployment.hdinsight_cluster,
        deployment.topic,
        str(settings.azure_client_id),
        digest,
    )


_readers: dict[tuple[str, ...], AggregatesReader] = {}
_readers_lock = threading.Lock()


def active_target(settings: Settings) -> Target:
    """The aggregates reader of the active profile; raises TargetError when the Azure target is not ready."""
    if settings.pipeline_target != "azure":
        path = default_store_path(settings.state_dir)
        return Target("local", "this machine", f"the SQLite store {path}", AggregatesStore(path))
    deployment = azure_deployment(settings)
    assert deployment.warehouse_id is not None and deployment.table_prefix is not None
    key = target_key(settings)
    with _readers_lock:
        reader = _readers.get(key)
        if reader is None:
            _readers.clear()  # one reader at a time: the current deployment's, with the current identity
            # One reader per warehouse and tables: its cache then spares the warehouse the same statement
            # from every tab and redraw.
            from backend.aggregates.warehouse_reader import SqlAggregatesReader
            from backend.azure.cloud_jobs import workspace_client
            from backend.azure.warehouse import WarehouseStatementRunner

            runner = WarehouseStatementRunner(workspace_client(settings, deployment), deployment.warehouse_id)
            try:
                reader = _readers[key] = SqlAggregatesReader(runner, deployment.table_prefix)
            except ValueError as error:  # a table prefix the record holds that makes no table name
                raise TargetError(f"the deployment record's Delta table prefix cannot be used: {error}") from error
    return Target(
        "azure",
        "Azure (HDInsight Kafka, Databricks)",
        f"the Delta tables {deployment.table_prefix}* through SQL warehouse {deployment.warehouse_id} "
        f"of {deployment.workspace_url}",
        reader,
    )


def kafka_metrics(settings: Settings) -> KafkaMetrics:
    """Kafka's throughput and offsets for the active profile: the admin client, or Ambari on Azure."""
    from backend.kafka.metrics import AdminClientMetrics

    if settings.pipeline_target != "azure":
        return AdminClientMetrics(settings)
    deployment = azure_deployment(settings)
    if settings.azure_hdinsight_password is None:
        raise TargetError(
            "the HDInsight cluster login (azure_hdinsight_password) is not in the settings: Ambari's metrics need "
            "it; set it in the secrets file the wizard wrote, or run the wizard's build again"
        )
    from backend.azure.ambari import Ambari
    from backend.azure.ambari_metrics import AmbariKafkaMetrics
    from backend.azure.hdinsight import ClusterLogins

    target = active_target(settings)
    reader = target.reader
    assert deployment.gateway_url is not None
    verify: str | bool = str(settings.azure_ca_bundle) if settings.azure_ca_bundle is not None else True
    ambari = Ambari(
        deployment.gateway_url,
        deployment.hdinsight_cluster,
        ClusterLogins.gateway_user,
        settings.azure_hdinsight_password,
        verify=verify,
        timeout_s=5,
    )

    def offsets() -> tuple[float | None, dict[str, dict[int, tuple[int, int]]]]:
        # The end offsets the Spark job samples on Databricks (the console cannot reach the brokers).
        sampled_at, partitions = reader.latest_topic_offsets(deployment.topic)  # type: ignore[attr-defined]
        return sampled_at, {deployment.topic: partitions} if partitions else {}

    return AmbariKafkaMetrics(ambari, offsets=offsets)

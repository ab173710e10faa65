"""Where the console reads its numbers and runs its jobs: the parts of the active profile's pipeline target.

Pages ask ``active_target`` for a ``Target`` and draw what it hands them (``local``: the SQLite store, Kafka's admin
client, local processes; ``azure``: the Delta tables through the SQL warehouse, Ambari and sampled end offsets,
Databricks runs). A ``Description`` says what pages show about a target; it needs the settings only.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backend.aggregates.interfaces import AggregatesReader
from backend.aggregates.sqlite_store import AggregatesStore, default_store_path
from backend.console import monitor as live
from backend.console import views
from backend.console.job_controls import DatabricksJobControls, JobControls, LocalJobControls
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.azure.deployment import Deployment
    from backend.kafka.metrics import KafkaMetrics

IDLE_AFTER_S = 60.0  # on Azure, the monitor stops reading a minute after the last page redraw


class TargetError(RuntimeError):
    """The active profile's target cannot be read from (what is missing, and what to do)."""


@dataclass(frozen=True)
class Description:
    """What the pages say about a target: known from the settings alone."""

    name: str  # "local" or "azure"
    title: str  # for the banner: "this machine", "Azure (HDInsight Kafka, Databricks)"
    icon: str  # the banner's
    kafka_heading: str  # the sidebar's
    kafka_via_gateway: bool  # Kafka is read through a gateway's metrics (Ambari), not the brokers themselves
    topics_caption: str  # the Topics page's: how its figures are read
    no_topics: str  # the Topics page's, while no topic is known
    browser_unavailable: str | None  # why the Topics page cannot read messages (None: it can)
    overview_note: str | None  # the Overview page's word on the target (None: nothing to say)

    def kafka_status(self, snapshot: live.Snapshot) -> tuple[bool, str]:
        """Whether Kafka answers, and the sidebar's line saying so."""
        if not self.kafka_via_gateway:
            return views.kafka_line(snapshot)
        ok = snapshot.kafka.reachable
        error = snapshot.kafka.error
        return ok, snapshot.source if ok else (views.markdown_text(error) if error else "not reachable")


AZURE = Description(
    name="azure",
    title="Azure (HDInsight Kafka, Databricks)",
    icon=":material/cloud:",
    kafka_heading="Kafka (HDInsight)",
    kafka_via_gateway=True,
    topics_caption=(
        "Kafka on HDInsight, through Ambari's metrics on the cluster's gateway and the offsets the Spark job samples "
        "(the brokers sit in a private network this console does not reach)."
    ),
    no_topics="No topic offsets yet: the Spark job on Databricks samples them every 10 s while it runs.",
    browser_unavailable=(
        "Reading messages needs a Kafka connection to the brokers, and HDInsight's brokers sit in a private network "
        "this console does not reach. Read them from a notebook on the Databricks cluster (its network is peered "
        "with Kafka's), or set the pipeline target to this machine on the Setup page."
    ),
    overview_note=(
        "The pipeline target is **Azure**: the Producer, Consumer and Topics pages show the jobs on Databricks, "
        "the Delta tables read through the SQL warehouse, and Kafka's metrics from Ambari (change it on the Setup "
        "page, 5. Azure)."
    ),
)


def description(settings: Settings) -> Description:
    """What the pages say about the active profile's target (whether or not it can be read)."""
    if settings.pipeline_target == "azure":
        return AZURE
    return Description(
        name="local",
        title="this machine",
        icon=":material/computer:",
        kafka_heading="Kafka broker",
        kafka_via_gateway=False,
        topics_caption=f"Kafka at `{settings.bootstrap}`. Rates are high-watermark deltas, sampled every second.",
        no_topics="No topics yet: create one on the Setup page, or start the producer with 'create the topic'.",
        browser_unavailable=None,
        overview_note=None,
    )


@dataclass(frozen=True)
class Target:
    """The parts of the pipeline target the pages are handed."""

    description: Description
    source: str  # where the aggregates come from, in words
    reader: AggregatesReader
    controls: JobControls  # the target's jobs: processes here, or runs on Databricks
    idle_after_s: float | None  # the monitor stops reading after this long unviewed (billed reads); None: never

    @property
    def title(self) -> str:
        return self.description.title


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
    if deployment is None:
        return ("azure", "no deployment", _secrets_digest(settings))
    return _deployment_key(settings, deployment)


def _secrets_digest(settings: Settings) -> str:
    secrets = [settings.azure_hdinsight_password, settings.azure_client_secret]
    return hashlib.sha256("\0".join(s.get_secret_value() if s else "" for s in secrets).encode()).hexdigest()


def _deployment_key(settings: Settings, deployment: Deployment) -> tuple[str, ...]:
    return (
        "azure",
        str(deployment.workspace_url),
        str(deployment.warehouse_id),
        str(deployment.table_prefix),
        str(deployment.gateway_url),
        deployment.hdinsight_cluster,
        deployment.topic,
        str(settings.azure_client_id),
        _secrets_digest(settings),
    )


_readers: dict[tuple[str, ...], AggregatesReader] = {}
_readers_lock = threading.Lock()


def active_target(settings: Settings) -> Target:
    """The parts of the active profile's target; raises TargetError when the Azure target is not ready."""
    if settings.pipeline_target != "azure":
        path = default_store_path(settings.state_dir)
        return Target(
            description(settings),
            f"the SQLite store {path}",
            AggregatesStore(path),
            LocalJobControls(settings.state_dir),
            idle_after_s=None,
        )
    deployment = azure_deployment(settings)
    key = _deployment_key(settings, deployment)
    return Target(
        AZURE,
        f"the Delta tables {deployment.table_prefix}* through SQL warehouse {deployment.warehouse_id} "
        f"of {deployment.workspace_url}",
        _warehouse_reader(settings, deployment, key),
        DatabricksJobControls(settings, deployment, key),
        # Each read is a SQL warehouse statement: none while no page is open, so the warehouse can stop.
        idle_after_s=IDLE_AFTER_S,
    )


def databricks_controls(settings: Settings) -> DatabricksJobControls | None:
    """The Azure wizard's jobs on Databricks, when it has made them (on either target): the Producer and
    Consumer pages' Databricks panel. Apart from the target, so the sidebar's redraws never read the record."""
    from backend.azure.cloud_jobs import cloud_deployment

    deployment = cloud_deployment(settings)
    if deployment is None:
        return None
    return DatabricksJobControls(settings, deployment, _deployment_key(settings, deployment))


def _warehouse_reader(settings: Settings, deployment: Deployment, key: tuple[str, ...]) -> AggregatesReader:
    """One reader per warehouse and tables (``key``: the deployment and identity): its cache then spares the
    warehouse the same statement from every tab and redraw."""
    assert deployment.warehouse_id is not None and deployment.table_prefix is not None
    with _readers_lock:
        reader = _readers.get(key)
        if reader is None:
            _readers.clear()  # one reader at a time: the current deployment's, with the current identity
            from backend.aggregates.warehouse_reader import SqlAggregatesReader
            from backend.azure.cloud_jobs import workspace_client
            from backend.azure.warehouse import WarehouseStatementRunner

            runner = WarehouseStatementRunner(workspace_client(settings, deployment), deployment.warehouse_id)
            try:
                reader = _readers[key] = SqlAggregatesReader(runner, deployment.table_prefix)
            except ValueError as error:  # a table prefix the record holds that makes no table name
                raise TargetError(f"the deployment record's Delta table prefix cannot be used: {error}") from error
    return reader


def kafka_metrics(settings: Settings, reader: AggregatesReader | None = None) -> KafkaMetrics:
    """Kafka's throughput and offsets for the active profile: the admin client, or Ambari on Azure (with the end
    offsets the Spark job samples, read through ``reader``, by default the target's)."""
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

    if reader is None:
        reader = active_target(settings).reader
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


def open_monitor(settings: Settings) -> live.Monitor:
    """A monitor of the active profile's Kafka and Spark job progress, read the target's way; raises TargetError."""
    target = active_target(settings)
    return live.Monitor(
        settings,
        metrics=kafka_metrics(settings, target.reader),
        progress=target.reader.latest_progress,
        idle_after_s=target.idle_after_s,
    )


def monitor_key(settings: Settings) -> tuple[str, ...]:
    """What makes two monitors different: the cluster and state directory, and the target they read."""
    return (*live.monitor_key(settings), *target_key(settings))


def on_this_machine(settings: Settings) -> Settings:
    """The same profile with the pipeline target set to this machine (the Setup page watches it while the Azure
    target cannot be read)."""
    return settings.model_copy(update={"pipeline_target": "local"})

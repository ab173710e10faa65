"""What the Setup page's Azure section calls (no Streamlit here), and the whole build: every step of the
plan in order (``build``), each resuming what an earlier run left, with every failure as a result that
says what to do. What it learns is saved in deployment.json as it goes; the steps are listed in
docs/azure.md ("The wizard's steps"), why they work so in docs/azure-design.md ("The build").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential

from backend.azure import (
    access,
    ambari,
    bundle,
    hdinsight,
    provision,
    workspace,
)
from backend.azure.arm import StepResult, advice_for
from backend.azure.cluster_logins import LoginsMissing, cluster_logins, logins_missing, save_logins
from backend.azure.credentials import (
    client_options,
    credential_from,
    effective_plan,
    service_principal_set,
    subscription,
)
from backend.azure.deployment import Deployment, deployment_rows, load_deployment, save_deployment
from backend.azure.plan import Plan
from backend.azure.plan_view import (
    EXAMPLE_PLAN,
    PlanError,
    config_defaults,
    load_plan_config,
    plan_rows,
    priced_regions,
)
from backend.azure.sign_in import sign_in_check
from backend.azure.teardown import data_going, find_tagged, teardown
from backend.azure.wizard_guard import BuildRunning, build_lock, build_running, log_unless_expected, unexpected
from backend.options.consumer import CONSUMER
from backend.options.create_topic import CREATE_TOPIC
from backend.options.producer import PRODUCER
from backend.settings import Settings

# What the Setup page calls, from the modules that hold it.
__all__ = [
    "BUILD_STEPS",
    "EXAMPLE_PLAN",
    "STEP_NUMBER",
    "PlanError",
    "StepResult",
    "build",
    "build_lock",
    "config_defaults",
    "data_going",
    "deployment_rows",
    "effective_plan",
    "find_tagged",
    "load_plan_config",
    "plan_rows",
    "priced_regions",
    "service_principal_set",
    "sign_in_check",
    "subscription",
    "teardown",
    "workspace_folder",
]


# --- the whole build ------------------------------------------------------------------------------

SECRET_SCOPE = "tweetstream"
X_TOKEN_KEY = "x-bearer-token"
CLUSTER_STATE_DIR = "/local_disk0/tweetstream"  # the driver's local disk: the jobs' status files


def workspace_folder(plan: Plan) -> str:
    """Where the job bundle lives in the Databricks workspace (one folder per plan tag)."""
    return f"/Workspace/Shared/tweetstream-{plan.config.tag_value}"


def cloud_paths(plan: Plan, volume: str) -> dict[str, str]:
    """Where the jobs keep their state on Databricks.

    The checkpoint and the archive in the plan's Unity Catalog volume (``volume``, a /Volumes path; not the
    DBFS root, which new workspaces lack): the streaming state is written by the executors, so it must be
    on storage every node shares, and both outlive the cluster. The aggregates go to Delta tables (managed
    tables named with the plan's table prefix, which outlive the cluster too); only the status files sit
    on the driver's local disk, which a cluster restart empties.
    """
    root = f"{volume}/{plan.config.tag_value}"
    local = CLUSTER_STATE_DIR
    return {
        "state_dir": local,
        "checkpoint": f"{root}/checkpoint",
        "archive": f"{root}/archive",
        "producer_status": f"{local}/producer-status.json",
        "consumer_status": f"{local}/consumer-status.json",
    }


def job_parameters(plan: Plan, bootstrap: str, volume: str) -> dict[str, list[str]]:
    """The arguments each cloud job runs with (the same CLIs as locally, through the bundle's launcher)."""
    paths, kafka = cloud_paths(plan, volume), {"bootstrap": bootstrap, "topic": plan.names.topic}
    producer = {**kafka, "source": "synthetic", "rate": 100.0, "status_file": paths["producer_status"]}
    consumer = {
        **kafka,
        "checkpoint": paths["checkpoint"],
        "archive": paths["archive"],
        # Delta tables the console reads through the SQL warehouse (a SQLite file on the driver
        # would be lost with the cluster and unreadable from the console).
        "sink": "delta",
        "table_prefix": plan.names.table_prefix,
        "status_file": paths["consumer_status"],
        # The job's trigger before issue 17 (now 2 s, the console's): each batch commits to every Delta table.
        "trigger": "5 seconds",
    }
    return {
        "producer": bundle.launcher_parameters("jobs.producer", PRODUCER.argv(producer)),
        "consumer": bundle.launcher_parameters("jobs.consumer", CONSUMER.argv(consumer)),
    }


def build(plan: Plan, settings: Settings, progress: Callable[[StepResult], None] | None = None) -> list[StepResult]:
    """Every step of the plan in order (see the module docstring); stops at the first failure.

    Returns the results of the steps reached (progress lines go to ``progress`` only); a rerun
    resumes. Failures come back as results with ARM's (or Ambari's, or Databricks') code and what to do.
    """
    results: list[StepResult] = []
    reported: set[StepResult] = set()  # final results the steps' own progress already showed

    def report(result: StepResult) -> None:
        if result in reported:
            return
        if result.status not in ("creating", "deleting"):
            reported.add(result)
        if progress is not None:
            progress(result)

    def done(result: StepResult) -> bool:
        """Record a step's final result (reported unless the step's own progress did); True: go on."""
        results.append(result)
        report(result)
        return result.status != "failed"

    try:
        plan = effective_plan(plan, settings)
        with build_lock(settings):
            _build(_Run.start(plan, settings, report, done))
    except BuildRunning:
        done(build_running(plan))
    except Exception as exc:  # e.g. DefaultAzureCredential finding no identity: a result with what to do
        log_unless_expected(exc)
        done(unexpected(plan, exc))
    return results


@dataclass
class _Run:
    """One build: the plan, where its calls go, how it reports, and the deployment record so far."""

    plan: Plan
    settings: Settings
    report: Callable[[StepResult], None]  # a progress line (or a step's final result its progress showed)
    done: Callable[[StepResult], bool]  # a step's final result; False: stop
    credential: TokenCredential
    sub: str
    options: dict[str, Any]
    poll_s: float
    deployment: Deployment

    @classmethod
    def start(
        cls,
        plan: Plan,
        settings: Settings,
        report: Callable[[StepResult], None],
        done: Callable[[StepResult], bool],
    ) -> _Run:
        sub = subscription(settings, plan)
        poll_s = min(settings.azure_polling_interval_s, 10.0)
        names = plan.names
        placeholder = Deployment(sub, names.resource_group, plan.config.tag_value, names.hdinsight_cluster, names.topic)
        return cls(
            plan, settings, report, done, credential_from(settings), sub, client_options(settings), poll_s, placeholder
        )

    @property
    def ca_bundle(self) -> str | None:
        return str(self.settings.azure_ca_bundle) if self.settings.azure_ca_bundle is not None else None

    def save(self, **changes: Any) -> None:
        """Record what a step learnt in deployment.json."""
        self.deployment = save_deployment(self.settings.state_dir, self.deployment.with_(**changes))


def _build(run: _Run) -> None:
    """The steps in order, each only after the one before succeeded."""
    from backend.azure import databricks  # databricks.sdk: imported when a build runs

    if not _check_access(run) or not _logins_acceptable(run) or not _provision(run):
        return
    run.deployment = _deployment_record(run)
    cluster = _hdinsight_cluster(run)  # 3
    info = None if cluster is None else _databricks_workspace(run)  # 4
    if cluster is None or info is None:
        return
    gateway, logins = cluster
    bootstrap = _kafka_through_ambari(run, gateway, logins)  # 5
    if bootstrap is None or not _peerings(run):  # 6
        return
    client = databricks.workspace_client(info.url, run.credential, info.resource_id, ca_bundle=run.ca_bundle)
    cluster_id = _databricks_cluster(run, client)  # 7
    if cluster_id is None:
        return
    launcher = _job_bundle(run, client)  # 8
    if launcher is None:
        return
    if not run.done(_create_topic(run.plan, client, cluster_id, launcher, bootstrap, run.report, run.poll_s)):  # 9
        return
    volume = _volume(run, client)  # 10
    if volume is None or not _jobs(run, client, cluster_id, launcher, bootstrap, volume):  # 11
        return
    result, warehouse_id = _ensure_warehouse(run.plan, client, run.report)  # 12
    if run.done(result) and warehouse_id is not None:
        run.save(warehouse_id=warehouse_id, table_prefix=run.plan.names.table_prefix)


def _check_access(run: _Run) -> bool:
    """1. May this identity do it, here?"""
    plan, config = run.plan, run.plan.config
    run.report(StepResult("access", run.sub, "creating", "checking the identity's permissions and the region"))
    allowed = access.check_access(plan, run.credential, run.sub, client_options=run.options)
    if not allowed.ok:
        return run.done(
            StepResult(
                "access",
                allowed.scope,
                "failed",
                "missing permissions: " + ", ".join(allowed.missing),
                "AuthorizationFailed",
                advice_for("AuthorizationFailed", plan, "these resources"),
            )
        )
    problems = access.check_region(plan, run.credential, run.sub, client_options=run.options)
    if problems:
        return run.done(
            StepResult("region", config.region, "failed", "; ".join(problems), "RegionNotOffered", problems[-1])
        )
    return run.done(StepResult("access", allowed.scope, "exists", f"may create everything in region {config.region}"))


def _logins_acceptable(run: _Run) -> bool:
    """Cluster logins set in the settings that HDInsight would refuse stop the build before anything is made
    (not only at step 3, after the network and storage). New random ones meet the rules; a cluster that
    exists keeps its own."""
    settings, plan = run.settings, run.plan
    if settings.azure_hdinsight_password is None and settings.azure_hdinsight_ssh_password is None:
        return True
    if hdinsight.our_cluster_exists(plan, run.credential, run.sub, client_options=run.options):
        return True
    logins, _ = cluster_logins(settings, cluster_exists=False)
    problems = hdinsight.login_problems(logins)
    if not problems:
        return True
    advice = (
        "Change azure_hdinsight_password / azure_hdinsight_ssh_password in the secrets file to meet HDInsight's "
        "rules (or remove them: the build then makes random ones), then run again. Nothing was created."
    )
    detail = "InvalidClusterLogin: " + "; ".join(problems)
    name = plan.names.hdinsight_cluster
    return run.done(StepResult(hdinsight.HDINSIGHT_CLUSTER, name, "failed", detail, "InvalidClusterLogin", advice))


def _provision(run: _Run) -> bool:
    """2. Resource group, Kafka network, storage account."""
    for result in provision.provision(
        run.plan, run.credential, run.sub, client_options=run.options, progress=run.report
    ):
        if result.status not in ("creating", "deleting") and not run.done(result):
            return False
    return True


def _deployment_record(run: _Run) -> Deployment:
    """The record of an earlier build of this resource group (a fresh one otherwise), with this plan's names."""
    names, config = run.plan.names, run.plan.config
    try:
        deployment = load_deployment(run.settings.state_dir)
    except ValueError:
        deployment = None  # unreadable: this build writes it anew
    if deployment is None or (deployment.resource_group, deployment.subscription) != (names.resource_group, run.sub):
        deployment = run.deployment
    return deployment.with_(
        subscription=run.sub, tag_value=config.tag_value, hdinsight_cluster=names.hdinsight_cluster, topic=names.topic
    )


def _hdinsight_cluster(run: _Run) -> tuple[str, hdinsight.ClusterLogins] | None:
    """3. The HDInsight Kafka cluster, with logins saved before they are used; its gateway and logins."""
    plan, names = run.plan, run.plan.names
    options = run.options
    try:
        exists = hdinsight.our_cluster_exists(plan, run.credential, run.sub, client_options=options)
        logins, to_save = cluster_logins(run.settings, exists)
    except LoginsMissing:
        run.done(logins_missing(plan))
        return None
    save_logins(to_save)
    cluster = hdinsight.ensure_kafka_cluster(
        plan, run.credential, run.sub, logins, client_options=options, progress=run.report
    )
    if not run.done(cluster):
        return None
    try:
        gateway = hdinsight.cluster_gateway(plan, run.credential, run.sub, client_options=options)
    except hdinsight.ClusterNotReady as exc:
        run.done(
            StepResult(
                hdinsight.HDINSIGHT_CLUSTER,
                names.hdinsight_cluster,
                "failed",
                f"ClusterNotReady: {exc}",
                "ClusterNotReady",
                "Run again once the cluster is Running (its HTTPS gateway is listed then).",
            )
        )
        return None
    run.save(gateway_url=gateway)
    return gateway, logins


def _databricks_workspace(run: _Run) -> workspace.WorkspaceInfo | None:
    """4. The Databricks workspace."""
    result, info = workspace.ensure_workspace(
        run.plan, run.credential, run.sub, client_options=run.options, progress=run.report
    )
    if not run.done(result) or info is None:
        return None
    run.save(workspace_url=info.url, workspace_resource_id=info.resource_id)
    return info


def _kafka_through_ambari(run: _Run, gateway: str, logins: hdinsight.ClusterLogins) -> str | None:
    """5. Kafka through Ambari: hosts, IP advertising, restart; the brokers' bootstrap servers."""
    verify: str | bool = run.ca_bundle if run.ca_bundle is not None else True
    client = ambari.Ambari(
        gateway, run.plan.names.hdinsight_cluster, logins.gateway_user, logins.gateway_password, verify=verify
    )
    kafka_results, bootstrap = ambari.setup_kafka(client, run.report, poll_s=run.poll_s)
    if not all(run.done(r) for r in kafka_results) or not bootstrap:
        return None
    run.save(bootstrap_servers=bootstrap)
    return bootstrap


def _peerings(run: _Run) -> bool:
    """6. The two peerings, until both say Connected."""
    for result in workspace.ensure_peerings(
        run.plan, run.credential, run.sub, client_options=run.options, progress=run.report, poll_s=run.poll_s
    ):
        if not run.done(result):
            return False
    return True


def _databricks_cluster(run: _Run, client: Any) -> str | None:
    """7. The Databricks cluster and its libraries; the jobs' state on the driver's disk, the X token
    (if set) from a secret scope, never a parameter."""
    from backend.azure import databricks, databricks_cluster  # databricks.sdk: imported when a build runs

    plan, settings = run.plan, run.settings
    cluster_env = {"TWEETSTREAM_STATE_DIR": CLUSTER_STATE_DIR}
    if settings.x_bearer_token is not None:
        secret = f"{SECRET_SCOPE}/{X_TOKEN_KEY}"
        try:
            databricks.put_secret(client, SECRET_SCOPE, X_TOKEN_KEY, settings.x_bearer_token)
        except databricks.DatabricksFailure as exc:
            run.done(StepResult("databricks.secret", secret, "failed", str(exc), exc.error_code))
            return None
        run.done(StepResult("databricks.secret", secret, "created", "the X bearer token (written each build)"))
        cluster_env["X_BEARER_TOKEN"] = databricks.secret_reference(SECRET_SCOPE, X_TOKEN_KEY)
    result, cluster_id = databricks_cluster.ensure_cluster(
        client, plan, progress=run.report, poll_s=run.poll_s, spark_env_vars=cluster_env
    )
    if not run.done(result) or cluster_id is None:
        return None
    run.save(cluster_id=cluster_id)
    return cluster_id


def _job_bundle(run: _Run, client: Any) -> str | None:
    """8. The job bundle uploaded to the workspace; the launcher's path."""
    from backend.azure import databricks  # databricks.sdk: imported when a build runs

    folder = workspace_folder(run.plan)
    files = [(item.path, item.content) for item in bundle.job_bundle()]
    if not run.done(databricks.upload_files(client, folder, files, progress=run.report)):
        return None
    run.save(files_folder=folder)
    return f"{folder}/{bundle.LAUNCHER}"


def _volume(run: _Run, client: Any) -> str | None:
    """10. The Unity Catalog volume for the consumer's checkpoint and archive; its /Volumes path."""
    from backend.azure import uc_volume  # databricks.sdk: imported when a build runs

    result, path = uc_volume.ensure_volume(client, run.plan, progress=run.report)
    return path if run.done(result) else None


def _jobs(run: _Run, client: Any, cluster_id: str, launcher: str, bootstrap: str, volume: str) -> bool:
    """11. The producer and consumer jobs."""
    from backend.azure import databricks_jobs  # databricks.sdk: imported when a build runs

    jobs: dict[str, int] = {}
    for name, parameters in job_parameters(run.plan, bootstrap, volume).items():
        result, job_id = databricks_jobs.ensure_job(
            client,
            run.plan,
            f"tweetstream-{name}",
            cluster_id=cluster_id,
            python_file=launcher,
            parameters=parameters,
            progress=run.report,
        )
        if not run.done(result):
            return False
        jobs[name] = job_id
    run.save(jobs=jobs)
    return True


def _ensure_warehouse(plan: Plan, client: Any, report: Callable[[StepResult], None]) -> tuple[StepResult, str | None]:
    from backend.azure import warehouse

    name = plan.names.databricks_warehouse
    size = plan.config.databricks.warehouse_size
    report(
        StepResult("databricks.sql_warehouse", name, "creating", f"finding it, else creating it: serverless, {size}")
    )
    try:
        warehouse_id, outcome = warehouse.ensure_warehouse(
            client,
            name,
            cluster_size=size,
            auto_stop_mins=plan.config.databricks.warehouse_auto_stop_minutes,
            tag_value=plan.config.tag_value,
        )
    except Exception as exc:  # the SDK's errors carry the REST error code
        log_unless_expected(exc)
        return (
            StepResult(
                "databricks.sql_warehouse",
                name,
                "failed",
                str(exc),
                getattr(exc, "error_code", None) or type(exc).__name__,
                "Check that the workspace may create serverless SQL warehouses (Premium tier, serverless enabled "
                "in the account), then run again.",
            ),
            None,
        )
    detail = (
        f"id {warehouse_id}, serverless {size}, stops after {plan.config.databricks.warehouse_auto_stop_minutes} idle "
        f"minutes; the console reads {plan.names.table_prefix}* through it"
    )
    return StepResult("databricks.sql_warehouse", name, outcome, detail), warehouse_id


def _create_topic(
    plan: Plan,
    client: Any,
    cluster_id: str,
    launcher: str,
    bootstrap: str,
    report: Callable[[StepResult], None],
    poll_s: float,
) -> StepResult:
    from backend.azure import databricks, databricks_jobs  # databricks.sdk: imported when a build runs

    kafka = plan.config.kafka
    arguments = CREATE_TOPIC.argv(
        {
            "bootstrap_servers": bootstrap,
            "topic": plan.names.topic,
            "partitions": kafka.partitions,
            "replication": kafka.replication,
        }
    )
    report(StepResult("kafka.topic", plan.names.topic, "creating", f"a one-off run on cluster {cluster_id}"))
    try:
        status = databricks_jobs.run_once(
            client,
            cluster_id=cluster_id,
            python_file=launcher,
            parameters=bundle.launcher_parameters("jobs.create_topic", arguments),
            run_name=f"tweetstream: create topic {plan.names.topic}",
            progress=report,
            poll_s=poll_s,
        )
    except databricks.DatabricksFailure as exc:
        return StepResult(
            "kafka.topic",
            plan.names.topic,
            "failed",
            str(exc),
            exc.error_code,
            "Run again; if it fails again, check the Databricks cluster's state in the workspace.",
        )
    outcome = _topic_outcome(status.logs_tail)
    if outcome is not None and outcome.get("outcome") == "error":
        kind = outcome.get("kind")
        code, advice = {
            "refused": (
                "TopicRefused",
                "Change the plan's [kafka] section (partitions, replication at most the number of brokers) and run "
                "again.",
            ),
            "unreached": (
                "KafkaNotReached",
                "The brokers did not answer from the Databricks cluster: check that both peerings say Connected, "
                "that IP advertising is configured (the Ambari steps above) and that no network security group "
                "blocks port 9092; then run again.",
            ),
        }.get(str(kind), ("TopicFailed", "Read the error above and the run's output in Databricks, then run again."))
        return StepResult(
            "kafka.topic", plan.names.topic, "failed", f"run {status.run_id}: {outcome.get('error')}", code, advice
        )
    if status.result_state == "SUCCESS" and outcome is not None:
        state = "exists" if outcome.get("outcome") == "exists" else "created"
        partitions = outcome.get("partitions", kafka.partitions)
        return StepResult(
            "kafka.topic", plan.names.topic, state, f"{partitions} partitions, replication {kafka.replication}"
        )
    reason = status.error or status.state_message or f"{status.life_cycle_state} {status.result_state}"
    if status.result_state == "SUCCESS":  # ended well but said nothing we understand
        reason = "the run ended SUCCESS without the JSON line jobs/create_topic.py prints"
    return StepResult(
        "kafka.topic",
        plan.names.topic,
        "failed",
        f"run {status.run_id}: {reason}",
        status.result_state or status.life_cycle_state,
        "Read the run's output in Databricks (its page: "
        f"{status.run_page_url or 'Job runs'}); if the brokers are not reachable, check that both peerings say "
        "Connected, then run again.",
    )


def _topic_outcome(logs: str | None) -> dict[str, Any] | None:
    """The JSON line jobs/create_topic.py prints, from the run's output."""
    import json

    for line in reversed((logs or "").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


BUILD_STEPS = 12  # the numbered steps of ``build`` (for a progress bar)
STEP_NUMBER = {
    "access": 1,
    "region": 1,
    "sign-in": 1,
    "Microsoft.Resources/resourceGroups": 2,
    "Microsoft.Network/publicIPAddresses": 2,
    "Microsoft.Network/natGateways": 2,
    "Microsoft.Network/networkSecurityGroups": 2,
    "Microsoft.Network/virtualNetworks": 2,
    "Microsoft.Storage/storageAccounts": 2,
    "Microsoft.HDInsight/clusters": 3,
    "Microsoft.Databricks/workspaces": 4,
    "ambari.kafka-hosts": 5,
    "ambari.ip-advertising": 5,
    "ambari.kafka-restart": 5,
    "Microsoft.Databricks/workspaces/virtualNetworkPeerings": 6,
    "Microsoft.Network/virtualNetworks/virtualNetworkPeerings": 6,
    "databricks.cluster": 7,
    "databricks.files": 8,
    "kafka.topic": 9,
    "databricks.volume": 10,
    "databricks.job": 11,
    "databricks.sql_warehouse": 12,
}

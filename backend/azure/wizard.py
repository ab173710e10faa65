"""What the Setup page's Azure section calls (no Streamlit here): sign-in from the settings, the plan
as rows with costs, the whole build in the plan's order (``build``) and teardown, with every
failure as a result that says what to do.

``build`` runs, each step resuming what an earlier run left:
 1. the access and region checks (access.py): may this identity create these, is HDInsight offered there;
 2. the resource group, the Kafka network and the storage account (provision.py);
 3. the HDInsight Kafka cluster (hdinsight.py), with logins from the secrets file or new ones saved there first;
 4. the Databricks workspace (workspace.py);
 5. Kafka through Ambari: broker and ZooKeeper hosts, IP advertising, Kafka restarted (ambari.py);
 6. the two peerings, until both say Connected (workspace.py);
 7. the Databricks cluster with Spark's Kafka connector and confluent-kafka (databricks.py);
 8. the job bundle uploaded to the workspace (bundle.py, databricks.py);
 9. the topic, made by a one-off run of jobs/create_topic.py on that cluster (from inside the peered networks);
10. the producer and consumer jobs (the consumer writes Delta tables named with the plan's table prefix);
11. the SQL warehouse the console reads those tables through (warehouse.py).
What it learns (gateway, brokers, workspace, cluster, jobs, warehouse) is saved in deployment.json as it goes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError

from backend.azure import provision as _provision
from backend.azure.plan import ConfigError, Plan, build_plan, load_config, parse_config
from backend.azure.prices import PriceTableError, load_prices
from backend.azure.provision import StepResult, TeardownNotConfirmed
from backend.options.consumer import CONSUMER
from backend.options.create_topic import CREATE_TOPIC
from backend.options.producer import PRODUCER
from backend.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
EXAMPLE_PLAN = PROJECT_ROOT / "backend" / "azure" / "example-plan.toml"


def service_principal_set(settings: Settings) -> bool:
    return bool(settings.azure_tenant_id and settings.azure_client_id and settings.azure_client_secret)


def credential_from(settings: Settings) -> TokenCredential:
    """A ClientSecretCredential when the service principal's three settings are set, else DefaultAzureCredential."""
    options: dict[str, Any] = {"authority": settings.azure_authority_host}
    if settings.azure_authority_host.rstrip("/") != PUBLIC_AUTHORITY:
        options["disable_instance_discovery"] = True  # a stand-in, or a cloud without discovery
    if settings.azure_ca_bundle is not None:
        options["connection_verify"] = str(settings.azure_ca_bundle)
    if service_principal_set(settings):
        from azure.identity import ClientSecretCredential

        assert settings.azure_client_secret is not None
        return ClientSecretCredential(
            str(settings.azure_tenant_id),
            str(settings.azure_client_id),
            settings.azure_client_secret.get_secret_value(),
            **options,
        )
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(**options)


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for the management clients: the ARM endpoint, the polling interval, the CA bundle."""
    options: dict[str, Any] = {
        "base_url": settings.azure_arm_endpoint,
        "polling_interval": settings.azure_polling_interval_s,
    }
    if settings.azure_ca_bundle is not None:
        options["connection_verify"] = str(settings.azure_ca_bundle)
    return options


def load_plan_config(path: Path | str, choices: Mapping[str, str] | None = None) -> Plan:
    """The plan of a config file, with ``choices`` (subscription_id, region, resource_group, as picked on
    the page) in place of the file's; ConfigError (its problems) or PlanError with one message otherwise."""
    try:
        config = load_config(Path(path))
        if choices:
            config = parse_config({**config.model_dump(), **choices})
        return build_plan(config)
    except ConfigError:
        raise
    except (PriceTableError, OSError, KeyError) as exc:
        raise PlanError(str(exc)) from exc


def config_defaults(path: Path | str) -> dict[str, str] | None:
    """The file's subscription, region and resource group (what the page's choices start from), or None."""
    try:
        config = load_config(Path(path))
    except ConfigError:
        return None
    return {"subscription_id": config.subscription_id, "region": config.region, "resource_group": config.resource_group}


def priced_regions() -> list[str]:
    """The regions prices.toml prices (the only ones a plan can be made for)."""
    try:
        return sorted(load_prices().regions)
    except (PriceTableError, OSError):
        return []


class PlanError(RuntimeError):
    """The plan could not be made for a reason other than the config's own faults."""


@dataclass(frozen=True)
class PlanRows:
    rows: list[dict[str, Any]]  # step, type, name, USD/h
    total_hourly_usd: Decimal
    prices_as_of: str
    prices_status: str


def plan_rows(plan: Plan) -> PlanRows:
    rows = [{"step": r.step, "type": r.type, "name": r.name, "USD/h": float(r.hourly_usd)} for r in plan.resources]
    return PlanRows(rows, plan.total_hourly_usd, plan.prices.as_of.isoformat(), plan.prices.status)


def subscription(settings: Settings, plan: Plan) -> str:
    return settings.azure_subscription_id or plan.config.subscription_id


def find_tagged(plan: Plan, settings: Settings) -> tuple[list[tuple[str, str]], StepResult | None]:
    """What carries the plan's tag, or the failure that prevented reading it."""
    try:
        plan = effective_plan(plan, settings)
        found = _provision.find_tagged(
            plan, credential_from(settings), subscription(settings, plan), client_options=client_options(settings)
        )
        if not found:
            _forget_record(plan, settings)
    except Exception as exc:  # shown on the page with what to do, never a traceback
        _log_unless_expected(exc)
        return [], _unexpected(plan, exc)
    return found, None


def _forget_record(plan: Plan, settings: Settings) -> None:
    """Nothing of this plan is left in Azure: its deployment record goes (the pages' cloud panels with it).
    Not while a build runs (it may have just made the group), and not another plan's record."""
    from backend.azure.deployment import forget_deployment, load_deployment

    try:
        with build_lock(settings):
            try:
                deployment = load_deployment(settings.state_dir)
            except ValueError:
                deployment = None
            same = deployment is None or (
                deployment.resource_group == plan.names.resource_group
                and deployment.subscription == plan.config.subscription_id
            )
            if same:
                forget_deployment(settings.state_dir)
                _target_back_to_local(settings)
    except BuildRunning:
        pass


def _target_back_to_local(settings: Settings) -> None:
    """Nothing is left to read from on Azure: the pages read this machine again."""
    if settings.pipeline_target == "azure":
        from backend.console.targets import save_pipeline_target

        try:
            save_pipeline_target("local")
        except (OSError, ValueError):  # the pages then say the Azure target cannot be read, and where to change it
            log.warning("could not set the pipeline target back to local after teardown", exc_info=True)


def teardown(
    plan: Plan,
    settings: Settings,
    confirm: Sequence[str],
    progress: Callable[[StepResult], None] | None = None,
) -> list[StepResult]:
    """Delete what carries the tag after ``confirm`` named exactly it; a refusal or failure comes back as a result.
    Never while a build runs. When all of it went, the deployment record goes too."""
    try:
        plan = effective_plan(plan, settings)
        with build_lock(settings):
            results = _provision.teardown(
                plan,
                credential_from(settings),
                subscription(settings, plan),
                confirm=confirm,
                client_options=client_options(settings),
                progress=progress,
            )
        if all(r.status == "deleted" for r in results):
            _forget_record(plan, settings)
        return results
    except TeardownNotConfirmed as exc:
        return [StepResult("teardown", plan.names.resource_group, "failed", str(exc), "NotConfirmed", "List again.")]
    except BuildRunning:
        return [_build_running(plan)]
    except Exception as exc:  # shown on the page with what to do, never a traceback
        _log_unless_expected(exc)
        return [_unexpected(plan, exc)]


def _log_unless_expected(exc: Exception) -> None:
    """Service and settings errors are the user's to fix (the result says how); anything else is ours: log it."""
    if not isinstance(exc, AzureError | ValueError | OSError):
        log.exception("the Azure wizard stopped")


def _build_running(plan: Plan) -> StepResult:
    return StepResult(
        "build",
        plan.names.resource_group,
        "failed",
        "another build or teardown is running (another tab or session of this console)",
        "BuildRunning",
        "Wait until it ends (its lines show in the tab that started it), then run again.",
    )


def _unexpected(plan: Plan, exc: Exception) -> StepResult:
    """A failure outside a step's own handling as a result: ARM's code and advice (provision's mapping)
    for a service error, else the exception's type and first line."""
    if isinstance(exc, HttpResponseError):  # ClientAuthenticationError too
        result = _provision._failure(plan, "azure", plan.names.resource_group, exc)
        return replace(result, type="sign-in") if result.error_code == "SignInFailed" else result
    code, message = type(exc).__name__, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StepResult(
        "sign-in" if code == "SignInFailed" else "azure",
        plan.names.resource_group,
        "failed",
        f"{code}: {message}",
        code,
        _provision.advice_for(code, plan, "the request"),
    )


# --- the whole build ------------------------------------------------------------------------------

LOGIN_KEYS = ("azure_hdinsight_password", "azure_hdinsight_ssh_password")
SECRET_SCOPE = "tweetstream"
X_TOKEN_KEY = "x-bearer-token"


def workspace_folder(plan: Plan) -> str:
    """Where the job bundle lives in the Databricks workspace (one folder per plan tag)."""
    return f"/Workspace/Shared/tweetstream-{plan.config.tag_value}"


def cloud_paths(plan: Plan) -> dict[str, str]:
    """Where the jobs keep their state on Databricks.

    The checkpoint and the archive on DBFS (``dbfs:/``, spelled out: Spark resolves a path without a
    scheme against DBFS there): the streaming state is written by the executors, so it must be on storage
    every node shares, and both outlive the cluster. The aggregates go to Delta tables (managed tables
    named with the plan's table prefix, which outlive the cluster too); only the status files sit on
    the driver's local disk, which a cluster restart empties.
    """
    root = f"dbfs:/tweetstream/{plan.config.tag_value}"
    local = "/local_disk0/tweetstream"
    return {
        "state_dir": local,
        "checkpoint": f"{root}/checkpoint",
        "archive": f"{root}/archive",
        "producer_status": f"{local}/producer-status.json",
        "consumer_status": f"{local}/consumer-status.json",
    }


def job_parameters(plan: Plan, bootstrap: str) -> dict[str, list[str]]:
    """The arguments each cloud job runs with (the same CLIs as locally, through the bundle's launcher)."""
    from backend.azure import bundle

    paths, kafka = cloud_paths(plan), {"bootstrap": bootstrap, "topic": plan.names.topic}
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


def cluster_logins(settings: Settings, cluster_exists: bool) -> tuple[Any, dict[str, str]]:
    """The HDInsight logins: the settings' where set, new ones for the rest; and the new ones to save
    (settings key -> value) before the cluster is created with them. A cluster that exists keeps the
    logins it was created with: then a missing cluster password is an error (LoginsMissing), and a
    missing SSH password does not matter (nothing here uses SSH)."""
    from pydantic import SecretStr

    from backend.azure import hdinsight

    fresh = hdinsight.new_logins()
    gateway, ssh = settings.azure_hdinsight_password, settings.azure_hdinsight_ssh_password
    if cluster_exists and gateway is None:
        raise LoginsMissing()
    logins = hdinsight.ClusterLogins(
        gateway_password=SecretStr(gateway.get_secret_value()) if gateway is not None else fresh.gateway_password,
        ssh_password=SecretStr(ssh.get_secret_value()) if ssh is not None else fresh.ssh_password,
    )
    to_save: dict[str, str] = {}
    if not cluster_exists:
        if gateway is None:
            to_save["azure_hdinsight_password"] = logins.gateway_password.get_secret_value()
        if ssh is None:
            to_save["azure_hdinsight_ssh_password"] = logins.ssh_password.get_secret_value()
    return logins, to_save


class LoginsMissing(RuntimeError):
    """The HDInsight cluster exists, but the secrets file has not its cluster login password."""


def save_logins(values: Mapping[str, str]) -> None:
    """Into the secrets file (mode 0600), before the cluster is created with them: a rerun and Ambari need
    them. Only the given keys are written; the file's other keys stay."""
    from backend.kafka.connection import save_top_level
    from backend.settings import secrets_file

    if values:
        save_top_level(secrets_file(), values, tuple(values))


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
            _build(plan, settings, report, done)
    except BuildRunning:
        done(_build_running(plan))
    except Exception as exc:  # e.g. DefaultAzureCredential finding no identity: a result with what to do
        _log_unless_expected(exc)
        done(_unexpected(plan, exc))
    return results


class BuildRunning(RuntimeError):
    """Another build holds the lock."""


@contextlib.contextmanager
def build_lock(settings: Settings) -> Iterator[None]:
    """One build at a time per state directory: two would both create the Databricks cluster (find, then
    create) and race on the logins and the deployment record."""
    folder = settings.state_dir / "azure"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "build.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildRunning() from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def effective_plan(plan: Plan, settings: Settings) -> Plan:
    """The plan for the subscription the calls go to: AZURE_SUBSCRIPTION_ID when set, else the plan's own.
    Resource ids in request bodies (subnet, storage, managed resource group) come from the plan, so the two
    must agree."""
    wanted = settings.azure_subscription_id
    if not wanted or wanted == plan.config.subscription_id:
        return plan
    return build_plan(parse_config({**plan.config.model_dump(), "subscription_id": wanted}))


def _build(
    plan: Plan,
    settings: Settings,
    report: Callable[[StepResult], None],
    done: Callable[[StepResult], bool],
) -> None:
    from backend.azure import access, ambari, bundle, databricks, hdinsight, workspace
    from backend.azure.deployment import Deployment, load_deployment, save_deployment

    names, config = plan.names, plan.config
    credential = credential_from(settings)
    sub = subscription(settings, plan)
    options = client_options(settings)
    poll_s = min(settings.azure_polling_interval_s, 10.0)
    verify: str | bool = str(settings.azure_ca_bundle) if settings.azure_ca_bundle is not None else True
    ca_bundle = str(settings.azure_ca_bundle) if settings.azure_ca_bundle is not None else None

    # 1. May this identity do it, here?
    report(StepResult("access", sub, "creating", "checking the identity's permissions and the region"))
    allowed = access.check_access(plan, credential, sub, client_options=options)
    if not allowed.ok:
        done(
            StepResult(
                "access",
                allowed.scope,
                "failed",
                "missing permissions: " + ", ".join(allowed.missing),
                "AuthorizationFailed",
                _provision.advice_for("AuthorizationFailed", plan, "these resources"),
            )
        )
        return
    problems = access.check_region(plan, credential, sub, client_options=options)
    if problems:
        done(StepResult("region", config.region, "failed", "; ".join(problems), "RegionNotOffered", problems[-1]))
        return
    if not done(StepResult("access", allowed.scope, "exists", f"may create everything in region {config.region}")):
        return

    # 2. Resource group, Kafka network, storage account.
    for result in _provision.provision(plan, credential, sub, client_options=options, progress=report):
        if result.status not in ("creating", "deleting") and not done(result):
            return

    try:
        deployment = load_deployment(settings.state_dir)
    except ValueError:
        deployment = None  # unreadable: this build writes it anew
    if deployment is None or (deployment.resource_group, deployment.subscription) != (names.resource_group, sub):
        deployment = Deployment(sub, names.resource_group, config.tag_value, names.hdinsight_cluster, names.topic)
    deployment = deployment.with_(
        subscription=sub, tag_value=config.tag_value, hdinsight_cluster=names.hdinsight_cluster, topic=names.topic
    )

    # 3. The HDInsight Kafka cluster, with logins saved before they are used.
    try:
        logins, to_save = cluster_logins(
            settings, hdinsight.our_cluster_exists(plan, credential, sub, client_options=options)
        )
    except LoginsMissing:
        from backend.settings import secrets_file

        done(
            StepResult(
                hdinsight.HDINSIGHT_CLUSTER,
                names.hdinsight_cluster,
                "failed",
                "LoginsMissing: the cluster exists, but its cluster login password is not in the settings",
                "LoginsMissing",
                f"Set azure_hdinsight_password in {secrets_file()} (or TWEETSTREAM_AZURE_HDINSIGHT_PASSWORD) to the "
                "cluster login password it was created with, or reset it in the Azure portal (the cluster, "
                "Settings, Cluster login) and set the new one; then run again.",
            )
        )
        return
    save_logins(to_save)
    cluster = hdinsight.ensure_kafka_cluster(plan, credential, sub, logins, client_options=options, progress=report)
    if not done(cluster):
        return
    try:
        gateway = hdinsight.cluster_gateway(plan, credential, sub, client_options=options)
    except hdinsight.ClusterNotReady as exc:
        done(
            StepResult(
                hdinsight.HDINSIGHT_CLUSTER,
                names.hdinsight_cluster,
                "failed",
                f"ClusterNotReady: {exc}",
                "ClusterNotReady",
                "Run again once the cluster is Running (its HTTPS gateway is listed then).",
            )
        )
        return
    deployment = save_deployment(settings.state_dir, deployment.with_(gateway_url=gateway))

    # 4. The Databricks workspace.
    result, info = workspace.ensure_workspace(plan, credential, sub, client_options=options, progress=report)
    if not done(result) or info is None:
        return
    deployment = save_deployment(
        settings.state_dir, deployment.with_(workspace_url=info.url, workspace_resource_id=info.resource_id)
    )

    # 5. Kafka through Ambari: hosts, IP advertising, restart.
    gateway_client = ambari.Ambari(
        gateway, names.hdinsight_cluster, logins.gateway_user, logins.gateway_password, verify=verify
    )
    kafka_results, bootstrap = ambari.setup_kafka(gateway_client, report, poll_s=poll_s)
    if not all(done(r) for r in kafka_results) or not bootstrap:
        return
    deployment = save_deployment(settings.state_dir, deployment.with_(bootstrap_servers=bootstrap))

    # 6. The two peerings, until both say Connected.
    for result in workspace.ensure_peerings(
        plan, credential, sub, client_options=options, progress=report, poll_s=poll_s
    ):
        if not done(result):
            return

    # 7. The Databricks cluster and its libraries.
    client = databricks.workspace_client(info.url, credential, info.resource_id, ca_bundle=ca_bundle)
    # The jobs' state on the driver's disk; the X token (if set) from a secret scope, never a parameter.
    cluster_env = {"TWEETSTREAM_STATE_DIR": cloud_paths(plan)["state_dir"]}
    if settings.x_bearer_token is not None:
        try:
            databricks.put_secret(client, SECRET_SCOPE, X_TOKEN_KEY, settings.x_bearer_token)
        except databricks.DatabricksFailure as exc:
            done(StepResult("databricks.secret", f"{SECRET_SCOPE}/{X_TOKEN_KEY}", "failed", str(exc), exc.error_code))
            return
        done(
            StepResult(
                "databricks.secret",
                f"{SECRET_SCOPE}/{X_TOKEN_KEY}",
                "created",
                "the X bearer token (written each build)",
            )
        )
        cluster_env["X_BEARER_TOKEN"] = databricks.secret_reference(SECRET_SCOPE, X_TOKEN_KEY)
    result, cluster_id = databricks.ensure_cluster(
        client, plan, progress=report, poll_s=poll_s, spark_env_vars=cluster_env
    )
    if not done(result) or cluster_id is None:
        return
    deployment = save_deployment(settings.state_dir, deployment.with_(cluster_id=cluster_id))

    # 8. The job bundle.
    folder = workspace_folder(plan)
    files = [(item.path, item.content) for item in bundle.job_bundle()]
    if not done(databricks.upload_files(client, folder, files, progress=report)):
        return
    deployment = save_deployment(settings.state_dir, deployment.with_(files_folder=folder))
    launcher = f"{folder}/{bundle.LAUNCHER}"

    # 9. The topic, from inside the peered networks.
    if not done(_create_topic(plan, client, cluster_id, launcher, bootstrap, report, poll_s)):
        return

    # 10. The producer and consumer jobs.
    jobs: dict[str, int] = {}
    for name, parameters in job_parameters(plan, bootstrap).items():
        result, job_id = databricks.ensure_job(
            client,
            plan,
            f"tweetstream-{name}",
            cluster_id=cluster_id,
            python_file=launcher,
            parameters=parameters,
            progress=report,
        )
        if not done(result):
            return
        jobs[name] = job_id
    deployment = save_deployment(settings.state_dir, deployment.with_(jobs=jobs))

    # 11. The SQL warehouse the console reads the consumer's Delta tables through.
    result, warehouse_id = _ensure_warehouse(plan, client, report)
    if not done(result) or warehouse_id is None:
        return
    save_deployment(
        settings.state_dir, deployment.with_(warehouse_id=warehouse_id, table_prefix=plan.names.table_prefix)
    )


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
        _log_unless_expected(exc)
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
    from backend.azure import bundle, databricks

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
        status = databricks.run_once(
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


# --- sign-in check (before planning) --------------------------------------------------------------


@dataclass(frozen=True)
class SignInCheck:
    """What the Setup page shows after "Sign in and check": the subscriptions this identity sees, whether
    it may create the plan's resources, and whether the region offers them."""

    subscriptions: list[Any]  # access.SubscriptionInfo
    access: Any | None  # access.AccessReport
    region_problems: list[str]
    failure: StepResult | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.access is not None and self.access.ok and not self.region_problems


def sign_in_check(plan: Plan, settings: Settings) -> SignInCheck:
    """Sign in, list the subscriptions, check access and the region; failures come back in ``failure``."""
    from backend.azure import access

    try:
        plan = effective_plan(plan, settings)
        credential = credential_from(settings)
        options = client_options(settings)
        subscriptions = access.list_subscriptions(credential, client_options=options)
        sub = subscription(settings, plan)
        report = access.check_access(plan, credential, sub, client_options=options)
        problems = access.check_region(plan, credential, sub, client_options=options)
    except Exception as exc:  # shown on the page with what to do, never a traceback
        _log_unless_expected(exc)
        return SignInCheck([], None, [], _unexpected(plan, exc))
    return SignInCheck(subscriptions, report, problems)


def deployment_rows(settings: Settings) -> list[dict[str, str]]:
    """The saved deployment as (what, where) rows for the page; empty when there is none."""
    from backend.azure.deployment import load_deployment

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


BUILD_STEPS = 11  # the numbered steps of ``build`` (for a progress bar)
STEP_NUMBER = {
    "access": 1,
    "region": 1,
    "sign-in": 1,
    "Microsoft.Resources/resourceGroups": 2,
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
    "databricks.job": 10,
    "databricks.sql_warehouse": 11,
}

"""The whole Azure wizard (wizard.build), teardown and the cloud jobs, with the real SDKs against the
stand-ins of tests/standins/azure_cloud.py (ARM + Entra ID, Ambari behind the gateway, the Databricks
workspace API; each over HTTPS)."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.azure import cloud_jobs, wizard
from backend.azure.arm import StepResult
from backend.azure.deployment import load_deployment
from backend.azure.plan import Plan, build_plan
from backend.azure.plan_config import load_config
from backend.settings import Settings
from tests.standins.arm_databricks import DEFAULT_LOCATIONS, install_access
from tests.standins.azure_arm import CLIENT_SECRET
from tests.standins.azure_cloud import AzureCloud

EXAMPLE = Path(__file__).resolve().parents[2] / "backend" / "azure" / "example-plan.toml"

pytestmark = pytest.mark.timeout(90)


@dataclass
class Cloud:
    stand_ins: AzureCloud
    plan: Plan
    state_dir: Path
    secrets: Path

    def __post_init__(self) -> None:
        self.arm, self.ambari, self.dbx = self.stand_ins.arm, self.stand_ins.ambari, self.stand_ins.dbx
        self.uc = self.stand_ins.uc

    def settings(self) -> Settings:
        return Settings()

    def arm_writes(self) -> list[str]:
        return self.stand_ins.arm_writes()


@pytest.fixture
def cloud(monkeypatch, tmp_path) -> Iterator[Cloud]:
    plan = build_plan(load_config(EXAMPLE))
    with AzureCloud(tmp_path, plan.names.hdinsight_cluster) as stand_ins:
        for name in [n for n in os.environ if n.startswith(("TWEETSTREAM_", "AZURE_"))]:
            monkeypatch.delenv(name)
        secrets = tmp_path / "secrets.toml"
        monkeypatch.setenv("TWEETSTREAM_STATE_DIR", str(tmp_path / "state"))
        monkeypatch.setenv("TWEETSTREAM_SECRETS_FILE", str(secrets))
        for name, value in stand_ins.environment().items():
            monkeypatch.setenv(name, value)
        yield Cloud(stand_ins, plan, tmp_path / "state", secrets)


def build(cloud: Cloud) -> tuple[list[StepResult], list[StepResult]]:
    lines: list[StepResult] = []
    return wizard.build(cloud.plan, cloud.settings(), progress=lines.append), lines


def finals(results: list[StepResult]) -> list[tuple[str, str]]:
    return [(r.type, r.status) for r in results]


def test_build_makes_everything_in_order_and_records_where_it_is(cloud: Cloud) -> None:
    results, lines = build(cloud)

    assert [r for r in results if r.status == "failed"] == []
    assert [t for t, _ in finals(results)] == [
        "access",
        "Microsoft.Resources/resourceGroups",
        "Microsoft.Network/publicIPAddresses",  # the Kafka subnet's outbound path and NSG
        "Microsoft.Network/natGateways",
        "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Network/virtualNetworks",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.HDInsight/clusters",
        "Microsoft.Databricks/workspaces",
        "ambari.kafka-hosts",
        "ambari.ip-advertising",
        "ambari.kafka-restart",
        *[r.type for r in results if "eering" in r.type],
        "databricks.cluster",
        "databricks.files",
        "kafka.topic",
        "databricks.volume",
        "databricks.job",
        "databricks.job",
        "databricks.sql_warehouse",
    ]
    # A first build creates everything; "exists" only for the access check and Ambari's host list (read only).
    assert [t for t, status in finals(results) if status != "created"] == ["access", "ambari.kafka-hosts"]
    assert [r.detail for r in results if "eering" in r.type] and all(
        "Connected" in r.detail for r in results if "eering" in r.type
    )
    # Every final result was shown once, with progress lines before them.
    assert [r for r in lines if r.status not in ("creating", "deleting")] == results
    assert any(r.type == "Microsoft.HDInsight/clusters" and r.status == "creating" for r in lines)

    deployment = load_deployment(cloud.state_dir)
    assert deployment is not None
    assert deployment.gateway_url == f"https://127.0.0.1:{cloud.ambari.port}"
    assert deployment.bootstrap_servers == "10.0.0.12:9092,10.0.0.13:9092,10.0.0.14:9092"
    assert deployment.workspace_url == cloud.dbx.url
    assert deployment.cluster_id in cloud.dbx.clusters
    assert set(deployment.jobs) == {"producer", "consumer"}

    # The jobs run the same CLIs as locally, through the launcher, against the HDInsight brokers.
    jobs = {job["settings"]["name"]: job["settings"] for job in cloud.dbx.jobs.values()}
    consumer_task = jobs["tweetstream-consumer"]["tasks"][0]["spark_python_task"]
    assert consumer_task["python_file"] == f"{wizard.workspace_folder(cloud.plan)}/run_job.py"
    assert consumer_task["parameters"][:3] == [
        "jobs.consumer",
        f"--bootstrap={deployment.bootstrap_servers}",
        "--topic=tweets",
    ]
    assert f"{wizard.workspace_folder(cloud.plan)}/jobs/consumer/__main__.py" in cloud.dbx.files
    # Checkpoint and archive on a Unity Catalog volume the build made in the workspace's default catalog (the
    # stand-in, like a new workspace, has no DBFS root: a dbfs:/ path fails the run).
    volume = f"/Volumes/{cloud.uc.default_catalog}/tweetstream/streaming_state"
    assert f"{cloud.uc.default_catalog}.tweetstream.streaming_state" in cloud.uc.volumes
    assert cloud.uc.volumes[f"{cloud.uc.default_catalog}.tweetstream.streaming_state"]["volume_type"] == "MANAGED"
    assert f"--checkpoint={volume}/tweetstream/checkpoint" in consumer_task["parameters"]
    assert f"--archive={volume}/tweetstream/archive" in consumer_task["parameters"]
    assert not any("dbfs:" in p for job in jobs.values() for p in job["tasks"][0]["spark_python_task"]["parameters"])
    # The topic was made by a one-off run on that cluster, with the plan's partitions and replication.
    submitted = cloud.dbx.bodies("POST", "/api/2.2/jobs/runs/submit")
    parameters = submitted[0]["tasks"][0]["spark_python_task"]["parameters"]
    assert parameters[0] == "jobs.create_topic"
    assert "--partitions=4" in parameters
    assert "--replication=3" in parameters

    # The cluster logins were made, saved (0600) before the cluster was created, and shown nowhere.
    saved = tomllib.loads(cloud.secrets.read_text())
    assert stat.S_IMODE(cloud.secrets.stat().st_mode) == 0o600
    password = saved["azure_hdinsight_password"]
    assert len(password) >= 10 and password == cloud.ambari.password
    shown = json.dumps([r.__dict__ for r in lines]) + (cloud.state_dir / "azure" / "deployment.json").read_text()
    assert password not in shown and saved["azure_hdinsight_ssh_password"] not in shown
    assert CLIENT_SECRET not in shown


def test_a_second_run_finds_everything_and_writes_nothing(cloud: Cloud) -> None:
    build(cloud)
    arm_writes, dbx_calls = len(cloud.arm_writes()), len(cloud.dbx.calls)
    ambari_writes = len(cloud.ambari.writes())

    results, _ = build(cloud)

    assert [r for r in results if r.status == "failed"] == []
    assert all(r.status == "exists" for r in results if r.type != "kafka.topic"), finals(results)
    assert cloud.arm_writes()[arm_writes:] == []
    assert len(cloud.ambari.writes()) == ambari_writes
    new_posts = [path for method, path in cloud.dbx.paths()[dbx_calls:] if method == "POST"]
    assert "/api/2.1/clusters/create" not in new_posts and "/api/2.2/jobs/create" not in new_posts
    assert not [path for path in new_posts if "unity-catalog" in path]  # the schema and volume were found


def test_a_failure_in_the_middle_keeps_what_was_made_and_a_rerun_resumes(cloud: Cloud) -> None:
    cloud.dbx.fail_cluster(
        "CLOUD_PROVIDER_LAUNCH_FAILURE", "CLOUD_FAILURE", {"azure_error_code": "OperationNotAllowed"}, "quota"
    )
    results, _ = build(cloud)

    assert results[-1].type == "databricks.cluster" and results[-1].status == "failed"
    assert "CLOUD_PROVIDER_LAUNCH_FAILURE" in results[-1].detail
    deployment = load_deployment(cloud.state_dir)
    assert deployment is not None and deployment.bootstrap_servers and deployment.cluster_id is None
    made = len(cloud.arm_writes())

    results, _ = build(cloud)

    assert [r for r in results if r.status == "failed"] == []
    assert cloud.arm_writes()[made:] == []  # ARM's part was all there
    assert [(t, s) for t, s in finals(results) if t.startswith("Microsoft.")] == [
        (t, "exists") for t, _ in finals(results) if t.startswith("Microsoft.")
    ]
    deployment = load_deployment(cloud.state_dir)
    assert (
        deployment is not None
        and deployment.cluster_id is not None
        and set(deployment.jobs)
        == {
            "producer",
            "consumer",
        }
    )


def test_a_region_without_hdinsight_is_refused_before_anything_is_made(cloud: Cloud) -> None:
    install_access(cloud.arm, provider_locations={**DEFAULT_LOCATIONS, "Microsoft.HDInsight/clusters": ["West Europe"]})

    results, _ = build(cloud)

    assert finals(results) == [("region", "failed")]
    assert "HDInsight is not offered in region eastus" in results[0].detail
    assert cloud.arm_writes() == []


def test_missing_permissions_name_the_role_to_ask_for(cloud: Cloud) -> None:
    install_access(cloud.arm, actions=("*/read",))

    results, _ = build(cloud)

    assert finals(results) == [("access", "failed")]
    assert "Microsoft.HDInsight/clusters/write" in results[0].detail
    assert "Contributor" in (results[0].advice or "")
    assert cloud.arm_writes() == []


def test_a_policy_denial_says_so_and_what_was_made_can_be_deleted(cloud: Cloud) -> None:
    cloud.arm.fail(
        "PUT",
        "Microsoft.Databricks/workspaces",
        "RequestDisallowedByPolicy",
        "Resource 'tweetstream-databricks' was disallowed by policy. Policy identifiers: 'allowed-resource-types'.",
        status=403,
    )
    results, _ = build(cloud)

    assert results[-1].type == "Microsoft.Databricks/workspaces" and results[-1].status == "failed"
    assert results[-1].error_code == "RequestDisallowedByPolicy"
    assert "policy" in (results[-1].advice or "")

    found, failure = wizard.find_tagged(cloud.plan, cloud.settings())
    assert failure is None
    names = [name for _, name in found]
    assert cloud.plan.names.hdinsight_cluster in names and cloud.plan.names.storage_account in names
    deleted = wizard.teardown(cloud.plan, cloud.settings(), names)
    assert [r.status for r in deleted] == ["deleted"] * len(names)


def test_teardown_deletes_everything_the_build_made_in_order(cloud: Cloud) -> None:
    build(cloud)
    found, failure = wizard.find_tagged(cloud.plan, cloud.settings())
    assert failure is None
    names = cloud.plan.names
    assert [name for _, name in found] == [
        names.kafka_peering,
        names.databricks_workspace,
        names.hdinsight_cluster,
        names.storage_account,
        names.kafka_vnet,
        names.kafka_nsg,
        names.kafka_nat_gateway,
        names.kafka_public_ip,
        names.resource_group,
    ]

    results = wizard.teardown(cloud.plan, cloud.settings(), [name for _, name in found])

    assert [(r.name, r.status) for r in results] == [(name, "deleted") for _, name in found]
    assert wizard.find_tagged(cloud.plan, cloud.settings()) == ([], None)
    # The workspace's managed group went whole, its Unity Catalog storage too: nothing goes on costing.
    managed = f"/subscriptions/{cloud.plan.config.subscription_id}/resourcegroups/"
    managed += names.databricks_managed_resource_group.lower()
    assert [key for key in cloud.arm.state.resources if key.startswith(managed)] == []


def test_the_cloud_jobs_start_report_and_stop(cloud: Cloud) -> None:
    build(cloud)
    settings = cloud.settings()
    deployment = cloud_jobs.cloud_deployment(settings)
    assert deployment is not None
    assert cloud_jobs.job_view(settings, deployment, "consumer").state == "never run"

    started, message = cloud_jobs.start(settings, deployment, "consumer")
    assert started and message.startswith("Started run ")
    again, message = cloud_jobs.start(settings, deployment, "consumer")
    assert not again and message.startswith("Already running: run ")
    view = cloud_jobs.job_view(settings, deployment, "consumer")
    assert view.running and view.state == "RUNNING"
    assert any(row["what"] == "ran for" and row["value"].endswith(" s") for row in view.rows())

    tokens = [c for c in cloud.arm.calls if c.path.endswith("/oauth2/v2.0/token")]
    for _ in range(3):
        cloud_jobs.job_view(settings, deployment, "consumer")
    assert [c for c in cloud.arm.calls if c.path.endswith("/oauth2/v2.0/token")] == tokens  # tokens cached

    stopped, message = cloud_jobs.stop(settings, deployment, "consumer")
    assert stopped and message.endswith("TERMINATED (CANCELED)")
    assert cloud_jobs.job_view(settings, deployment, "consumer").state == "TERMINATED (CANCELED)"
    assert cloud_jobs.stop(settings, deployment, "consumer") == (False, "No run is active")


def test_the_x_token_goes_to_a_secret_scope_and_the_cluster_gets_only_a_reference(cloud: Cloud, monkeypatch) -> None:
    token = "x-bearer-canary-5d41402abc4b2a76"
    monkeypatch.setenv("X_BEARER_TOKEN", token)

    results, lines = build(cloud)

    assert [r for r in results if r.status == "failed"] == []
    assert cloud.dbx.scopes["tweetstream"]["x-bearer-token"] == token
    cluster = next(iter(cloud.dbx.clusters.values()))
    assert cluster.spec["spark_env_vars"]["X_BEARER_TOKEN"] == "{{secrets/tweetstream/x-bearer-token}}"
    # Anywhere else, it is nowhere: not in the cluster or job settings, the results, the record.
    elsewhere = json.dumps(
        [cluster.spec, [job["settings"] for job in cloud.dbx.jobs.values()], [r.__dict__ for r in lines]]
    )
    assert token not in elsewhere
    assert token not in (cloud.state_dir / "azure" / "deployment.json").read_text()


def test_a_failed_kafka_restart_stops_the_build_and_a_rerun_restarts_it(cloud: Cloud) -> None:
    host = next(iter(cloud.ambari.brokers))
    cloud.ambari.fail_request("STARTED", host)

    results, _ = build(cloud)

    assert (results[-1].type, results[-1].status) == ("ambari.kafka-restart", "failed")
    assert host in results[-1].detail
    deployment = load_deployment(cloud.state_dir)
    assert deployment is not None and deployment.bootstrap_servers is None and deployment.gateway_url

    results, _ = build(cloud)  # the fault is spent: configured already, stale, so restarted now

    assert [r for r in results if r.status == "failed"] == []
    restart = next(r for r in results if r.type == "ambari.kafka-restart")
    assert restart.status == "created" and restart.detail.endswith("STARTED")
    assert next(r for r in results if r.type == "ambari.ip-advertising").status == "exists"


def test_a_cluster_whose_logins_are_lost_is_not_given_new_ones(cloud: Cloud) -> None:
    build(cloud)
    first = cloud.secrets.read_text()
    cloud.secrets.write_text("")  # the secrets file lost (another machine, a deleted file)

    results, _ = build(cloud)

    assert finals(results)[-1] == ("Microsoft.HDInsight/clusters", "failed")
    assert results[-1].error_code == "LoginsMissing" and "azure_hdinsight_password" in (results[-1].advice or "")
    assert cloud.secrets.read_text() == ""  # nothing new was saved over the cluster's own

    cloud.secrets.write_text(first)
    results, _ = build(cloud)
    assert [r for r in results if r.status == "failed"] == []


def test_a_second_build_while_one_runs_is_refused(cloud: Cloud) -> None:
    settings = cloud.settings()
    with wizard.build_lock(settings):
        results, _ = build(cloud)
    assert finals(results) == [("build", "failed")]
    assert results[0].error_code == "BuildRunning"
    assert cloud.arm_writes() == []


def test_an_unreadable_record_is_written_anew(cloud: Cloud) -> None:
    record = cloud.state_dir / "azure" / "deployment.json"
    record.parent.mkdir(parents=True)
    record.write_text("{not json")

    results, _ = build(cloud)

    assert [r for r in results if r.status == "failed"] == []
    deployment = load_deployment(cloud.state_dir)
    assert deployment is not None and set(deployment.jobs) == {"producer", "consumer"}


def test_the_subscription_of_the_settings_is_the_one_in_every_request_body(monkeypatch, tmp_path) -> None:
    other = "11111111-2222-3333-4444-555555555555"
    plan = build_plan(load_config(EXAMPLE))
    for name in [n for n in os.environ if n.startswith(("TWEETSTREAM_", "AZURE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", other)
    monkeypatch.setenv("TWEETSTREAM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TWEETSTREAM_SECRETS_FILE", str(tmp_path / "secrets.toml"))
    effective = wizard.effective_plan(plan, Settings())
    assert effective.config.subscription_id == other
    with AzureCloud(tmp_path, effective.names.hdinsight_cluster) as stand_ins:
        for name, value in stand_ins.environment().items():
            monkeypatch.setenv(name, value)

        results = wizard.build(plan, Settings())  # the config's subscription is the zeros one

        assert [r for r in results if r.status == "failed"] == []
        puts = [c for c in stand_ins.arm.arm_calls() if c.method == "PUT"]
        assert puts and all(c.path.startswith(f"/subscriptions/{other}/") for c in puts)
        bodies = json.dumps([c.body for c in puts])
        assert plan.config.subscription_id not in bodies and f"/subscriptions/{other}/" in bodies


def test_brokers_not_reached_from_databricks_get_network_advice(cloud: Cloud) -> None:
    error = '{"outcome": "error", "kind": "unreached", "topic": "tweets", "error": "no answer from the brokers"}'
    cloud.dbx.script_logs("jobs.create_topic", error)
    cloud.dbx.fail_run("run_job.py", "exit code 1", "SystemExit: 1")

    results, _ = build(cloud)

    assert (results[-1].type, results[-1].status, results[-1].error_code) == (
        "kafka.topic",
        "failed",
        "KafkaNotReached",
    )
    assert "peerings say Connected" in (results[-1].advice or "")
    assert "no answer from the brokers" in results[-1].detail


def test_a_topic_job_that_fails_for_another_reason_says_to_read_its_output(cloud: Cloud) -> None:
    error = '{"outcome": "error", "kind": "failed", "topic": "tweets", "error": "TopicAuthorizationException: no"}'
    cloud.dbx.script_logs("jobs.create_topic", error)
    cloud.dbx.fail_run("run_job.py", "exit code 1", "SystemExit: 1")

    results, _ = build(cloud)

    assert (results[-1].type, results[-1].error_code) == ("kafka.topic", "TopicFailed")
    assert "TopicAuthorizationException" in results[-1].detail and "run's output" in (results[-1].advice or "")


def test_listing_nothing_forgets_this_plans_record_but_not_another(cloud: Cloud) -> None:
    from backend.azure.deployment import Deployment, save_deployment

    sub = cloud.plan.config.subscription_id
    other = Deployment(sub, "another-rg", "t", "c", "tweets", workspace_url="https://adb-1", jobs={"producer": 1})
    save_deployment(cloud.state_dir, other)
    assert wizard.find_tagged(cloud.plan, cloud.settings()) == ([], None)
    assert load_deployment(cloud.state_dir) is not None  # another plan's: kept

    ours = Deployment(sub, cloud.plan.names.resource_group, "t", "c", "tweets", workspace_url="https://adb-2")
    save_deployment(cloud.state_dir, ours)
    assert wizard.find_tagged(cloud.plan, cloud.settings()) == ([], None)
    assert load_deployment(cloud.state_dir) is None  # nothing of this plan in Azure: its record went


def test_a_refused_permissions_read_shows_arms_code_and_advice(cloud: Cloud) -> None:
    cloud.arm.fail(
        "GET",
        "Microsoft.Authorization/permissions",
        "AuthorizationFailed",
        "The client does not have authorization to perform action 'Microsoft.Authorization/permissions/read'.",
        status=403,
    )

    results, _ = build(cloud)

    assert finals(results) == [("azure", "failed")]
    assert results[0].error_code == "AuthorizationFailed"  # ARM's code, not the exception's type
    assert "Contributor" in (results[0].advice or "")
    assert cloud.arm_writes() == []


def test_a_saved_ssh_password_hdinsight_would_refuse_stops_the_build_before_anything_is_made(cloud: Cloud) -> None:
    weak = "Kq7wzpXl"  # 8 characters, no non-alphanumeric: HDInsight refuses it at creation
    cloud.secrets.write_text(f'azure_hdinsight_ssh_password = "{weak}"\n')

    results, lines = build(cloud)

    assert [(r.type, r.status, r.error_code) for r in results[-1:]] == [
        ("Microsoft.HDInsight/clusters", "failed", "InvalidClusterLogin")
    ]
    assert "the SSH password must be 10-72 characters" in results[-1].detail
    assert "Nothing was created" in (results[-1].advice or "")
    assert cloud.arm_writes() == []  # refused before the resource group, network or storage
    assert weak not in json.dumps([r.__dict__ for r in lines])

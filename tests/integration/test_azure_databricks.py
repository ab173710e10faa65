"""The Databricks steps with the real databricks-sdk against the Databricks stand-in.

The client signs in with azure-identity's ClientSecretCredential against the ARM stand-in's
Entra token endpoint (its own certificate); the Databricks stand-in (tests/standins/
databricks_rest.py, another certificate) accepts exactly that token. Cluster states and
library installs move on one step per poll, runs over 2 polls; every wait here uses poll_s=0.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.compute import Library, PythonPyPiLibrary
from pydantic import SecretStr

from backend.azure import bundle
from backend.azure.arm import StepResult
from backend.azure.databricks import (
    ARM_SCOPE,
    DATABRICKS_SCOPE,
    DatabricksFailure,
    is_service_principal,
    put_secret,
    secret_reference,
    upload_files,
    workspace_client,
)
from backend.azure.databricks_cluster import CLUSTER_PYPI, ensure_cluster, pypi_pin
from backend.azure.databricks_jobs import ensure_job, run_once, run_status, start_run, stop_run
from backend.azure.plan import Plan, build_plan
from backend.azure.plan_config import TAG_KEY, load_config
from backend.azure.uc_volume import ensure_volume
from tests.standins.azure_arm import ArmStandIn
from tests.standins.databricks_rest import USER, DatabricksStandIn
from tests.standins.unity_catalog import install_unity_catalog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "backend" / "azure" / "example-plan.toml"
RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/tweetstream-rg"
    "/providers/Microsoft.Databricks/workspaces/tweetstream-databricks"
)
FOLDER = "/Workspace/Shared/tweetstream"
LAUNCHER = f"{FOLDER}/launcher.py"

pytestmark = pytest.mark.timeout(60)


@dataclass
class Env:
    arm: ArmStandIn
    dbx: DatabricksStandIn
    client: WorkspaceClient
    plan: Plan


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_config(EXAMPLE))


@pytest.fixture
def env(plan: Plan) -> Iterator[Env]:
    with ArmStandIn() as arm, DatabricksStandIn(arm.token, polls=2) as dbx:
        client = workspace_client(dbx.url, arm.credential(), RESOURCE_ID, ca_bundle=str(dbx.ca_path))
        yield Env(arm, dbx, client, plan)


def cluster_props(plan: Plan) -> dict:
    return dict(next(r for r in plan.resources if r.type == "databricks.cluster").properties)


def pin(package: str) -> str:
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(rf"^{package}==(\S+)$", text, re.M)
    assert match, f"requirements.txt pins {package}"
    return f"{package}=={match.group(1)}"


def confluent_pin() -> str:
    return pypi_pin("confluent-kafka")


def make_cluster(
    env: Env, progress: list[StepResult] | None = None, **options: object
) -> tuple[StepResult, str | None]:
    return ensure_cluster(
        env.client, env.plan, progress=None if progress is None else progress.append, poll_s=0, **options
    )


def test_cluster_created_with_progress_body_as_planned_and_signed_in(env: Env) -> None:
    seen: list[StepResult] = []
    result, cluster_id = make_cluster(env, seen)

    props = cluster_props(env.plan)
    assert result.status == "created", result.line
    assert cluster_id and cluster_id in result.detail
    assert "libraries installed" in result.detail
    lines = [r.detail for r in seen]
    assert any(line.startswith("PENDING: Finding instances") for line in lines)
    assert "RUNNING" in lines
    assert not any("maven" in line for line in lines)  # the runtime's own Kafka source, no connector library
    assert f"library pypi {confluent_pin()}: INSTALLED" in lines

    # The create body, field by field, as the Clusters API reference types it.
    (body,) = env.dbx.bodies("POST", "/api/2.1/clusters/create")
    assert body == {
        "cluster_name": env.plan.names.databricks_cluster,
        "spark_version": props["spark_version"],
        "node_type_id": props["node_type_id"],
        "driver_node_type_id": props["driver_node_type_id"],
        "num_workers": props["num_workers"],
        "autotermination_minutes": props["autotermination_minutes"],
        "custom_tags": {TAG_KEY: env.plan.config.tag_value},
        "data_security_mode": "SINGLE_USER",
        "single_user_name": USER,
    }
    assert isinstance(body["num_workers"], int) and isinstance(body["autotermination_minutes"], int)
    (install,) = env.dbx.bodies("POST", "/api/2.0/libraries/install")
    assert install == {
        "cluster_id": cluster_id,
        "libraries": [
            # Every third-party package the jobs import, pinned as locally; no Maven library.
            *(
                {"pypi": {"package": pin(p)}}
                for p in (
                    "confluent-kafka",
                    "pandas",
                    "psutil",
                    "pydantic",
                    "pydantic-settings",
                    "requests",
                    "vaderSentiment",
                )
            ),
        ],
    }

    # The calls in order (polls folded), and no host-metadata probe.
    folded: list[tuple[str, str]] = []
    for call in env.dbx.paths():
        if not folded or folded[-1] != call:
            folded.append(call)
    assert folded == [
        ("GET", "/api/2.1/clusters/spark-versions"),
        ("GET", "/api/2.1/clusters/list"),
        ("GET", "/api/2.0/preview/scim/v2/Me"),
        ("POST", "/api/2.1/clusters/create"),
        ("GET", "/api/2.1/clusters/get"),
        ("GET", "/api/2.0/libraries/cluster-status"),
        ("POST", "/api/2.0/libraries/install"),
        ("GET", "/api/2.0/libraries/cluster-status"),
    ]

    # Signed in with Entra tokens for Azure Databricks and for ARM, plus the workspace's id.
    # (a ClientSecretCredential: a service principal, so the ARM token goes along).
    assert is_service_principal(env.arm.credential())
    for call in env.dbx.calls:
        assert call.headers["Authorization"] == f"Bearer {env.arm.token}"
        assert call.headers["X-Databricks-Azure-SP-Management-Token"] == env.arm.token
        assert call.headers["X-Databricks-Azure-Workspace-Resource-Id"] == RESOURCE_ID
    scopes = {call.body.get("scope") for call in env.arm.calls if call.path.endswith("/oauth2/v2.0/token")}
    assert scopes == {DATABRICKS_SCOPE, ARM_SCOPE}


class _UserCredential:
    """A signed-in user's credential (not a service principal): tokens from the ARM stand-in."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def get_token(self, *scopes: str, **kwargs: object) -> object:
        return self._inner.get_token(*scopes, **kwargs)  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["detected", "told"])
def test_no_sp_management_token_for_a_user(env: Env, how: str) -> None:
    inner = env.arm.credential()
    if how == "detected":
        client = workspace_client(env.dbx.url, _UserCredential(inner), RESOURCE_ID, ca_bundle=str(env.dbx.ca_path))
    else:
        client = workspace_client(
            env.dbx.url, inner, RESOURCE_ID, ca_bundle=str(env.dbx.ca_path), service_principal=False
        )
    assert client.current_user.me().user_name == USER

    assert env.dbx.calls
    for call in env.dbx.calls:
        assert call.headers["Authorization"] == f"Bearer {env.arm.token}"
        assert call.headers["X-Databricks-Azure-Workspace-Resource-Id"] == RESOURCE_ID
        assert "X-Databricks-Azure-SP-Management-Token" not in call.headers
    scopes = {call.body.get("scope") for call in env.arm.calls if call.path.endswith("/oauth2/v2.0/token")}
    assert scopes == {DATABRICKS_SCOPE}


def test_sp_management_token_when_told_it_is_a_service_principal(env: Env) -> None:
    client = workspace_client(
        env.dbx.url,
        _UserCredential(env.arm.credential()),
        RESOURCE_ID,
        ca_bundle=str(env.dbx.ca_path),
        service_principal=True,
    )
    client.current_user.me()
    (call,) = env.dbx.calls
    assert call.headers["X-Databricks-Azure-SP-Management-Token"] == env.arm.token
    assert call.headers["X-Databricks-Azure-Workspace-Resource-Id"] == RESOURCE_ID


def test_a_chain_that_signs_in_with_a_service_principal_sends_the_sp_token(env: Env) -> None:
    from azure.identity import ChainedTokenCredential

    chain = ChainedTokenCredential(_UserCredential(env.arm.credential()), env.arm.credential())
    user = ChainedTokenCredential(_UserCredential(env.arm.credential()))
    assert not is_service_principal(chain)  # no token yet: not known which one signs in
    workspace_client(env.dbx.url, user, RESOURCE_ID, ca_bundle=str(env.dbx.ca_path)).current_user.me()
    assert "X-Databricks-Azure-SP-Management-Token" not in env.dbx.calls[-1].headers

    class Failing:
        def get_token(self, *scopes: str, **kwargs: object) -> object:
            from azure.identity import CredentialUnavailableError

            raise CredentialUnavailableError("no user signed in")

    chain = ChainedTokenCredential(Failing(), env.arm.credential())  # like DefaultAzureCredential's environment
    workspace_client(env.dbx.url, chain, RESOURCE_ID, ca_bundle=str(env.dbx.ca_path)).current_user.me()
    assert env.dbx.calls[-1].headers["X-Databricks-Azure-SP-Management-Token"] == env.arm.token


def test_cluster_pypi_covers_the_bundles_third_party_imports() -> None:
    package_of = {"confluent_kafka": "confluent-kafka", "pydantic_settings": "pydantic-settings"}
    imports = bundle.third_party_imports(bundle.job_bundle())
    # Every one pinned: no "the runtime provides it" exception that cannot be checked from here.
    needed = {package_of.get(name, name) for name in imports}
    assert needed == set(CLUSTER_PYPI)
    for package in CLUSTER_PYPI:
        assert pypi_pin(package) == pin(package)  # each pinned in requirements.txt


def test_rerun_finds_the_cluster_and_creates_nothing(env: Env) -> None:
    first, cluster_id = make_cluster(env)
    before = len(env.dbx.calls)

    again, same_id = make_cluster(env)

    assert first.status == "created" and again.status == "exists", again.line
    assert same_id == cluster_id
    new_calls = [(c.method, c.path) for c in env.dbx.calls[before:]]
    assert ("POST", "/api/2.1/clusters/create") not in new_calls
    assert ("POST", "/api/2.0/libraries/install") not in new_calls


@pytest.mark.parametrize("state", ["TERMINATED", "TERMINATING"])
def test_a_terminated_cluster_is_started_again(env: Env, state: str) -> None:
    _, cluster_id = make_cluster(env)
    assert cluster_id is not None
    env.dbx.clusters[cluster_id].state = state  # auto-terminated after its idle minutes (or on the way)

    result, _ = make_cluster(env)

    assert result.status == "exists" and "was TERMINATED, started" in result.detail, result.line
    assert env.dbx.bodies("POST", "/api/2.1/clusters/start") == [{"cluster_id": cluster_id}]
    assert env.dbx.clusters[cluster_id].state == "RUNNING"


def test_a_runtime_the_workspace_does_not_offer_is_refused_with_the_ones_it_does(env: Env) -> None:
    env.dbx.spark_versions = [
        ("19.1.x-scala2.13", "19.1 (includes Apache Spark 4.2.0, Scala 2.13)"),
        ("18.0.x-scala2.13", "18.0 (includes Apache Spark 4.1.0, Scala 2.13)"),
    ]
    result, cluster_id = make_cluster(env)

    assert result.status == "failed" and cluster_id is None
    assert result.error_code == "SPARK_VERSION_NOT_OFFERED"
    assert result.detail == (
        "the workspace does not offer the runtime 19.0.x-scala2.13: "
        "runtimes with Apache Spark 4.2.0 here: 19.1.x-scala2.13"
    )
    assert "databricks.runtime" in (result.advice or "")
    assert ("POST", "/api/2.1/clusters/create") not in env.dbx.paths()

    env.dbx.spark_versions = [("16.4.x-scala2.13", "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.13)")]
    result, _ = make_cluster(env)
    assert "none has Apache Spark 4.2.0; the newest: 16.4.x-scala2.13" in result.detail


def test_a_cluster_that_terminates_while_starting_shows_the_reason(env: Env) -> None:
    env.dbx.fail_cluster(
        "AZURE_QUOTA_EXCEEDED_EXCEPTION",
        "CLIENT_ERROR",
        {"azure_error_code": "OperationNotAllowed"},
        "Operation could not be completed as it results in exceeding approved standardDSv2Family Cores quota.",
    )
    seen: list[StepResult] = []
    result, cluster_id = make_cluster(env, seen)

    assert result.status == "failed" and cluster_id is not None
    assert result.error_code == "AZURE_QUOTA_EXCEEDED_EXCEPTION"
    assert result.detail == (
        "TERMINATED: AZURE_QUOTA_EXCEEDED_EXCEPTION (CLIENT_ERROR) azure_error_code=OperationNotAllowed: "
        "Operation could not be completed as it results in exceeding approved standardDSv2Family Cores quota."
    )
    assert "quota" in (result.advice or "")
    assert ("POST", "/api/2.0/libraries/install") not in env.dbx.paths()


def test_a_library_that_fails_shows_its_messages_and_recovers_on_a_rerun(env: Env) -> None:
    env.dbx.fail_library("confluent-kafka", ["ERROR: No matching distribution found for confluent-kafka"])
    result, cluster_id = make_cluster(env)

    assert result.status == "failed" and cluster_id is not None
    assert result.error_code == "LIBRARY_FAILED"
    label = f"pypi {confluent_pin()}"
    assert result.detail == f"library {label} FAILED: ERROR: No matching distribution found for confluent-kafka"

    # Fixed (the package index is reachable again): the rerun uninstalls it, restarts, installs it.
    env.dbx.clear_library_faults()
    before = len(env.dbx.calls)
    seen: list[StepResult] = []
    again, same_id = make_cluster(env, seen)

    assert again.status == "exists" and same_id == cluster_id, again.line
    assert "libraries installed" in again.detail
    statuses = {json.dumps(e["library"]): e["status"] for e in env.dbx.clusters[cluster_id].libraries}
    assert statuses[json.dumps({"pypi": {"package": confluent_pin()}})] == "INSTALLED"
    assert set(statuses.values()) == {"INSTALLED"}
    assert env.dbx.bodies("POST", "/api/2.0/libraries/uninstall") == [
        {"cluster_id": cluster_id, "libraries": [{"pypi": {"package": confluent_pin()}}]}
    ]
    assert env.dbx.bodies("POST", "/api/2.1/clusters/restart") == [{"cluster_id": cluster_id}]
    new = [(c.method, c.path) for c in env.dbx.calls[before:]]
    order = [
        new.index(("POST", "/api/2.0/libraries/uninstall")),
        new.index(("POST", "/api/2.1/clusters/restart")),
        new.index(("POST", "/api/2.0/libraries/install")),
    ]
    assert order == sorted(order)
    lines = [r.detail for r in seen]
    assert f"FAILED or SKIPPED before: uninstalling {label}" in lines
    assert "restarting the cluster to remove the libraries (runs on it stop)" in lines
    assert "RESTARTING: Restarting Spark" in lines
    assert f"library {label}: INSTALLED" in lines
    assert lines.index("RESTARTING: Restarting Spark") < lines.index(f"library {label}: INSTALLED")


def test_a_skipped_library_fails_the_step_at_once_with_its_messages(env: Env) -> None:
    skipped = "Library installation skipped: not supported on this access mode"
    env.dbx.fail_library("confluent-kafka", [skipped], status="SKIPPED")

    started = time.monotonic()
    result, cluster_id = make_cluster(env, timeout_s=60)

    assert time.monotonic() - started < 30  # not the step's whole timeout
    assert (result.status, result.error_code) == ("failed", "LIBRARY_SKIPPED") and cluster_id is not None
    assert result.detail == f"library pypi {confluent_pin()} SKIPPED: {skipped}"

    env.dbx.clear_library_faults()
    again, _ = make_cluster(env)  # the rerun removes it, restarts, installs it again
    assert again.status == "exists" and "libraries installed" in again.detail, again.line
    assert env.dbx.bodies("POST", "/api/2.0/libraries/uninstall") == [
        {"cluster_id": cluster_id, "libraries": [{"pypi": {"package": confluent_pin()}}]}
    ]


def test_a_library_marked_for_uninstall_shows_until_the_restart(env: Env) -> None:
    _, cluster_id = make_cluster(env)
    assert cluster_id is not None
    env.client.libraries.uninstall(cluster_id, [Library(pypi=PythonPyPiLibrary(package=confluent_pin()))])
    status = {
        s.library.pypi.package: s.status.value
        for s in env.client.libraries.cluster_status(cluster_id)
        if s.library and s.library.pypi
    }
    assert status[confluent_pin()] == "UNINSTALL_ON_RESTART"

    env.client.clusters.restart(cluster_id)
    assert env.dbx.clusters[cluster_id].state == "RESTARTING"
    packages = {
        s.library.pypi.package for s in env.client.libraries.cluster_status(cluster_id) if s.library and s.library.pypi
    }
    assert confluent_pin() not in packages


def test_files_uploaded_as_workspace_files_then_found_unchanged(env: Env) -> None:
    files = [("launcher.py", b"import runpy\n"), ("jobs/producer.py", b"print('producer')\n")]
    seen: list[StepResult] = []
    result = upload_files(env.client, FOLDER, files, progress=seen.append)

    assert result.status == "created"
    assert result.detail == f"2 files, {len(files[0][1]) + len(files[1][1])} bytes uploaded, 0 unchanged"
    assert env.dbx.files == {LAUNCHER: files[0][1], f"{FOLDER}/jobs/producer.py": files[1][1]}
    assert not env.dbx.notebooks
    imports = env.dbx.bodies("POST", "/api/2.0/workspace/import")
    assert [(b["path"], b["format"], b["overwrite"]) for b in imports] == [
        (LAUNCHER, "AUTO", True),
        (f"{FOLDER}/jobs/producer.py", "AUTO", True),
    ]
    assert len(seen) == 2

    again = upload_files(env.client, FOLDER, files)
    assert again.status == "exists" and again.detail == "0 files, 0 bytes uploaded, 2 unchanged"
    assert len(env.dbx.bodies("POST", "/api/2.0/workspace/import")) == 2

    changed = upload_files(env.client, FOLDER, [files[0], ("jobs/producer.py", b"print('v2')\n")])
    assert changed.detail == "1 files, 12 bytes uploaded, 1 unchanged"
    assert env.dbx.files[f"{FOLDER}/jobs/producer.py"] == b"print('v2')\n"


def test_the_secret_is_stored_and_never_shown(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    value = "AAAAAAAAAAAAAAAAAAAAAx-bearer-token-value"
    caplog.set_level(logging.DEBUG)
    put_secret(env.client, "tweetstream", "x-bearer-token", SecretStr(value))
    put_secret(env.client, "tweetstream", "x-bearer-token", SecretStr(value))  # the scope exists now
    reference = secret_reference("tweetstream", "x-bearer-token")
    seen: list[StepResult] = []
    result, cluster_id = make_cluster(env, seen, spark_env_vars={"X_BEARER_TOKEN": reference})

    assert env.dbx.scopes == {"tweetstream": {"x-bearer-token": value}}
    assert len(env.dbx.bodies("POST", "/api/2.0/secrets/scopes/create")) == 1
    assert env.dbx.clusters[cluster_id or ""].spec["spark_env_vars"] == {
        "X_BEARER_TOKEN": "{{secrets/tweetstream/x-bearer-token}}"
    }
    assert "/api/2.0/secrets/put" in caplog.text  # the SDK logged the request (its body redacted)
    shown = [repr(r) for r in [result, *seen]] + [caplog.text]
    assert not [text for text in shown if value in text]


def test_an_existing_pending_cluster_is_waited_for_then_edited(env: Env) -> None:
    _, cluster_id = make_cluster(env)
    assert cluster_id is not None
    cluster = env.dbx.clusters[cluster_id]
    cluster.state, cluster.polls_left = "PENDING", 2  # starting again (someone started it)
    reference = secret_reference("tweetstream", "x-bearer-token")
    before = len(env.dbx.calls)
    seen: list[StepResult] = []

    result, _ = make_cluster(env, seen, spark_env_vars={"X_BEARER_TOKEN": reference})

    assert result.status == "exists" and "environment variables updated" in result.detail, result.line
    (edit,) = env.dbx.bodies("POST", "/api/2.1/clusters/edit")
    assert edit["spark_env_vars"] == {"X_BEARER_TOKEN": reference}
    new = [(c.method, c.path) for c in env.dbx.calls[before:]]
    at = new.index(("POST", "/api/2.1/clusters/edit"))
    assert new[:at].count(("GET", "/api/2.1/clusters/get")) == 2  # PENDING, then RUNNING: edited
    lines = [r.detail for r in seen]
    assert lines[0] == "PENDING: waiting until RUNNING or TERMINATED"
    assert lines.index("updating its environment variables (Databricks restarts it: runs on it now stop)") > 0


def test_the_standin_refuses_an_edit_unless_running_or_terminated(env: Env) -> None:
    _, cluster_id = make_cluster(env)
    assert cluster_id is not None
    env.dbx.clusters[cluster_id].state = "RESTARTING"
    spec = {k: v for k, v in env.dbx.clusters[cluster_id].spec.items()}
    with pytest.raises(DatabricksError) as caught:
        env.client.api_client.do("POST", "/api/2.1/clusters/edit", body={"cluster_id": cluster_id, **spec})
    assert caught.value.error_code == "INVALID_STATE"


def test_an_existing_cluster_gets_the_secret_reference_by_an_edit(env: Env) -> None:
    _, cluster_id = make_cluster(env)
    reference = secret_reference("tweetstream", "x-bearer-token")

    result, _ = make_cluster(env, spark_env_vars={"X_BEARER_TOKEN": reference})

    assert result.status == "exists" and "environment variables updated" in result.detail, result.line
    (edit,) = env.dbx.bodies("POST", "/api/2.1/clusters/edit")
    assert edit["cluster_id"] == cluster_id and edit["spark_env_vars"] == {"X_BEARER_TOKEN": reference}
    assert edit["custom_tags"] == {TAG_KEY: env.plan.config.tag_value}


def test_job_created_then_exists_then_reset_on_change(env: Env) -> None:
    _, cluster_id = make_cluster(env)
    assert cluster_id is not None
    name = "tweetstream-producer"

    created, job_id = ensure_job(
        env.client, env.plan, name, cluster_id=cluster_id, python_file=LAUNCHER, parameters=["producer"]
    )
    assert created.status == "created" and created.detail == f"job {job_id}"
    (body,) = env.dbx.bodies("POST", "/api/2.2/jobs/create")
    assert body == {
        "name": name,
        "tags": {TAG_KEY: env.plan.config.tag_value},
        "max_concurrent_runs": 1,
        "queue": {"enabled": False},
        "tasks": [
            {
                "task_key": "main",
                "existing_cluster_id": cluster_id,
                "spark_python_task": {"python_file": LAUNCHER, "parameters": ["producer"], "source": "WORKSPACE"},
            }
        ],
    }

    same, same_id = ensure_job(
        env.client, env.plan, name, cluster_id=cluster_id, python_file=LAUNCHER, parameters=["producer"]
    )
    assert (same.status, same_id) == ("exists", job_id)
    assert not env.dbx.bodies("POST", "/api/2.2/jobs/reset")

    changed, changed_id = ensure_job(
        env.client, env.plan, name, cluster_id=cluster_id, python_file=LAUNCHER, parameters=["producer", "--rate", "5"]
    )
    assert (changed.status, changed_id) == ("created", job_id)
    assert changed.detail.startswith("updated job")
    (reset,) = env.dbx.bodies("POST", "/api/2.2/jobs/reset")
    assert reset["job_id"] == job_id
    assert reset["new_settings"]["tasks"][0]["spark_python_task"]["parameters"] == ["producer", "--rate", "5"]
    assert len(env.dbx.bodies("POST", "/api/2.2/jobs/create")) == 1


def test_start_status_stop_of_a_streaming_job(env: Env) -> None:
    _, cluster_id = make_cluster(env)
    assert cluster_id is not None
    _, job_id = ensure_job(
        env.client, env.plan, "tweetstream-consumer", cluster_id=cluster_id, python_file=LAUNCHER, parameters=["c"]
    )
    assert run_status(env.client, job_id) is None

    run_id = start_run(env.client, job_id)
    assert start_run(env.client, job_id) == run_id  # active: no second run
    assert len(env.dbx.bodies("POST", "/api/2.2/jobs/run-now")) == 1

    pending = run_status(env.client, job_id)
    assert pending is not None and (pending.run_id, pending.life_cycle_state) == (run_id, "PENDING")
    running = run_status(env.client, job_id)
    assert running is not None and running.run_id == run_id
    assert (running.life_cycle_state, running.result_state) == ("RUNNING", None)
    assert running.start_time_ms and running.run_page_url

    stopped = stop_run(env.client, run_id, poll_s=0)
    assert (stopped.life_cycle_state, stopped.result_state) == ("TERMINATED", "CANCELED")
    assert stopped.end_time_ms and stopped.end_time_ms >= (stopped.start_time_ms or 0)
    after = run_status(env.client, job_id)
    assert after is not None and (after.run_id, after.result_state) == (run_id, "CANCELED")


def test_a_second_run_started_past_the_console_is_skipped_not_queued(env: Env) -> None:
    # Jobs API 2.2 queues such a run by default: it would start after Stop, with nobody watching.
    _, cluster_id = make_cluster(env)
    assert cluster_id is not None
    _, job_id = ensure_job(
        env.client, env.plan, "tweetstream-producer", cluster_id=cluster_id, python_file=LAUNCHER, parameters=["p"]
    )
    run_id = start_run(env.client, job_id)

    other = env.client.jobs.run_now(job_id).run_id  # two clicks racing, or the workspace's "Run now"

    skipped = env.client.jobs.get_run(other)
    assert skipped.state is not None and skipped.state.life_cycle_state is not None
    assert skipped.state.life_cycle_state.value == "SKIPPED"
    stopped = stop_run(env.client, run_id, poll_s=0)
    assert (stopped.life_cycle_state, stopped.result_state) == ("TERMINATED", "CANCELED")
    for _ in range(3):  # nothing starts later
        after = run_status(env.client, job_id)
        assert after is not None and after.life_cycle_state in ("TERMINATED", "SKIPPED")


def test_run_once_success_and_a_failed_run_with_its_error(env: Env) -> None:
    _, cluster_id = make_cluster(env)
    assert cluster_id is not None
    seen: list[StepResult] = []
    ok = run_once(
        env.client,
        cluster_id=cluster_id,
        python_file=LAUNCHER,
        parameters=["create-topic"],
        run_name="tweetstream create topic",
        progress=seen.append,
        poll_s=0,
    )
    assert (ok.life_cycle_state, ok.result_state, ok.error) == ("TERMINATED", "SUCCESS", None)
    assert ok.logs_tail == f"started {LAUNCHER}\ndone\n"
    assert [r.detail.split(" ", 2)[2] for r in seen] == [
        "PENDING: Waiting for cluster",
        "RUNNING: In run",
        "TERMINATED",
    ]
    # get-output asked for the task's run, not the submitted run (a 2.2 run is multi-task).
    task_run = env.dbx.runs[ok.run_id].task_run_id
    output_calls = [c.query["run_id"] for c in env.dbx.calls if c.path == "/api/2.2/jobs/runs/get-output"]
    assert output_calls == [str(task_run)]

    env.dbx.script_logs("jobs.create_topic", '{"outcome": "created"}')
    printed = run_once(
        env.client,
        cluster_id=cluster_id,
        python_file=LAUNCHER,
        parameters=["jobs.create_topic", "--topic", "tweets"],
        run_name="tweetstream create topic",
        poll_s=0,
    )
    assert printed.logs_tail == f'started {LAUNCHER}\n{{"outcome": "created"}}\n'

    env.dbx.fail_run("create_topic", "KafkaException: TOPIC_ALREADY_EXISTS", "Traceback (most recent call last): ...")
    failed = run_once(
        env.client,
        cluster_id=cluster_id,
        python_file=f"{FOLDER}/jobs/create_topic.py",
        parameters=[],
        run_name="tweetstream create topic",
        poll_s=0,
    )
    assert (failed.life_cycle_state, failed.result_state) == ("TERMINATED", "FAILED")
    assert failed.state_message == "Workload failed, see run output for details"
    assert failed.error == "KafkaException: TOPIC_ALREADY_EXISTS\nTraceback (most recent call last): ..."
    assert failed.logs_tail == f"started {FOLDER}/jobs/create_topic.py\nKafkaException: TOPIC_ALREADY_EXISTS\n"

    # A failed run's logs hold what the script printed before it failed.
    env.dbx.script_logs("create_topic", "connecting to 10.0.0.4:9092")
    printed_then_failed = run_once(
        env.client,
        cluster_id=cluster_id,
        python_file=f"{FOLDER}/jobs/create_topic.py",
        parameters=[],
        run_name="tweetstream create topic",
        poll_s=0,
    )
    assert printed_then_failed.result_state == "FAILED"
    assert printed_then_failed.logs_tail == (
        f"started {FOLDER}/jobs/create_topic.py\nconnecting to 10.0.0.4:9092\nKafkaException: TOPIC_ALREADY_EXISTS\n"
    )


def test_a_token_the_workspace_refuses_gives_a_failed_step(plan: Plan) -> None:
    with ArmStandIn() as arm, DatabricksStandIn("another-token") as dbx:
        client = workspace_client(dbx.url, arm.credential(), RESOURCE_ID, ca_bundle=str(dbx.ca_path))
        result, cluster_id = ensure_cluster(client, plan, poll_s=0)
    assert result.status == "failed" and cluster_id is None
    assert result.error_code == "UNAUTHENTICATED"
    assert "Invalid access token." in result.detail


def test_a_job_or_run_on_a_missing_cluster_fails_with_the_reason(env: Env) -> None:
    result, job_id = ensure_job(
        env.client, env.plan, "tweetstream-producer", cluster_id="0000-gone", python_file=LAUNCHER, parameters=[]
    )
    assert (result.status, job_id, result.error_code) == ("failed", 0, "INVALID_PARAMETER_VALUE")
    assert "Cluster 0000-gone does not exist" in result.detail

    with pytest.raises(DatabricksFailure) as caught:
        run_once(env.client, cluster_id="0000-gone", python_file=LAUNCHER, parameters=[], run_name="x", poll_s=0)
    assert isinstance(caught.value, OSError)  # callers that catch the SDK's errors (OSError) catch it too
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Cluster 0000-gone does not exist" in str(caught.value)


def test_a_run_that_outlasts_its_timeout_is_cancelled(env: Env) -> None:
    _, cluster_id = make_cluster(env)
    assert cluster_id is not None

    status = run_once(
        env.client, cluster_id=cluster_id, python_file=LAUNCHER, parameters=[], run_name="slow", timeout_s=0, poll_s=0
    )

    assert status.error == "still PENDING after 0 s: cancelled"
    assert env.dbx.bodies("POST", "/api/2.2/jobs/runs/cancel") == [{"run_id": status.run_id}]
    assert env.dbx.runs[status.run_id].cancelled


def test_managed_and_workload_identities_count_as_service_principals_and_a_cli_user_not() -> None:
    from azure.identity import AzureCliCredential, ManagedIdentityCredential, WorkloadIdentityCredential

    assert is_service_principal(ManagedIdentityCredential())
    workload = WorkloadIdentityCredential(tenant_id="t", client_id="c", token_file_path="/nonexistent/token")
    assert is_service_principal(workload)
    assert not is_service_principal(AzureCliCredential())


def test_the_volume_is_made_in_the_default_catalog_then_found_and_a_missing_catalog_is_named(
    env: Env, plan: Plan
) -> None:
    uc = install_unity_catalog(env.dbx, default_catalog="tweetstream_databricks")
    seen: list[StepResult] = []

    result, path = ensure_volume(env.client, plan, progress=seen.append)

    assert (result.type, result.status) == ("databricks.volume", "created"), result.line
    assert path == "/Volumes/tweetstream_databricks/tweetstream/streaming_state"
    assert result.detail == f"{path} (schema and volume made)"
    assert uc.volumes["tweetstream_databricks.tweetstream.streaming_state"]["volume_type"] == "MANAGED"
    assert [r.detail for r in seen] == ["schema tweetstream_databricks.tweetstream", "MANAGED volume"]
    # The bodies as the Unity Catalog API reference types them (schemas/create, volumes/create).
    assert env.dbx.bodies("POST", "/api/2.1/unity-catalog/volumes") == [
        {
            "catalog_name": "tweetstream_databricks",
            "schema_name": "tweetstream",
            "name": "streaming_state",
            "volume_type": "MANAGED",
        }
    ]

    before = len(env.dbx.calls)
    again, same = ensure_volume(env.client, plan)
    assert (again.status, same) == ("exists", path)
    assert {c.method for c in env.dbx.calls[before:]} == {"GET"}  # a rerun only reads

    elsewhere = replace(plan, names=replace(plan.names, uc_catalog="no_such_catalog"))
    refused, none = ensure_volume(env.client, elsewhere)
    assert (refused.status, refused.error_code, none) == ("failed", "CATALOG_DOES_NOT_EXIST", None)
    assert "databricks.catalog" in (refused.advice or "")


def test_a_hive_metastore_default_catalog_is_refused_before_anything_is_made(env: Env, plan: Plan) -> None:
    install_unity_catalog(env.dbx, default_catalog="hive_metastore")

    result, path = ensure_volume(env.client, plan)

    assert (result.status, result.error_code, path) == ("failed", "DEFAULT_CATALOG_IS_HIVE_METASTORE", None)
    assert result.name == "hive_metastore.tweetstream.streaming_state"
    assert "the workspace's default catalog is hive_metastore" in result.detail
    assert "databricks.catalog" in (result.advice or "")
    assert [c for c in env.dbx.calls if c.method == "POST"] == []

"""The HDInsight 5.1 Kafka cluster step with the real azure-mgmt-hdinsight against the ARM stand-in.

The resource group, the Kafka network and the storage account are made first with
provision.provision, as the wizard does; then tests/standins/arm_hdinsight.py serves the
cluster (Clusters_Create/Get/Delete at 2021-06-01, its Azure-AsyncOperation and Location polls,
Locations_CheckNameAvailability) and StorageAccounts_ListKeys. Operations take a few polls,
Retry-After: 0, so a creation that takes 20 minutes in Azure takes well under a second here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.hdinsight import HDInsightManagementClient
from pydantic import SecretStr

import backend.azure.hdinsight as hdinsight_module
from backend.azure.arm import StepResult
from backend.azure.hdinsight import (
    HDINSIGHT_CLUSTER,
    ClusterLogins,
    ClusterNotReady,
    cluster_gateway,
    delete_kafka_cluster,
    ensure_kafka_cluster,
    kafka_cluster_parameters,
    login_problems,
    new_logins,
)
from backend.azure.plan import Plan, build_plan
from backend.azure.plan_config import API_VERSIONS, TAG_KEY, load_config
from backend.azure.provision import provision
from tests.standins.arm_hdinsight import STORAGE_KEY1, STORAGE_KEY2, hdinsight_of, install_hdinsight
from tests.standins.azure_arm import ArmStandIn

EXAMPLE = Path(__file__).resolve().parents[2] / "backend" / "azure" / "example-plan.toml"
HDI_API = API_VERSIONS[HDINSIGHT_CLUSTER]
STORAGE_API = API_VERSIONS["Microsoft.Storage/storageAccounts"]

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_config(EXAMPLE))


@pytest.fixture
def arm(plan: Plan) -> Iterator[ArmStandIn]:
    with ArmStandIn(polls=2) as standin:
        install_hdinsight(standin)
        results = provision(plan, standin.credential(), client_options=standin.client_options())
        assert [r.status for r in results] == ["created"] * 6
        standin.calls.clear()
        yield standin


@pytest.fixture
def logins() -> ClusterLogins:
    return new_logins()


def ensure(arm: ArmStandIn, plan: Plan, logins: ClusterLogins, seen: list[StepResult] | None = None) -> StepResult:
    return ensure_kafka_cluster(
        plan,
        arm.credential(),
        plan.config.subscription_id,
        logins,
        client_options=arm.client_options(),
        progress=None if seen is None else seen.append,
    )


def cluster_path(plan: Plan) -> str:
    c, n = plan.config, plan.names
    return (
        f"/subscriptions/{c.subscription_id}/resourceGroups/{n.resource_group}/providers/Microsoft.HDInsight/"
        f"clusters/{n.hdinsight_cluster}"
    )


def calls(arm: ArmStandIn) -> list[tuple[str, str, str | None]]:
    """(method, path with the cluster's path as "CLUSTER", api-version) of each ARM call."""
    return [(c.method, c.path, c.api_version) for c in arm.arm_calls()]


def shape(value: Any) -> Any:
    """The keys of a JSON value, recursively (lists by their first item): what a spec example fixes."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


# The shape of CreateKafkaClusterWithKafkaRestProxy.json's request (Azure/azure-rest-api-specs,
# hdinsight .../stable/2021-06-01/examples) without kafkaRestProperties and the kafkamanagementnode
# role (the REST proxy, which the article does not use), plus what other 2021-06-01 examples add:
# location and tags (ClusterCreateParametersExtended), virtualNetworkProfile on each role
# (CreateHDInsightClusterWithCustomNetworkProperties.json), minSupportedTlsVersion
# (CreateHDInsightClusterWithTLS12.json). encryptDataDisks (Role, default false) is the one key
# the SDK adds on its own.
_LINUX = {"osProfile": {"linuxOperatingSystemProfile": {"username": "str", "password": "str"}}}
_ROLE = {
    "name": "str",
    "targetInstanceCount": "int",
    "hardwareProfile": {"vmSize": "str"},
    **_LINUX,
    "virtualNetworkProfile": {"id": "str", "subnet": "str"},
    "encryptDataDisks": "bool",
}
SPEC_SHAPE = {
    "location": "str",
    "tags": {TAG_KEY: "str"},
    "properties": {
        "clusterVersion": "str",
        "osType": "str",
        "tier": "str",
        "clusterDefinition": {
            "kind": "str",
            "componentVersion": {"Kafka": "str"},
            "configurations": {
                "gateway": {
                    "restAuthCredential.isEnabled": "bool",
                    "restAuthCredential.username": "str",
                    "restAuthCredential.password": "str",
                }
            },
        },
        "computeProfile": {"roles": [_ROLE]},
        "storageProfile": {"storageaccounts": [{"name": "str", "isDefault": "bool", "container": "str", "key": "str"}]},
        "minSupportedTlsVersion": "str",
    },
}


def test_create_reports_progress_and_sends_the_spec_example_shape_with_the_plan_values(
    arm: ArmStandIn, plan: Plan, logins: ClusterLogins
) -> None:
    seen: list[StepResult] = []

    result = ensure(arm, plan, logins, seen)

    assert (result.type, result.name, result.status) == (HDINSIGHT_CLUSTER, plan.names.hdinsight_cluster, "created")
    assert result.detail == "HDInsight 5.1, Kafka 3.2, 3 brokers (Standard_D12_v2, 2 disks each)"
    assert [(r.status, r.detail) for r in seen] == [
        (
            "creating",
            "HDInsight 5.1, Kafka 3.2, 3 brokers (Standard_D12_v2, 2 disks each); this takes about 20 minutes",
        ),
        ("creating", "clusterState AzureVMConfiguration"),
        ("creating", "clusterState HdInsightConfiguration"),
    ]

    cluster = cluster_path(plan)
    sub, n = plan.config.subscription_id, plan.names
    status = f"{cluster}/azureasyncoperations/hdi-op-1"
    assert calls(arm) == [
        ("GET", cluster, HDI_API),  # resume: is it there?
        ("POST", f"/subscriptions/{sub}/providers/Microsoft.HDInsight/locations/eastus/checkNameAvailability", HDI_API),
        (
            "POST",
            f"/subscriptions/{sub}/resourceGroups/{n.resource_group}/providers/Microsoft.Storage/storageAccounts/"
            f"{n.storage_account}/listKeys",
            STORAGE_API,
        ),
        ("PUT", cluster, HDI_API),
        ("GET", status, HDI_API),  # Azure-AsyncOperation: InProgress
        ("GET", cluster, HDI_API),  # its clusterState for the progress line
        ("GET", status, HDI_API),
        ("GET", cluster, HDI_API),
        ("GET", status, HDI_API),  # Succeeded
        ("GET", f"{cluster}/operationresults/hdi-op-1", HDI_API),  # final-state-via location
    ]
    check = next(c for c in arm.arm_calls() if c.path.endswith("/checkNameAvailability"))
    # As in HDI_Locations_CheckClusterNameAvailability.json.
    assert check.body == {"name": n.hdinsight_cluster, "type": "clusters"}

    body = next(c.body for c in arm.arm_calls() if c.method == "PUT")
    assert shape(body) == SPEC_SHAPE
    props = body["properties"]
    hdi = plan.config.hdinsight
    assert body["location"] == "eastus" and body["tags"] == {TAG_KEY: "tweetstream"}
    assert (props["clusterVersion"], props["osType"], props["tier"]) == ("5.1", "Linux", "Standard")
    assert props["clusterDefinition"]["kind"] == "kafka"
    assert props["clusterDefinition"]["componentVersion"] == {"Kafka": "3.2"}
    gateway = props["clusterDefinition"]["configurations"]["gateway"]
    assert gateway["restAuthCredential.isEnabled"] is True
    assert gateway["restAuthCredential.username"] == "admin"
    assert gateway["restAuthCredential.password"] == logins.gateway_password.get_secret_value()
    roles = {role["name"]: role for role in props["computeProfile"]["roles"]}
    assert {name: (r["targetInstanceCount"], r["hardwareProfile"]["vmSize"]) for name, r in roles.items()} == {
        "headnode": (2, hdi.head_node_size),
        "workernode": (hdi.worker_count, hdi.worker_node_size),
        "zookeepernode": (3, hdi.zookeeper_node_size),
    }
    assert roles["workernode"]["dataDisksGroups"] == [{"disksPerNode": hdi.disks_per_worker}]
    assert "dataDisksGroups" not in roles["headnode"] and "dataDisksGroups" not in roles["zookeepernode"]
    planned = next(r for r in plan.resources if r.type == HDINSIGHT_CLUSTER)
    for role in roles.values():
        assert role["virtualNetworkProfile"]["subnet"] == planned.properties["subnet"]
        assert role["virtualNetworkProfile"]["id"] == planned.properties["subnet"].rsplit("/subnets/", 1)[0]
        assert role["osProfile"]["linuxOperatingSystemProfile"] == {
            "username": "sshuser",
            "password": logins.ssh_password.get_secret_value(),
        }
    assert props["storageProfile"]["storageaccounts"] == [
        {
            "name": f"{n.storage_account}.blob.core.windows.net",
            "isDefault": True,
            "container": n.storage_container,
            "key": STORAGE_KEY1,
        }
    ]
    assert props["minSupportedTlsVersion"] == "1.2"

    stored = arm.resource(cluster)
    assert stored is not None
    assert (stored["properties"]["provisioningState"], stored["properties"]["clusterState"]) == ("Succeeded", "Running")


def test_no_password_or_storage_key_in_results_reprs_or_logs(
    arm: ArmStandIn, plan: Plan, logins: ClusterLogins, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = [logins.gateway_password.get_secret_value(), logins.ssh_password.get_secret_value(), STORAGE_KEY1]
    seen: list[StepResult] = []
    caplog.set_level(logging.DEBUG)

    results = [ensure(arm, plan, logins, seen), ensure(arm, plan, logins, seen)]
    arm.fail("PUT", "/Microsoft.HDInsight/clusters/", "QuotaExceeded", f"echoing {secrets[0]} back")
    delete_kafka_cluster(plan, arm.credential(), plan.config.subscription_id, client_options=arm.client_options())
    results.append(ensure(arm, plan, logins, seen))

    assert [r.status for r in results] == ["created", "exists", "failed"]
    texts = [repr(r) for r in [*results, *seen]] + [r.line for r in [*results, *seen]]
    texts += [repr(logins), str(logins), caplog.text]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert "echoing *** back" in results[-1].detail  # scrubbed, not dropped
    assert "**********" in repr(logins)  # SecretStr


def test_a_second_run_finds_the_cluster_without_a_put(arm: ArmStandIn, plan: Plan, logins: ClusterLogins) -> None:
    ensure(arm, plan, logins)
    arm.calls.clear()

    result = ensure(arm, plan, new_logins())

    assert (result.status, result.detail) == ("exists", "HDInsight 5.1.3000.0, clusterState Running")
    assert calls(arm) == [("GET", cluster_path(plan), HDI_API)]


def test_an_existing_cluster_that_differs_from_an_edited_plan_says_how(
    arm: ArmStandIn, plan: Plan, logins: ClusterLogins
) -> None:
    ensure(arm, plan, logins)
    data = load_config(EXAMPLE).model_dump()
    data["hdinsight"].update(worker_count=4, disks_per_worker=3)
    edited = build_plan(type(plan.config).model_validate(data))
    assert edited.names.hdinsight_cluster == plan.names.hdinsight_cluster

    result = ensure(arm, edited, logins)

    assert result.status == "exists"
    assert result.detail == (
        "HDInsight 5.1.3000.0, clusterState Running; differs from the plan (not changed here): "
        "workernode count 3, plan 4, workernode disks 2, plan 3"
    )


def test_a_creation_that_fails_then_a_rerun_says_to_delete_and_after_deleting_creates(
    arm: ArmStandIn, plan: Plan, logins: ClusterLogins
) -> None:
    arm.fail(
        "PUT",
        "/Microsoft.HDInsight/clusters/",
        "InternalServerError",
        "Internal server error occurred while processing the request.",
        during_operation=True,
    )

    first = ensure(arm, plan, logins)

    assert (first.status, first.error_code) == ("failed", "InternalServerError")
    assert "Internal server error occurred" in first.detail
    stored = arm.resource(cluster_path(plan))
    assert stored is not None and stored["properties"]["provisioningState"] == "Failed"

    arm.calls.clear()
    second = ensure(arm, plan, logins)

    assert (second.status, second.error_code) == ("failed", "ClusterFailed")
    assert "InternalServerError: Internal server error occurred" in second.detail
    assert "delete" in (second.advice or "") and "teardown" in (second.advice or "")
    assert [m for m, _, _ in calls(arm)] == ["GET"]  # no PUT on a failed cluster

    deleted = delete_kafka_cluster(
        plan, arm.credential(), plan.config.subscription_id, client_options=arm.client_options()
    )
    assert deleted.status == "deleted"
    assert ensure(arm, plan, logins).status == "created"


def test_a_quota_error_gives_the_quota_advice(arm: ArmStandIn, plan: Plan, logins: ClusterLogins) -> None:
    arm.fail(
        "PUT",
        "/Microsoft.HDInsight/clusters/",
        "QuotaExceeded",
        "Operation results in exceeding quota limits of Core. Maximum allowed: 10, Current in use: 0, "
        "Additional requested: 52.",
        status=409,
    )

    result = ensure(arm, plan, logins)

    assert (result.status, result.error_code) == ("failed", "QuotaExceeded")
    assert "Additional requested: 52" in result.detail
    assert "quota" in (result.advice or "") and "eastus" in (result.advice or "")
    assert arm.resource(cluster_path(plan)) is None


def test_a_name_taken_elsewhere_in_azure_is_found_before_any_put(
    arm: ArmStandIn, plan: Plan, logins: ClusterLogins
) -> None:
    hdinsight_of(arm).taken_names.add(plan.names.hdinsight_cluster)

    result = ensure(arm, plan, logins)

    assert (result.status, result.error_code) == ("failed", "AlreadyExists")
    assert f"Cluster name '{plan.names.hdinsight_cluster}' is unavailable" in result.detail
    assert "names.hdinsight_cluster" in (result.advice or "") and "azurehdinsight.net" in (result.advice or "")
    assert "PUT" not in [m for m, _, _ in calls(arm)]


def test_a_cluster_without_our_tag_is_neither_used_nor_deleted(
    arm: ArmStandIn, plan: Plan, logins: ClusterLogins
) -> None:
    ensure(arm, plan, logins)
    stored = arm.resource(cluster_path(plan))
    assert stored is not None
    stored["tags"] = {}
    arm.calls.clear()

    result = ensure(arm, plan, logins)
    deleted = delete_kafka_cluster(
        plan, arm.credential(), plan.config.subscription_id, client_options=arm.client_options()
    )

    assert (result.status, result.error_code) == ("failed", "NameTakenNotOurs")
    assert (deleted.status, deleted.error_code) == ("failed", "NameTakenNotOurs")
    assert [m for m, _, _ in calls(arm)] == ["GET", "GET"]
    assert arm.resource(cluster_path(plan)) is not None


def test_a_creation_an_earlier_run_started_is_waited_for(arm: ArmStandIn, plan: Plan, logins: ClusterLogins) -> None:
    # An earlier run sent the PUT and stopped (the app was closed): nobody polls that operation.
    client = HDInsightManagementClient(arm.credential(), plan.config.subscription_id, **arm.client_options())
    parameters = kafka_cluster_parameters(plan, logins, STORAGE_KEY2)
    client.clusters.begin_create(plan.names.resource_group, plan.names.hdinsight_cluster, parameters, polling=False)
    hdinsight_of(arm).advance_on_get = True  # time passes between this run's GETs
    arm.calls.clear()
    seen: list[StepResult] = []

    result = ensure(arm, plan, logins, seen)

    assert (result.status, result.detail) == (
        "created",
        "HDInsight 5.1, Kafka 3.2, 3 brokers (Standard_D12_v2, 2 disks each); started by an earlier run",
    )
    assert [r.detail for r in seen] == ["clusterState HdInsightConfiguration (started by an earlier run)"]
    assert "PUT" not in [m for m, _, _ in calls(arm)]


def test_a_creation_that_outlasts_the_wait_says_to_run_again_later(
    arm: ArmStandIn, plan: Plan, logins: ClusterLogins, monkeypatch
) -> None:
    client = HDInsightManagementClient(arm.credential(), plan.config.subscription_id, **arm.client_options())
    parameters = kafka_cluster_parameters(plan, logins, STORAGE_KEY2)
    client.clusters.begin_create(plan.names.resource_group, plan.names.hdinsight_cluster, parameters, polling=False)
    monkeypatch.setattr(hdinsight_module, "CREATION_WAIT_S", 0.0)  # nobody advances it: it stays InProgress

    result = ensure(arm, plan, logins)

    assert (result.status, result.error_code) == ("failed", "ClusterStillCreating")
    assert "run again later" in (result.advice or "")


def test_cluster_gateway_is_the_https_endpoint(plan: Plan, logins: ClusterLogins) -> None:
    with ArmStandIn(polls=2) as arm:
        install_hdinsight(arm, gateway=("127.0.0.1", 8443))
        provision(plan, arm.credential(), client_options=arm.client_options())
        options = arm.client_options()
        sub = plan.config.subscription_id
        with pytest.raises(ResourceNotFoundError):
            cluster_gateway(plan, arm.credential(), sub, client_options=options)

        ensure(arm, plan, logins)

        assert cluster_gateway(plan, arm.credential(), sub, client_options=options) == "https://127.0.0.1:8443"
        stored = arm.resource(cluster_path(plan))
        assert stored is not None
        endpoints = {e["name"]: (e["location"], e["port"]) for e in stored["properties"]["connectivityEndpoints"]}
        assert endpoints["SSH"] == (f"{plan.names.hdinsight_cluster}-ssh.azurehdinsight.net", 22)
        stored["properties"]["connectivityEndpoints"][1]["port"] = 443
        assert cluster_gateway(plan, arm.credential(), sub, client_options=options) == "https://127.0.0.1"
        del stored["properties"]["connectivityEndpoints"]
        with pytest.raises(ClusterNotReady, match="no HTTPS endpoint"):
            cluster_gateway(plan, arm.credential(), sub, client_options=options)


def test_delete_waits_for_the_operation_and_an_absent_cluster_is_not_there(
    arm: ArmStandIn, plan: Plan, logins: ClusterLogins
) -> None:
    ensure(arm, plan, logins)
    arm.calls.clear()
    seen: list[StepResult] = []
    sub, options = plan.config.subscription_id, arm.client_options()

    result = delete_kafka_cluster(plan, arm.credential(), sub, client_options=options, progress=seen.append)

    assert (result.status, result.detail) == ("deleted", "")
    assert [r.status for r in seen] == ["deleting"]
    cluster = cluster_path(plan)
    assert calls(arm) == [
        ("GET", cluster, HDI_API),
        ("DELETE", cluster, HDI_API),
        ("GET", f"{cluster}/operationresults/hdi-op-2", HDI_API),  # 202 Location: still deleting
        ("GET", f"{cluster}/operationresults/hdi-op-2", HDI_API),  # 200: gone
    ]
    assert arm.resource(cluster) is None
    again = delete_kafka_cluster(plan, arm.credential(), sub, client_options=options)
    assert (again.status, again.detail) == ("deleted", "not there")


def test_logins_meet_hdinsights_rules_and_bad_ones_are_refused_before_any_call(arm: ArmStandIn, plan: Plan) -> None:
    drawn = [new_logins() for _ in range(50)]
    assert all(login_problems(logins) == [] for logins in drawn)
    passwords = {lg.gateway_password.get_secret_value() for lg in drawn} | {
        lg.ssh_password.get_secret_value() for lg in drawn
    }
    assert len(passwords) == 100  # random, never reused

    weak = ClusterLogins(SecretStr("Zq9short"), SecretStr("Sshuser123"))
    problems = login_problems(weak)
    assert "the cluster login password must be at least 10 characters" in problems
    assert "the SSH password must not contain 3 consecutive characters of a user name" in problems

    result = ensure(arm, plan, weak)

    assert (result.status, result.error_code) == ("failed", "InvalidClusterLogin")
    assert "Zq9short" not in result.line and "Sshuser123" not in result.line
    assert [c.method for c in arm.arm_calls()] == ["GET"]  # only the look for an existing cluster

    # An SSH password HDInsight refuses (under 10 characters, no non-alphanumeric) is refused here first.
    weak_ssh = ClusterLogins(new_logins().gateway_password, SecretStr("Kq7wzpXl"))
    assert login_problems(weak_ssh) == [
        "the SSH password must be 10-72 characters",
        "the SSH password must contain a non-alphanumeric character",
    ]
    refused = ensure(arm, plan, weak_ssh)
    assert (refused.status, refused.error_code) == ("failed", "InvalidClusterLogin")
    assert "Kq7wzpXl" not in refused.line
    assert [c.method for c in arm.arm_calls()] == ["GET", "GET"]  # again no PUT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p.update(clusterVersion="4.0"),
            "cluster version '4.0' is not supported: HDInsight 3.6, 4.0 and 5.0",
        ),
        (
            lambda p: p["computeProfile"].update(roles=p["computeProfile"]["roles"][:1]),
            "missing: workernode, zookeepernode",
        ),
        (
            lambda p: p["computeProfile"]["roles"][1].pop("dataDisksGroups"),
            "a Kafka cluster needs dataDisksGroups",
        ),
        (
            lambda p: [
                role["osProfile"]["linuxOperatingSystemProfile"].update(password="Kq7wzpXlmR")
                for role in p["computeProfile"]["roles"]
            ],
            "role headnode: the SSH password must contain a non-alphanumeric character",
        ),
    ],
)
def test_the_standin_refuses_what_hdinsight_refuses(
    arm: ArmStandIn, plan: Plan, logins: ClusterLogins, change: Any, message: str
) -> None:
    client = HDInsightManagementClient(arm.credential(), plan.config.subscription_id, **arm.client_options())
    body = kafka_cluster_parameters(plan, logins, STORAGE_KEY1).serialize()
    change(body["properties"])

    with pytest.raises(HttpResponseError) as caught:
        client.clusters.begin_create(plan.names.resource_group, plan.names.hdinsight_cluster, body).result()

    assert caught.value.status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "BadRequest"
    assert message in caught.value.error.message


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("natGateway", "the subnet has no outbound connectivity: attach a NAT gateway"),
        ("networkSecurityGroup", "the subnet has no network security group (required by the standard load balancer)"),
    ],
)
def test_a_subnet_without_its_nat_gateway_or_nsg_is_refused(
    arm: ArmStandIn, plan: Plan, logins: ClusterLogins, missing: str, message: str
) -> None:
    """HDInsight on Standard Load Balancers: what the build attaches to the subnet is what creation needs."""
    vnet_id = next(str(r.resource_id) for r in plan.resources if r.type == "Microsoft.Network/virtualNetworks")
    vnet = arm.resource(vnet_id)
    assert vnet is not None
    subnet = vnet["properties"]["subnets"][0]["properties"]
    assert subnet["natGateway"]["id"].endswith(plan.names.kafka_nat_gateway)
    assert subnet["networkSecurityGroup"]["id"].endswith(plan.names.kafka_nsg)
    assert subnet["defaultOutboundAccess"] is False
    subnet.pop(missing)

    result = ensure(arm, plan, logins)

    assert (result.status, result.error_code) == ("failed", "BadRequest")
    assert message in result.detail

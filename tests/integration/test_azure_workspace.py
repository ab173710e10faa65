"""The Databricks workspace and the two VNet peerings, with the real SDKs against the ARM stand-in.

The stand-in (tests/standins/azure_arm.py with tests/standins/arm_databricks.py) answers as the
specs say: the workspace PUT 201 with ``Location``, the network peering PUT 201 with
``Azure-AsyncOperation``; operations take 2 polls with Retry-After: 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.azure.arm import STORAGE_ACCOUNT, StepResult
from backend.azure.plan import Plan, build_plan
from backend.azure.plan_config import API_VERSIONS, TAG_KEY, load_config
from backend.azure.provision import provision
from backend.azure.workspace import (
    KAFKA_PEERING,
    WORKSPACE,
    WORKSPACE_PEERING,
    delete_kafka_peering,
    delete_workspace,
    ensure_peerings,
    ensure_workspace,
    workspace_info,
)
from tests.standins.arm_databricks import install_databricks
from tests.standins.azure_arm import ArmStandIn

EXAMPLE = Path(__file__).resolve().parents[2] / "backend" / "azure" / "example-plan.toml"
HOST = "adb-1234567890123456.7.azuredatabricks.net"
# Azure does not document the managed network's name ("workers-vnet" today): the stand-in names it otherwise
# here, so only a name read from the workspace peers with it.
MANAGED_VNET = "dbx-managed-vnet-7f3a"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_config(EXAMPLE))


def _standin(connect: bool = True) -> Iterator[ArmStandIn]:
    with ArmStandIn(polls=2) as standin:
        install_databricks(standin, workspace_host=HOST, connect_peerings=connect, managed_vnet=MANAGED_VNET)
        yield standin


@pytest.fixture
def arm() -> Iterator[ArmStandIn]:
    yield from _standin()


@pytest.fixture
def stuck_arm() -> Iterator[ArmStandIn]:
    yield from _standin(connect=False)


def ids(plan: Plan) -> dict[str, str]:
    sub, n = plan.config.subscription_id, plan.names
    group = f"/subscriptions/{sub}/resourceGroups/{n.resource_group}/providers"
    workspace = f"{group}/Microsoft.Databricks/workspaces/{n.databricks_workspace}"
    kafka_vnet = f"{group}/Microsoft.Network/virtualNetworks/{n.kafka_vnet}"
    managed_rg = f"/subscriptions/{sub}/resourceGroups/{n.databricks_managed_resource_group}"
    return {
        "workspace": workspace,
        "workspace_peering": f"{workspace}/virtualNetworkPeerings/{n.databricks_peering}",
        "kafka_vnet": kafka_vnet,
        "kafka_peering": f"{kafka_vnet}/virtualNetworkPeerings/{n.kafka_peering}",
        "managed_rg": managed_rg,
        "managed_vnet": f"{managed_rg}/providers/Microsoft.Network/virtualNetworks/{MANAGED_VNET}",
    }


ACCESS_CONNECTOR = "Microsoft.Databricks/accessConnectors"  # Azure makes it; the wizard plans none


def in_managed_group(arm: ArmStandIn, plan: Plan) -> list[str]:
    """The types of what the stand-in holds in the workspace's managed resource group, sorted."""
    group = ids(plan)["managed_rg"].lower() + "/"
    return sorted(resource["type"] for key, resource in arm.state.resources.items() if key.startswith(group))


def resource_calls(arm: ArmStandIn) -> list[tuple[str, str, str | None]]:
    """Calls on resources (not operation polls), paths as sent."""
    return [
        (call.method, call.path, call.api_version)
        for call in arm.arm_calls()
        if not any(part in call.path.lower() for part in ("/operations/", "/operationresults/", "/operationstatus/"))
    ]


def base_steps(arm: ArmStandIn, plan: Plan) -> None:
    assert [r.status for r in provision(plan, arm.credential(), client_options=arm.client_options())] == ["created"] * 6


def make_workspace(arm: ArmStandIn, plan: Plan) -> None:
    result, info = ensure_workspace(plan, arm.credential(), client_options=arm.client_options())
    assert result.status == "created" and info is not None


def test_the_workspace_is_created_with_the_spec_body_and_progress(arm: ArmStandIn, plan: Plan) -> None:
    base_steps(arm, plan)
    arm.calls.clear()
    seen: list[StepResult] = []

    result, info = ensure_workspace(
        plan, arm.credential(), client_options=arm.client_options(), progress=seen.append, progress_every_s=0
    )

    p = ids(plan)
    assert (result.type, result.status) == (WORKSPACE, "created")
    assert f"https://{HOST}" in result.detail and plan.names.databricks_managed_resource_group in result.detail
    assert info is not None
    assert info.url == f"https://{HOST}"
    assert info.resource_id == p["workspace"]
    assert info.workspace_id.isdigit()
    assert seen[0].status == "creating" and "several minutes" in seen[0].detail
    assert seen[-1] == result
    assert all(r.status == "creating" for r in seen[:-1])
    api = API_VERSIONS[WORKSPACE]
    assert resource_calls(arm)[:2] == [("GET", p["workspace"], api), ("PUT", p["workspace"], api)]
    polls = [c.path for c in arm.arm_calls() if "/operationResults/" in c.path]
    assert polls and all(path.startswith(p["workspace"] + "/operationResults/") for path in polls)

    # The body, against WorkspaceCreateWithParameters.json (2026-01-01): location, sku premium,
    # properties.computeMode Hybrid, managedResourceGroupId, parameters as {"value": ...} objects;
    # plus the tag, no custom network (the workspace gets its managed one, which we peer), and
    # Unity Catalog as the default catalog's type (as WorkspaceCreate.json; the spec's default is HiveMetastore).
    put = next(c for c in arm.arm_calls() if c.method == "PUT")
    assert put.body == {
        "location": "eastus",
        "tags": {TAG_KEY: "tweetstream"},
        "sku": {"name": "premium"},
        "properties": {
            "computeMode": "Hybrid",
            "managedResourceGroupId": p["managed_rg"],
            "defaultCatalog": {"initialType": "UnityCatalog"},
            "parameters": {"enableNoPublicIp": {"value": True}, "vnetAddressPrefix": {"value": "10.139"}},
        },
    }
    # Azure made the managed resource group and its network.
    vnet = arm.resource(p["managed_vnet"])
    assert vnet is not None and vnet["properties"]["addressSpace"]["addressPrefixes"] == ["10.139.0.0/16"]
    assert workspace_info(plan, arm.credential(), client_options=arm.client_options()) == info


def test_a_second_run_finds_the_workspace(arm: ArmStandIn, plan: Plan) -> None:
    base_steps(arm, plan)
    make_workspace(arm, plan)
    arm.calls.clear()

    result, info = ensure_workspace(plan, arm.credential(), client_options=arm.client_options())

    assert (result.status, result.detail) == ("exists", f"https://{HOST}")
    assert info is not None and info.url == f"https://{HOST}"
    assert [c.method for c in arm.arm_calls()] == ["GET"]


def test_a_workspace_an_earlier_run_left_being_made_is_waited_for(arm: ArmStandIn, plan: Plan) -> None:
    from azure.mgmt.databricks import AzureDatabricksManagementClient

    from backend.azure.workspace import _workspace_body

    base_steps(arm, plan)
    client = AzureDatabricksManagementClient(arm.credential(), plan.config.subscription_id, **arm.client_options())
    n = plan.names
    # An earlier run sent the PUT and stopped before the operation finished.
    client.workspaces.begin_create_or_update(
        n.resource_group, n.databricks_workspace, _workspace_body(plan), polling=False
    )
    arm.calls.clear()
    seen: list[StepResult] = []

    result, info = ensure_workspace(
        plan, arm.credential(), client_options=arm.client_options(), progress=seen.append, progress_every_s=0.01
    )

    assert (result.status, info is not None) == ("exists", True)
    assert "Accepted: an earlier run started it" in seen[0].detail
    assert "PUT" not in [c.method for c in arm.arm_calls()]


def test_a_workspace_not_made_by_the_wizard_is_not_touched(arm: ArmStandIn, plan: Plan) -> None:
    base_steps(arm, plan)
    make_workspace(arm, plan)
    arm.resource(ids(plan)["workspace"])["tags"] = {}  # type: ignore[index]
    arm.calls.clear()

    result, info = ensure_workspace(plan, arm.credential(), client_options=arm.client_options())

    assert (result.status, result.error_code, info) == ("failed", "NameTakenNotOurs", None)
    assert "name_prefix" in (result.advice or "")
    assert [c.method for c in arm.arm_calls()] == ["GET"]
    assert delete_workspace(plan, arm.credential(), client_options=arm.client_options()).status == "kept"


def test_a_policy_denial_says_what_to_do(arm: ArmStandIn, plan: Plan) -> None:
    base_steps(arm, plan)
    arm.fail(
        "PUT",
        "/Microsoft.Databricks/workspaces/",
        "RequestDisallowedByPolicy",
        "Resource 'tweetstream-databricks' was disallowed by policy. Policy identifiers: "
        '\'[{"policyAssignment":{"name":"Allowed resource types"}}]\'.',
        status=403,
    )

    result, info = ensure_workspace(plan, arm.credential(), client_options=arm.client_options())

    assert (result.status, result.error_code, info) == ("failed", "RequestDisallowedByPolicy", None)
    assert "was disallowed by policy" in result.detail
    assert "policy denying Microsoft.Databricks/workspaces" in (result.advice or "")
    assert arm.resource(ids(plan)["workspace"]) is None


def test_a_workspace_that_ended_failed_is_made_again(arm: ArmStandIn, plan: Plan) -> None:
    base_steps(arm, plan)
    arm.fail(
        "PUT", "/Microsoft.Databricks/workspaces/", "InternalServerError", "Deployment failed.", during_operation=True
    )

    first, _ = ensure_workspace(plan, arm.credential(), client_options=arm.client_options())

    assert (first.status, first.error_code) == ("failed", "InternalServerError")
    assert arm.resource(ids(plan)["workspace"])["properties"]["provisioningState"] == "Failed"  # type: ignore[index]
    seen: list[StepResult] = []
    second, info = ensure_workspace(plan, arm.credential(), client_options=arm.client_options(), progress=seen.append)
    assert (second.status, info is not None) == ("created", True)
    assert "again (it was Failed)" in seen[0].detail


def test_the_peerings_reach_connected(arm: ArmStandIn, plan: Plan) -> None:
    base_steps(arm, plan)
    make_workspace(arm, plan)
    arm.calls.clear()
    seen: list[StepResult] = []

    results = ensure_peerings(
        plan, arm.credential(), client_options=arm.client_options(), progress=seen.append, timeout_s=5, poll_s=0.01
    )

    n, p = plan.names, ids(plan)
    assert [(r.type, r.name, r.status, r.detail) for r in results] == [
        (WORKSPACE_PEERING, n.databricks_peering, "created", "Connected"),
        (KAFKA_PEERING, n.kafka_peering, "created", "Connected"),
    ]
    states = [r.detail.rsplit(": ", 1)[-1] for r in seen if r.status == "creating" and ": " in r.detail]
    assert states[0] == "Initiated" and states[-1] == "Connected"  # the first side waits for the second
    puts = [(c.path, c.api_version, c.body) for c in arm.arm_calls() if c.method == "PUT"]
    # Bodies as in WorkspaceVirtualNetworkPeeringCreateOrUpdate.json and VirtualNetworkPeeringCreate.json.
    assert puts == [
        (
            p["workspace_peering"],
            API_VERSIONS[WORKSPACE_PEERING],
            {
                "properties": {
                    "remoteVirtualNetwork": {"id": p["kafka_vnet"]},
                    "allowVirtualNetworkAccess": True,
                    "allowForwardedTraffic": True,
                }
            },
        ),
        (
            p["kafka_peering"],
            API_VERSIONS[KAFKA_PEERING],
            {
                "properties": {
                    "allowVirtualNetworkAccess": True,
                    "allowForwardedTraffic": True,
                    "remoteVirtualNetwork": {"id": p["managed_vnet"]},
                }
            },
        ),
    ]
    workspace_side = arm.resource(p["workspace_peering"])
    assert workspace_side is not None
    assert workspace_side["properties"]["databricksVirtualNetwork"]["id"] == p["managed_vnet"]

    arm.calls.clear()
    again = ensure_peerings(plan, arm.credential(), client_options=arm.client_options(), timeout_s=5, poll_s=0.01)
    assert [(r.status, r.detail) for r in again] == [("exists", "Connected"), ("exists", "Connected")]
    assert {c.method for c in arm.arm_calls()} == {"GET"}


def test_a_peering_that_never_connects_times_out_saying_where(stuck_arm: ArmStandIn, plan: Plan) -> None:
    arm = stuck_arm
    base_steps(arm, plan)
    make_workspace(arm, plan)
    seen: list[StepResult] = []

    results = ensure_peerings(
        plan, arm.credential(), client_options=arm.client_options(), progress=seen.append, timeout_s=0.3, poll_s=0.05
    )

    assert [(r.type, r.status, r.error_code) for r in results] == [
        (WORKSPACE_PEERING, "failed", "PeeringNotConnected"),
        (KAFKA_PEERING, "failed", "PeeringNotConnected"),
    ]
    assert "the workspace side is still Initiated after 0.3 s" in results[0].detail
    assert "the Kafka side is still Initiated" in results[1].detail
    assert "do not overlap" in (results[0].advice or "") and plan.names.kafka_peering in (results[0].advice or "")
    waits = [r for r in seen if "waiting for Connected" in r.detail]
    assert waits and all("workspace side Initiated, Kafka side Initiated" in r.detail for r in waits)


def test_the_peering_step_needs_the_workspace(arm: ArmStandIn, plan: Plan) -> None:
    base_steps(arm, plan)

    results = ensure_peerings(plan, arm.credential(), client_options=arm.client_options(), timeout_s=1, poll_s=0.01)

    assert [(r.type, r.status, r.error_code) for r in results] == [(WORKSPACE_PEERING, "failed", "WorkspaceNotReady")]
    assert "Create the workspace first" in (results[0].advice or "")


def test_delete_the_kafka_peering_then_the_workspace(arm: ArmStandIn, plan: Plan) -> None:
    base_steps(arm, plan)
    make_workspace(arm, plan)
    options = arm.client_options()
    ensure_peerings(plan, arm.credential(), client_options=options, timeout_s=5, poll_s=0.01)
    p = ids(plan)

    deleted = delete_kafka_peering(plan, arm.credential(), client_options=options)

    assert (deleted.type, deleted.status) == (KAFKA_PEERING, "deleted")
    assert arm.resource(p["kafka_peering"]) is None
    assert "Disconnected" in deleted.detail
    # The workspace side now says Disconnected; the peering step makes both again.
    again = ensure_peerings(plan, arm.credential(), client_options=options, timeout_s=5, poll_s=0.01)
    assert [(r.status, r.detail) for r in again] == [("created", "Connected"), ("created", "Connected")]

    gone = delete_workspace(plan, arm.credential(), client_options=options)

    assert (gone.type, gone.status) == (WORKSPACE, "deleted")
    assert plan.names.databricks_managed_resource_group in gone.detail and plan.names.databricks_peering in gone.detail
    for key in ("workspace", "workspace_peering", "managed_rg", "managed_vnet"):
        assert arm.resource(p[key]) is None, key
    # Nothing of the managed group is left: no DBFS storage account, no access connector (forceDeletion).
    assert in_managed_group(arm, plan) == []
    deletes = [c for c in arm.arm_calls() if c.method == "DELETE"]
    assert (deletes[-1].path, deletes[-1].query.get("forceDeletion")) == (p["workspace"], "true")
    assert workspace_info(plan, arm.credential(), client_options=options) is None
    assert delete_workspace(plan, arm.credential(), client_options=options).detail == "it was not there"


def test_a_workspace_deleted_without_force_leaves_its_unity_catalog_storage(arm: ArmStandIn, plan: Plan) -> None:
    """What delete_workspace's forceDeletion avoids: the stand-in keeps, as Azure documents, the managed
    group's storage account and access connector of a Unity Catalog workspace deleted without it."""
    base_steps(arm, plan)
    make_workspace(arm, plan)
    p = ids(plan)
    assert in_managed_group(arm, plan) == [ACCESS_CONNECTOR, "Microsoft.Network/virtualNetworks", STORAGE_ACCOUNT]
    from azure.mgmt.databricks import AzureDatabricksManagementClient

    client = AzureDatabricksManagementClient(arm.credential(), plan.config.subscription_id, **arm.client_options())

    client.workspaces.begin_delete(plan.names.resource_group, plan.names.databricks_workspace).result()

    assert arm.resource(p["workspace"]) is None and arm.resource(p["managed_vnet"]) is None
    assert arm.resource(p["managed_rg"]) is not None
    assert in_managed_group(arm, plan) == [ACCESS_CONNECTOR, STORAGE_ACCOUNT]
    delete = [c for c in arm.arm_calls() if c.method == "DELETE"][-1]
    assert (delete.path, delete.query.get("forceDeletion", "false")) == (p["workspace"], "false")

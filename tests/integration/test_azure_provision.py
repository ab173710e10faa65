"""The plan's first ARM steps, provisioned with the real Azure SDKs against the ARM stand-in.

The stand-in (tests/standins/azure_arm.py) serves HTTPS with a certificate made at start and
Entra ID's token endpoint for ClientSecretCredential; operations take 2 polls, Retry-After: 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.azure.arm import (
    NAT_GATEWAY,
    NETWORK_SECURITY_GROUP,
    PUBLIC_IP,
    RESOURCE_GROUP,
    STORAGE_ACCOUNT,
    VIRTUAL_NETWORK,
    StepResult,
)
from backend.azure.plan import Plan, build_plan
from backend.azure.plan_config import API_VERSIONS, TAG_KEY, load_config
from backend.azure.provision import TeardownNotConfirmed, find_tagged, provision, teardown
from tests.standins.azure_arm import ArmStandIn

EXAMPLE = Path(__file__).resolve().parents[2] / "backend" / "azure" / "example-plan.toml"
RG_API = API_VERSIONS[RESOURCE_GROUP]
NET_API = API_VERSIONS[VIRTUAL_NETWORK]
STORAGE_API = API_VERSIONS[STORAGE_ACCOUNT]

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_config(EXAMPLE))


@pytest.fixture
def arm() -> Iterator[ArmStandIn]:
    with ArmStandIn(polls=2) as standin:
        yield standin


def run(arm: ArmStandIn, plan: Plan, progress: list[StepResult] | None = None) -> list[StepResult]:
    return provision(
        plan,
        arm.credential(),
        client_options=arm.client_options(),
        progress=None if progress is None else progress.append,
    )


def paths(plan: Plan) -> dict[str, str]:
    sub, n = plan.config.subscription_id, plan.names
    group = f"/subscriptions/{sub}/resourceGroups/{n.resource_group}/providers"
    return {
        "rg": f"/subscriptions/{sub}/resourcegroups/{n.resource_group}",
        "pip": f"{group}/Microsoft.Network/publicIPAddresses/{n.kafka_public_ip}",
        "nat": f"{group}/Microsoft.Network/natGateways/{n.kafka_nat_gateway}",
        "nsg": f"{group}/Microsoft.Network/networkSecurityGroups/{n.kafka_nsg}",
        "vnet": f"{group}/Microsoft.Network/virtualNetworks/{n.kafka_vnet}",
        "storage": f"{group}/Microsoft.Storage/storageAccounts/{n.storage_account}",
    }


def resource_calls(arm: ArmStandIn) -> list[tuple[str, str, str | None]]:
    """The calls on the resources themselves (not the operation-status polls), lower-cased paths."""
    return [
        (call.method, call.path.lower(), call.api_version)
        for call in arm.arm_calls()
        if "/operations/" not in call.path and "/operationresults/" not in call.path.lower()
    ]


STEPS = (RESOURCE_GROUP, PUBLIC_IP, NAT_GATEWAY, NETWORK_SECURITY_GROUP, VIRTUAL_NETWORK, STORAGE_ACCOUNT)


def test_provision_creates_the_steps_in_order(arm: ArmStandIn, plan: Plan) -> None:
    seen: list[StepResult] = []
    results = run(arm, plan, seen)

    assert [(r.type, r.status) for r in results] == [(step, "created") for step in STEPS]
    assert [r.status for r in seen] == ["creating", "created"] * 6
    p = {key: value.lower() for key, value in paths(plan).items()}
    network_steps = [
        call
        for key in ("pip", "nat", "nsg", "vnet")
        # the final GET after Azure-AsyncOperation said Succeeded
        for call in (("GET", p[key], NET_API), ("PUT", p[key], NET_API), ("GET", p[key], NET_API))
    ]
    assert resource_calls(arm) == [
        ("GET", p["rg"], RG_API),
        ("PUT", p["rg"], RG_API),
        *network_steps,
        ("GET", p["storage"], STORAGE_API),
        ("PUT", p["storage"], STORAGE_API),
    ]
    polls = [call.path for call in arm.arm_calls() if "/operations/" in call.path or "/operationResults/" in call.path]
    assert len(polls) == 10  # 2 per long-running operation (Azure-AsyncOperation, then Location)

    # The bodies sent, against the spec's examples (VirtualNetworkCreateSubnet.json,
    # StorageAccountCreate.json, ResourceGroups_CreateOrUpdate): location, tags, required fields.
    tags = {TAG_KEY: "tweetstream"}
    bodies = {call.path.lower(): call.body for call in arm.arm_calls() if call.method == "PUT"}
    assert bodies[p["rg"]] == {"location": "eastus", "tags": tags}
    ids = paths(plan)
    # HDInsight's outbound path and NSG (its load balancer migration guideline, "New cluster creation"), as
    # PublicIPAddressCreateStandard.json, NatGatewayCreateOrUpdate.json and NetworkSecurityGroupCreateWithRule.json.
    assert bodies[p["pip"]] == {
        "location": "eastus",
        "tags": tags,
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"},
    }
    assert bodies[p["nat"]] == {
        "location": "eastus",
        "tags": tags,
        "sku": {"name": "Standard"},
        "properties": {"publicIpAddresses": [{"id": ids["pip"]}]},
    }
    rules = {r["name"]: r["properties"] for r in bodies[p["nsg"]]["properties"]["securityRules"]}
    assert rules["AllowHDInsightManagement"] == {
        "protocol": "Tcp",
        "sourceAddressPrefix": "HDInsight",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "VirtualNetwork",
        "destinationPortRange": "443",
        "access": "Allow",
        "priority": 300,
        "direction": "Inbound",
    }
    assert rules["AllowConsoleToGateway"]["sourceAddressPrefix"] == "Internet"  # the example plan's default
    assert bodies[p["vnet"]] == {
        "location": "eastus",
        "tags": tags,
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [
                {
                    "name": plan.names.kafka_subnet,
                    "properties": {
                        "addressPrefix": "10.0.0.0/24",
                        "natGateway": {"id": ids["nat"]},
                        "networkSecurityGroup": {"id": ids["nsg"]},
                        "defaultOutboundAccess": False,
                    },
                }
            ],
        },
    }
    assert bodies[p["storage"]] == {
        "sku": {"name": "Standard_LRS"},
        "kind": "StorageV2",
        "location": "eastus",
        "tags": tags,
        "properties": {"minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False},
    }
    vnet = arm.resource(paths(plan)["vnet"])
    assert vnet is not None and vnet["properties"]["provisioningState"] == "Succeeded"
    assert vnet["properties"]["subnets"][0]["properties"]["provisioningState"] == "Succeeded"
    token_calls = [call for call in arm.calls if not call.path.startswith("/subscriptions/")]
    assert [call.method for call in token_calls] == ["GET", "POST"]  # openid-configuration, then one token


def test_a_second_run_resumes_without_a_put(arm: ArmStandIn, plan: Plan) -> None:
    run(arm, plan)
    arm.calls.clear()

    results = run(arm, plan)

    assert [(r.type, r.status) for r in results] == [(step, "exists") for step in STEPS]
    assert [call.method for call in arm.arm_calls()] == ["GET"] * 6


def test_a_network_made_without_nat_gateway_and_nsg_gets_them_on_the_rerun(arm: ArmStandIn, plan: Plan) -> None:
    """A network an older build made (a subnet with only its prefix) is brought to the plan."""
    run(arm, plan)
    vnet = arm.resource(paths(plan)["vnet"])
    assert vnet is not None
    vnet["properties"]["subnets"][0]["properties"] = {"addressPrefix": "10.0.0.0/24", "provisioningState": "Succeeded"}
    arm.calls.clear()

    results = run(arm, plan)

    assert [r.status for r in results] == ["exists", "exists", "exists", "exists", "created", "exists"]
    subnet = arm.resource(paths(plan)["vnet"])["properties"]["subnets"][0]["properties"]  # type: ignore[index]
    assert subnet["natGateway"]["id"] == paths(plan)["nat"]
    assert subnet["networkSecurityGroup"]["id"] == paths(plan)["nsg"]


def test_a_failed_storage_step_then_a_rerun_completes(arm: ArmStandIn, plan: Plan) -> None:
    arm.fail("PUT", "/storageAccounts/", "QuotaExceeded", "Operation results in exceeding quota limits of Storage.")

    first = run(arm, plan)

    assert [r.status for r in first] == ["created"] * 5 + ["failed"]
    assert first[-1].error_code == "QuotaExceeded"
    assert "exceeding quota limits" in first[-1].detail and "quota" in (first[-1].advice or "")

    arm.calls.clear()
    second = run(arm, plan)

    assert [r.status for r in second] == ["exists"] * 5 + ["created"]
    assert [call.method for call in arm.arm_calls() if "/operation" not in call.path.lower()] == ["GET"] * 6 + ["PUT"]


def test_an_operation_that_ends_failed_is_made_again_on_the_rerun(arm: ArmStandIn, plan: Plan) -> None:
    arm.fail("PUT", "/virtualNetworks/", "InternalServerError", "An error occurred.", during_operation=True)

    first = run(arm, plan)

    assert [r.status for r in first] == ["created"] * 4 + ["failed"]
    assert first[-1].error_code == "InternalServerError"
    vnet = arm.resource(paths(plan)["vnet"])
    assert vnet is not None and vnet["properties"]["provisioningState"] == "Failed"
    # Left tagged, so teardown would find it; the rerun makes it again.
    assert [r.status for r in run(arm, plan)] == ["exists"] * 4 + ["created", "created"]


def test_a_storage_name_taken_elsewhere_says_what_to_do(arm: ArmStandIn, plan: Plan) -> None:
    arm.state.taken_storage_names.add(plan.names.storage_account)

    results = run(arm, plan)

    failed = results[-1]
    assert (failed.type, failed.status, failed.error_code) == (STORAGE_ACCOUNT, "failed", "StorageAccountAlreadyTaken")
    assert f"The storage account named {plan.names.storage_account} is already taken." in failed.detail
    assert "name_prefix" in (failed.advice or "") and "names.storage_account" in (failed.advice or "")


def test_authorization_failed_and_a_bad_secret(arm: ArmStandIn, plan: Plan) -> None:
    arm.fail(
        "PUT",
        "/resourcegroups/",
        "AuthorizationFailed",
        "The client does not have authorization to perform action "
        "'Microsoft.Resources/subscriptions/resourcegroups/write'.",
        status=403,
    )
    denied = run(arm, plan)
    assert (denied[-1].status, denied[-1].error_code) == ("failed", "AuthorizationFailed")
    assert "Contributor" in (denied[-1].advice or "")

    from azure.identity import ClientSecretCredential

    bad = ClientSecretCredential(
        "tweetstream-tenant",
        "tweetstream-client",
        "wrong",
        authority=arm.base_url,
        disable_instance_discovery=True,
        connection_verify=str(arm.ca_path),
    )
    results = provision(plan, bad, client_options=arm.client_options())
    assert (results[-1].status, results[-1].error_code) == ("failed", "SignInFailed")


def test_teardown_deletes_by_tag_after_confirmation(arm: ArmStandIn, plan: Plan) -> None:
    run(arm, plan)
    options = arm.client_options()
    found = find_tagged(plan, arm.credential(), client_options=options)
    n = plan.names
    assert found == [
        (STORAGE_ACCOUNT, n.storage_account),
        (VIRTUAL_NETWORK, n.kafka_vnet),
        (NETWORK_SECURITY_GROUP, n.kafka_nsg),
        (NAT_GATEWAY, n.kafka_nat_gateway),
        (PUBLIC_IP, n.kafka_public_ip),
        (RESOURCE_GROUP, n.resource_group),
    ]
    with pytest.raises(TeardownNotConfirmed):
        teardown(plan, arm.credential(), confirm=[n.storage_account], client_options=options)

    arm.calls.clear()
    results = teardown(plan, arm.credential(), confirm=[name for _, name in found], client_options=options)

    assert [(r.name, r.status) for r in results] == [(name, "deleted") for _, name in found]
    p = {key: value.lower() for key, value in paths(plan).items()}
    deletes = [(m, path) for m, path, _ in resource_calls(arm) if m == "DELETE"]
    # The stand-in refuses to delete a NAT gateway, NSG or public IP still in use: this order is the one that works.
    assert deletes == [("DELETE", p[key]) for key in ("storage", "vnet", "nsg", "nat", "pip", "rg")]
    assert arm.state.resources == {}
    assert find_tagged(plan, arm.credential(), client_options=options) == []


def test_teardown_keeps_a_group_that_holds_something_else(arm: ArmStandIn, plan: Plan) -> None:
    run(arm, plan)
    stranger = (
        paths(plan)["rg"].replace("resourcegroups", "resourceGroups")
        + "/providers/Microsoft.Network/virtualNetworks/theirs"
    )
    arm.state.resources[stranger.lower()] = {
        "id": stranger,
        "name": "theirs",
        "type": VIRTUAL_NETWORK,
        "location": "eastus",
        "tags": {},
        "properties": {"provisioningState": "Succeeded"},
    }
    options = arm.client_options()
    names = [name for _, name in find_tagged(plan, arm.credential(), client_options=options)]

    results = teardown(plan, arm.credential(), confirm=names, client_options=options)

    assert [r.status for r in results] == ["deleted"] * 5 + ["kept"]
    assert "theirs" in results[-1].detail

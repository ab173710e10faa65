"""The plan's first ARM steps, provisioned with the real Azure SDKs against the ARM stand-in.

The stand-in (tests/standins/azure_arm.py) serves HTTPS with a certificate made at start and
Entra ID's token endpoint for ClientSecretCredential; operations take 2 polls, Retry-After: 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.azure.arm import RESOURCE_GROUP, STORAGE_ACCOUNT, VIRTUAL_NETWORK, StepResult
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


def test_provision_creates_the_three_steps_in_order(arm: ArmStandIn, plan: Plan) -> None:
    seen: list[StepResult] = []
    results = run(arm, plan, seen)

    assert [(r.type, r.status) for r in results] == [
        (RESOURCE_GROUP, "created"),
        (VIRTUAL_NETWORK, "created"),
        (STORAGE_ACCOUNT, "created"),
    ]
    assert [r.status for r in seen] == ["creating", "created"] * 3
    p = {key: value.lower() for key, value in paths(plan).items()}
    assert resource_calls(arm) == [
        ("GET", p["rg"], RG_API),
        ("PUT", p["rg"], RG_API),
        ("GET", p["vnet"], NET_API),
        ("PUT", p["vnet"], NET_API),
        ("GET", p["vnet"], NET_API),  # the final GET after Azure-AsyncOperation said Succeeded
        ("GET", p["storage"], STORAGE_API),
        ("PUT", p["storage"], STORAGE_API),
    ]
    polls = [call.path for call in arm.arm_calls() if "/operations/" in call.path or "/operationResults/" in call.path]
    assert len(polls) == 4  # 2 per long-running operation (Azure-AsyncOperation, then Location)

    # The bodies sent, against the spec's examples (VirtualNetworkCreateSubnet.json,
    # StorageAccountCreate.json, ResourceGroups_CreateOrUpdate): location, tags, required fields.
    tags = {TAG_KEY: "tweetstream"}
    bodies = {call.path.lower(): call.body for call in arm.arm_calls() if call.method == "PUT"}
    assert bodies[p["rg"]] == {"location": "eastus", "tags": tags}
    assert bodies[p["vnet"]] == {
        "location": "eastus",
        "tags": tags,
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": plan.names.kafka_subnet, "properties": {"addressPrefix": "10.0.0.0/24"}}],
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

    assert [(r.type, r.status) for r in results] == [
        (RESOURCE_GROUP, "exists"),
        (VIRTUAL_NETWORK, "exists"),
        (STORAGE_ACCOUNT, "exists"),
    ]
    assert [call.method for call in arm.arm_calls()] == ["GET", "GET", "GET"]


def test_a_failed_storage_step_then_a_rerun_completes(arm: ArmStandIn, plan: Plan) -> None:
    arm.fail("PUT", "/storageAccounts/", "QuotaExceeded", "Operation results in exceeding quota limits of Storage.")

    first = run(arm, plan)

    assert [r.status for r in first] == ["created", "created", "failed"]
    assert first[-1].error_code == "QuotaExceeded"
    assert "exceeding quota limits" in first[-1].detail and "quota" in (first[-1].advice or "")

    arm.calls.clear()
    second = run(arm, plan)

    assert [r.status for r in second] == ["exists", "exists", "created"]
    assert [call.method for call in arm.arm_calls() if "/operation" not in call.path.lower()] == [
        "GET",
        "GET",
        "GET",
        "PUT",
    ]


def test_an_operation_that_ends_failed_is_made_again_on_the_rerun(arm: ArmStandIn, plan: Plan) -> None:
    arm.fail("PUT", "/virtualNetworks/", "InternalServerError", "An error occurred.", during_operation=True)

    first = run(arm, plan)

    assert [r.status for r in first] == ["created", "failed"]
    assert first[-1].error_code == "InternalServerError"
    vnet = arm.resource(paths(plan)["vnet"])
    assert vnet is not None and vnet["properties"]["provisioningState"] == "Failed"
    # Left tagged, so teardown would find it; the rerun makes it again.
    assert [r.status for r in run(arm, plan)] == ["exists", "created", "created"]


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
        (RESOURCE_GROUP, n.resource_group),
    ]
    with pytest.raises(TeardownNotConfirmed):
        teardown(plan, arm.credential(), confirm=[n.storage_account], client_options=options)

    arm.calls.clear()
    results = teardown(plan, arm.credential(), confirm=[name for _, name in found], client_options=options)

    assert [(r.name, r.status) for r in results] == [
        (n.storage_account, "deleted"),
        (n.kafka_vnet, "deleted"),
        (n.resource_group, "deleted"),
    ]
    p = {key: value.lower() for key, value in paths(plan).items()}
    deletes = [(m, path) for m, path, _ in resource_calls(arm) if m == "DELETE"]
    assert deletes == [("DELETE", p["storage"]), ("DELETE", p["vnet"]), ("DELETE", p["rg"])]
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

    assert [r.status for r in results] == ["deleted", "deleted", "kept"]
    assert "theirs" in results[-1].detail

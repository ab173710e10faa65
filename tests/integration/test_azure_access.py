"""Sign-in, access and region checks, with the real SDKs against the ARM stand-in.

Routes: tests/standins/arm_databricks.py install_access (Subscriptions_List 2022-12-01,
Permissions 2022-04-01, Providers_Get 2025-04-01).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.azure.access import REQUIRED_ACTIONS, allowed, check_access, check_region, list_subscriptions
from backend.azure.plan import Plan, build_plan
from backend.azure.plan_config import load_config
from backend.azure.provision import provision
from tests.standins.arm_databricks import SubscriptionEntry, install_access
from tests.standins.azure_arm import ArmStandIn

EXAMPLE = Path(__file__).resolve().parents[2] / "backend" / "azure" / "example-plan.toml"
SUB = "00000000-0000-0000-0000-000000000000"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_config(EXAMPLE))


def paths(arm: ArmStandIn) -> list[tuple[str, str, str | None]]:
    return [(c.method, c.path, c.api_version) for c in arm.arm_calls()]


def test_list_subscriptions() -> None:
    with ArmStandIn() as arm:
        install_access(
            arm,
            subscriptions=(
                SubscriptionEntry(SUB, "Tweet stream"),
                SubscriptionEntry("11111111-1111-1111-1111-111111111111", "Old one", "Disabled"),
            ),
        )

        found = list_subscriptions(arm.credential(), client_options=arm.client_options())

        assert [(s.id, s.name, s.state) for s in found] == [
            (SUB, "Tweet stream", "Enabled"),
            ("11111111-1111-1111-1111-111111111111", "Old one", "Disabled"),
        ]
        calls = [(c.method, c.path, c.api_version) for c in arm.calls if not c.path.startswith("/tweetstream-tenant/")]
        assert calls == [("GET", "/subscriptions", "2022-12-01")]


def test_full_access_at_the_subscription_then_at_the_group(plan: Plan) -> None:
    with ArmStandIn() as arm:
        install_access(arm, actions=("*",))
        options = arm.client_options()

        report = check_access(plan, arm.credential(), client_options=options)

        assert (report.ok, report.missing, report.scope) == (True, [], f"subscription {SUB}")
        assert paths(arm)[-1] == (
            "GET",
            f"/subscriptions/{SUB}/providers/Microsoft.Authorization/permissions",
            "2022-04-01",
        )

        provision(plan, arm.credential(), client_options=options)  # makes the resource group
        arm.calls.clear()
        report = check_access(plan, arm.credential(), client_options=options)

        assert (report.ok, report.scope) == (True, "resource group tweetstream-rg")
        assert paths(arm)[-1] == (
            "GET",
            f"/subscriptions/{SUB}/resourcegroups/tweetstream-rg/providers/Microsoft.Authorization/permissions",
            "2022-04-01",
        )


def test_read_only_access_lists_what_is_missing_and_names_the_role(plan: Plan) -> None:
    with ArmStandIn() as arm:
        install_access(arm, actions=("*/read",))

        report = check_access(plan, arm.credential(), client_options=arm.client_options())

        assert not report.ok
        assert report.missing == list(REQUIRED_ACTIONS)
        assert "Microsoft.Databricks/workspaces/virtualNetworkPeerings/write" in report.message
        assert "Microsoft.Network/virtualNetworks/peer/action" in report.message
        assert "Contributor role on the subscription" in report.message


def test_not_actions_take_away_what_actions_give(plan: Plan) -> None:
    with ArmStandIn() as arm:
        install_access(arm, actions=("*",), not_actions=("Microsoft.Network/*",))

        report = check_access(plan, arm.credential(), client_options=arm.client_options())

        assert report.missing == [action for action in REQUIRED_ACTIONS if action.startswith("Microsoft.Network/")]


def test_a_role_that_may_make_peerings_but_not_delete_them_is_refused(plan: Plan) -> None:
    # Teardown deletes the Kafka side; the peering step deletes a Disconnected workspace side to remake it.
    with ArmStandIn() as arm:
        install_access(arm, actions=("*",), not_actions=("*/virtualNetworkPeerings/delete",))

        report = check_access(plan, arm.credential(), client_options=arm.client_options())

        assert report.missing == [
            "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/delete",
            "Microsoft.Databricks/workspaces/virtualNetworkPeerings/delete",
        ]


def test_wildcards_match_like_role_definitions() -> None:
    entry = [{"actions": ["Microsoft.Storage/*", "*/read"], "notActions": ["Microsoft.Storage/*/listKeys/action"]}]
    assert allowed(entry, "Microsoft.Storage/storageAccounts/write")
    assert allowed(entry, "microsoft.network/virtualNetworks/read")  # actions are case-insensitive
    assert not allowed(entry, "Microsoft.Storage/storageAccounts/listKeys/action")
    assert not allowed(entry, "Microsoft.Network/virtualNetworks/write")
    assert not allowed([], "Microsoft.Network/virtualNetworks/write")


def test_a_region_with_everything_has_no_problems(plan: Plan) -> None:
    with ArmStandIn() as arm:
        install_access(arm)

        assert check_region(plan, arm.credential(), client_options=arm.client_options()) == []
        assert [p for _, p, _ in paths(arm)] == [
            f"/subscriptions/{SUB}/providers/Microsoft.HDInsight",
            f"/subscriptions/{SUB}/providers/Microsoft.Databricks",
        ]


def test_a_region_without_hdinsight(plan: Plan) -> None:
    with ArmStandIn() as arm:
        install_access(
            arm,
            provider_locations={
                "Microsoft.HDInsight/clusters": ("West Europe", "North Europe"),
                "Microsoft.Databricks/workspaces": ("East US", "West Europe"),
            },
        )

        problems = check_region(plan, arm.credential(), client_options=arm.client_options())

        assert problems == [
            "HDInsight is not offered in region eastus; regions that offer it: northeurope, westeurope. "
            "Choose one of them as the plan's region."
        ]


def test_an_unregistered_provider_says_how_to_register_it(plan: Plan) -> None:
    with ArmStandIn() as arm:
        install_access(arm, unregistered=("Microsoft.Databricks",))

        problems = check_region(plan, arm.credential(), client_options=arm.client_options())

        assert len(problems) == 1
        assert "Microsoft.Databricks (Azure Databricks) is NotRegistered" in problems[0]
        assert "az provider register --namespace Microsoft.Databricks" in problems[0]


def test_a_wrong_secret_fails_sign_in_without_showing_it() -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientSecretCredential

    with ArmStandIn() as arm:
        install_access(arm)
        wrong = "not-the-secret-4711"
        bad = ClientSecretCredential(
            "tweetstream-tenant",
            "tweetstream-client",
            wrong,
            authority=arm.base_url,
            disable_instance_discovery=True,
            connection_verify=str(arm.ca_path),
        )

        with pytest.raises(ClientAuthenticationError) as caught:
            list_subscriptions(bad, client_options=arm.client_options())

        assert "AADSTS7000215" in str(caught.value) and wrong not in str(caught.value)
        assert [c.path for c in arm.calls if c.path.startswith("/subscriptions")] == []  # stopped at sign-in

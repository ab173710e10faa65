"""Before planning: which subscriptions the signed-in identity sees, whether it may create what the
plan needs, and whether the plan's region offers HDInsight and Databricks; read-only ARM calls, so
a missing role or provider is told before anything costs money. The calls and how an action is
matched: docs/azure-design.md ("Access and region checks").
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.resource.resources import ResourceManagementClient

from backend.azure.arm import get_or_none
from backend.azure.plan import Plan

SUBSCRIPTIONS_API = "2022-12-01"
PERMISSIONS_API = "2022-04-01"
_ANY_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"  # the client needs one; /subscriptions ignores it

# The actions the wizard performs (create, the joins and peerings they need, teardown's deletes).
REQUIRED_ACTIONS: tuple[str, ...] = (
    "Microsoft.Resources/subscriptions/resourceGroups/write",
    "Microsoft.Resources/subscriptions/resourceGroups/delete",
    "Microsoft.Network/virtualNetworks/write",
    "Microsoft.Network/virtualNetworks/delete",
    "Microsoft.Network/virtualNetworks/subnets/write",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/write",
    "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/delete",  # teardown's Kafka side
    "Microsoft.Network/virtualNetworks/peer/action",
    # The Kafka subnet's outbound path and NSG (HDInsight on Standard Load Balancers).
    "Microsoft.Network/publicIPAddresses/write",
    "Microsoft.Network/publicIPAddresses/delete",
    "Microsoft.Network/publicIPAddresses/join/action",
    "Microsoft.Network/natGateways/write",
    "Microsoft.Network/natGateways/delete",
    "Microsoft.Network/natGateways/join/action",
    "Microsoft.Network/networkSecurityGroups/write",
    "Microsoft.Network/networkSecurityGroups/delete",
    "Microsoft.Network/networkSecurityGroups/join/action",
    "Microsoft.Storage/storageAccounts/write",
    "Microsoft.Storage/storageAccounts/delete",
    "Microsoft.Storage/storageAccounts/listKeys/action",
    "Microsoft.HDInsight/clusters/write",
    "Microsoft.HDInsight/clusters/delete",
    "Microsoft.Databricks/workspaces/write",
    "Microsoft.Databricks/workspaces/delete",
    "Microsoft.Databricks/workspaces/virtualNetworkPeerings/write",
    "Microsoft.Databricks/workspaces/virtualNetworkPeerings/delete",  # a Disconnected peering is made again
)

# (namespace, resource type, what it is for a person)
REGION_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("Microsoft.HDInsight", "clusters", "HDInsight"),
    ("Microsoft.Databricks", "workspaces", "Azure Databricks"),
)


@dataclass(frozen=True)
class SubscriptionInfo:
    id: str
    name: str
    state: str


@dataclass(frozen=True)
class AccessReport:
    ok: bool
    missing: list[str] = field(default_factory=list)
    scope: str = ""

    @property
    def message(self) -> str:
        """What to tell a person: nothing to do, or which role to ask for and where."""
        if self.ok:
            return f"The signed-in identity may create everything the plan needs at {self.scope}."
        return (
            f"The signed-in identity may not do {len(self.missing)} of the actions the wizard needs at "
            f"{self.scope}: {', '.join(self.missing)}. Ask an Owner (or User Access Administrator) of the "
            f"subscription to give it the Contributor role on the subscription, or on the resource group if "
            "it already exists; then check again."
        )


def _client(
    credential: TokenCredential, subscription: str, options: Mapping[str, Any] | None
) -> ResourceManagementClient:
    return ResourceManagementClient(credential, subscription, **(options or {}))


def _pages(client: ResourceManagementClient, url: str, api_version: str) -> Iterator[dict[str, Any]]:
    """The items of an ARM list (``value``), following ``nextLink``; ARM's error as HttpResponseError."""
    request: HttpRequest | None = HttpRequest("GET", url, params={"api-version": api_version})
    while request is not None:
        response = client.send_request(request)
        if response.status_code != 200:
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        body = response.json()
        yield from body.get("value") or []
        next_link = body.get("nextLink")
        request = HttpRequest("GET", next_link) if next_link else None


def list_subscriptions(
    credential: TokenCredential, *, client_options: Mapping[str, Any] | None = None
) -> list[SubscriptionInfo]:
    """Every subscription the identity can see (Subscriptions_List); raises HttpResponseError or
    ClientAuthenticationError (sign-in) with ARM's code."""
    client = _client(credential, _ANY_SUBSCRIPTION, client_options)
    return [
        SubscriptionInfo(str(item.get("subscriptionId")), str(item.get("displayName")), str(item.get("state")))
        for item in _pages(client, "/subscriptions", SUBSCRIPTIONS_API)
    ]


def _matches(pattern: str, action: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, action, re.IGNORECASE) is not None


def allowed(permissions: list[dict[str, Any]], action: str) -> bool:
    """Whether one of the permission entries (actions/notActions, as a role's) allows the action."""
    return any(
        any(_matches(p, action) for p in entry.get("actions") or [])
        and not any(_matches(p, action) for p in entry.get("notActions") or [])
        for entry in permissions
    )


def check_access(
    plan: Plan,
    credential: TokenCredential,
    subscription: str | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> AccessReport:
    """Whether the identity may do every REQUIRED_ACTIONS at the resource group (if it exists) or the
    subscription; raises HttpResponseError or ClientAuthenticationError if ARM cannot tell."""
    sub = subscription or plan.config.subscription_id
    client = _client(credential, sub, client_options)
    rg = plan.names.resource_group
    group = get_or_none(lambda: client.resource_groups.get(rg))
    if group is not None:
        scope = f"/subscriptions/{sub}/resourcegroups/{rg}"
        where = f"resource group {rg}"
    else:
        scope = f"/subscriptions/{sub}"
        where = f"subscription {sub}"
    permissions = list(_pages(client, f"{scope}/providers/Microsoft.Authorization/permissions", PERMISSIONS_API))
    missing = [action for action in REQUIRED_ACTIONS if not allowed(permissions, action)]
    return AccessReport(ok=not missing, missing=missing, scope=where)


def _region_key(name: str) -> str:
    """ARM lists regions by display name ("East US"); plans use the programmatic one ("eastus")."""
    return name.replace(" ", "").lower()


def check_region(
    plan: Plan,
    credential: TokenCredential,
    subscription: str | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Problems with the plan's region: a resource provider not registered, or a service not offered
    there (with the regions that offer it). Empty if all is well; raises HttpResponseError."""
    sub = subscription or plan.config.subscription_id
    client = _client(credential, sub, client_options)
    region = plan.config.region
    problems: list[str] = []
    for namespace, resource_type, service in REGION_SERVICES:
        provider = client.providers.get(namespace)
        state = str(provider.registration_state or "NotRegistered")
        if state == "Registering":
            problems.append(
                f"The resource provider {namespace} ({service}) is still registering in subscription {sub}: "
                "wait a few minutes, then check again."
            )
            continue
        if state != "Registered":
            problems.append(
                f"The resource provider {namespace} ({service}) is {state} in subscription {sub}: register it with "
                f"`az provider register --namespace {namespace}` or in the Azure portal (Subscription, Resource "
                "providers, Register), then check again."
            )
            continue
        locations = next(
            (
                list(item.locations or [])
                for item in provider.resource_types or []
                if (item.resource_type or "").lower() == resource_type
            ),
            [],
        )
        if _region_key(region) not in {_region_key(location) for location in locations}:
            offered = ", ".join(sorted({_region_key(location) for location in locations})) or "none listed"
            problems.append(
                f"{service} is not offered in region {region}; regions that offer it: {offered}. "
                "Choose one of them as the plan's region."
            )
    return problems

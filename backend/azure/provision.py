"""The plan's first ARM steps: the resource group, the Kafka subnet's outbound path (a Standard public IP
and a NAT gateway) and its NSG, the Kafka network with its subnet, the storage account; and teardown of
everything that carries the plan's tag (the later steps' own deletes included).

Each step reads what exists first, so a rerun resumes: see docs/azure-design.md ("Resume").
``client_options`` (base_url, connection_verify, polling_interval, transport...) go to every
management client, for tests against a stand-in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import (
    AddressSpace,
    NatGateway,
    NatGatewaySku,
    NetworkSecurityGroup,
    PublicIPAddress,
    PublicIPAddressSku,
    SecurityRule,
    Subnet,
    SubResource,
    VirtualNetwork,
)
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.resources.models import ResourceGroup
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage.models import Sku, StorageAccountCreateParameters

from backend.azure import arm, hdinsight, workspace
from backend.azure.arm import (
    ARM_ERRORS,
    DATABRICKS_WORKSPACE,
    HDINSIGHT_CLUSTER,
    KAFKA_PEERING,
    NAT_GATEWAY,
    NETWORK_SECURITY_GROUP,
    PUBLIC_IP,
    RESOURCE_GROUP,
    STORAGE_ACCOUNT,
    VIRTUAL_NETWORK,
    Progress,
    StepResult,
    report,
)
from backend.azure.plan import Plan, build_plan
from backend.azure.plan_config import TAG_KEY, PlanConfig

# Teardown's order: the peering first (a network with a peering cannot go), the workspace (it takes its
# managed resource group and its own peering along), the cluster (it holds addresses in the subnet and
# uses the storage account), then storage and the network; then what the subnet used (the NSG, the NAT
# gateway, then its public IP: Azure refuses to delete each while in use); the resource group last.
DELETE_ORDER = (
    KAFKA_PEERING,
    DATABRICKS_WORKSPACE,
    HDINSIGHT_CLUSTER,
    STORAGE_ACCOUNT,
    VIRTUAL_NETWORK,
    NETWORK_SECURITY_GROUP,
    NAT_GATEWAY,
    PUBLIC_IP,
)


class TeardownNotConfirmed(ValueError):
    """The names the caller confirmed are not the ones teardown would delete."""


@dataclass(frozen=True)
class _Clients:
    resource: ResourceManagementClient
    network: NetworkManagementClient
    storage: StorageManagementClient


def _clients(credential: TokenCredential, subscription: str, options: Mapping[str, Any]) -> _Clients:
    return _Clients(
        ResourceManagementClient(credential, subscription, **options),
        NetworkManagementClient(credential, subscription, **options),
        StorageManagementClient(credential, subscription, **options),
    )


def _as_plan(plan_or_config: Plan | PlanConfig) -> Plan:
    return plan_or_config if isinstance(plan_or_config, Plan) else build_plan(plan_or_config)


# --- provisioning ---------------------------------------------------------------------------------


def provision(
    plan_or_config: Plan | PlanConfig,
    credential: TokenCredential,
    subscription: str | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> list[StepResult]:
    """Create (or find) the resource group, the public IP, NAT gateway and NSG of the Kafka subnet, the Kafka
    network with that subnet, the storage account.

    Returns one result per step reached, in order; the last is "failed" if a step failed
    (nothing after it was attempted). Rerunning resumes.
    """
    plan = _as_plan(plan_or_config)
    names = plan.names
    clients = _clients(credential, subscription or plan.config.subscription_id, client_options or {})
    steps: Sequence[tuple[str, str, Callable[[Plan, _Clients, Progress | None], StepResult]]] = (
        (RESOURCE_GROUP, names.resource_group, _resource_group),
        (PUBLIC_IP, names.kafka_public_ip, _public_ip),
        (NAT_GATEWAY, names.kafka_nat_gateway, _nat_gateway),
        (NETWORK_SECURITY_GROUP, names.kafka_nsg, _security_group),
        (VIRTUAL_NETWORK, names.kafka_vnet, _network),
        (STORAGE_ACCOUNT, names.storage_account, _storage),
    )
    results: list[StepResult] = []
    for step_type, name, run in steps:
        try:
            result = run(plan, clients, progress)
        except ARM_ERRORS as exc:
            result = arm.failure(plan, step_type, name, exc)
        results.append(report(progress, result))
        if result.status == "failed":
            break
    return results


def _not_ours(plan: Plan, step_type: str, name: str) -> StepResult:
    return arm.refusal(plan, step_type, name, f"exists without the tag {TAG_KEY}={plan.config.tag_value}")


def _resource_group(plan: Plan, clients: _Clients, progress: Progress | None) -> StepResult:
    config, names = plan.config, plan.names
    existing = arm.get_or_none(lambda: clients.resource.resource_groups.get(names.resource_group))
    if existing is not None:
        note = "" if arm.is_ours(existing, config.tag_value) else "not made by the wizard: teardown keeps it"
        return StepResult(RESOURCE_GROUP, names.resource_group, "exists", note)
    report(progress, StepResult(RESOURCE_GROUP, names.resource_group, "creating"))
    clients.resource.resource_groups.create_or_update(
        names.resource_group, ResourceGroup(location=config.region, tags={TAG_KEY: config.tag_value})
    )
    return StepResult(RESOURCE_GROUP, names.resource_group, "created", config.region)


def _planned_id(plan: Plan, resource_type: str) -> str:
    return str(plan.resource(resource_type).resource_id)


def _ensure_network_resource(
    plan: Plan, step_type: str, name: str, operations: Any, body: Any, progress: Progress | None, note: str
) -> StepResult:
    """GET; ours and Succeeded is "exists", not ours is refused, else PUT (a long-running operation) and wait.

    ``operations``: the SDK's operations group of the resource type (``get``, ``begin_create_or_update``).
    """
    rg = plan.names.resource_group
    existing = arm.get_or_none(lambda: operations.get(rg, name))
    if existing is not None and not arm.is_ours(existing, plan.config.tag_value):
        return _not_ours(plan, step_type, name)
    if existing is not None and arm.provisioning_state(existing) == "Succeeded":
        return StepResult(step_type, name, "exists", note)
    report(progress, StepResult(step_type, name, "creating", note))
    operations.begin_create_or_update(rg, name, body).result()
    return StepResult(step_type, name, "created", note)


def _public_ip(plan: Plan, clients: _Clients, progress: Progress | None) -> StepResult:
    planned = plan.resource(PUBLIC_IP).properties  # Standard (Basic public IPs were retired in 2025), static
    body = PublicIPAddress(
        location=planned["location"],
        tags=dict(planned["tags"]),
        sku=PublicIPAddressSku(**planned["sku"]),
        public_ip_allocation_method=planned["publicIPAllocationMethod"],
        public_ip_address_version=planned["publicIPAddressVersion"],
    )
    note = "Standard, static: the NAT gateway's outbound address"
    name = plan.names.kafka_public_ip
    return _ensure_network_resource(plan, PUBLIC_IP, name, clients.network.public_ip_addresses, body, progress, note)


def _nat_gateway(plan: Plan, clients: _Clients, progress: Progress | None) -> StepResult:
    planned = plan.resource(NAT_GATEWAY).properties
    body = NatGateway(
        location=planned["location"],
        tags=dict(planned["tags"]),
        sku=NatGatewaySku(**planned["sku"]),
        public_ip_addresses=[SubResource(id=ip) for ip in planned["publicIpAddresses"]],
    )
    note = f"the Kafka subnet's outbound path, through {plan.names.kafka_public_ip}"
    name = plan.names.kafka_nat_gateway
    return _ensure_network_resource(plan, NAT_GATEWAY, name, clients.network.nat_gateways, body, progress, note)


def _security_group(plan: Plan, clients: _Clients, progress: Progress | None) -> StepResult:
    planned = plan.resource(NETWORK_SECURITY_GROUP).properties
    rules = [
        SecurityRule(name=rule["name"], **{_snake(k): v for k, v in rule.items() if k != "name"})
        for rule in planned["securityRules"]
    ]
    body = NetworkSecurityGroup(location=planned["location"], tags=dict(planned["tags"]), security_rules=rules)
    note = "in on 443: " + ", ".join(str(rule.source_address_prefix) for rule in rules)
    groups, name = clients.network.network_security_groups, plan.names.kafka_nsg
    return _ensure_network_resource(plan, NETWORK_SECURITY_GROUP, name, groups, body, progress, note)


def _snake(key: str) -> str:
    """ARM's camelCase property name as the SDK's keyword (sourceAddressPrefix -> source_address_prefix)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def _subnet_as_planned(plan: Plan, subnet: Any) -> bool:
    """The subnet has the plan's NAT gateway and NSG and no default outbound access."""
    nat = getattr(subnet.nat_gateway, "id", None) or ""
    nsg = getattr(subnet.network_security_group, "id", None) or ""
    return (
        nat.lower() == _planned_id(plan, NAT_GATEWAY).lower()
        and nsg.lower() == _planned_id(plan, NETWORK_SECURITY_GROUP).lower()
        and subnet.default_outbound_access is False
    )


def _network(plan: Plan, clients: _Clients, progress: Progress | None) -> StepResult:
    config, names = plan.config, plan.names
    rg, name = names.resource_group, names.kafka_vnet
    existing = arm.get_or_none(lambda: clients.network.virtual_networks.get(rg, name))
    subnet_note = (
        f"subnet {names.kafka_subnet} {config.network.subnet} with {names.kafka_nat_gateway} and {names.kafka_nsg}"
    )
    if existing is not None and not arm.is_ours(existing, config.tag_value):
        return _not_ours(plan, VIRTUAL_NETWORK, name)
    if existing is not None and arm.provisioning_state(existing) == "Succeeded":
        subnets = {subnet.name: subnet for subnet in existing.subnets or []}
        subnet = subnets.get(names.kafka_subnet)
        if subnet is not None and _subnet_as_planned(plan, subnet):
            return StepResult(VIRTUAL_NETWORK, name, "exists", subnet_note)
    report(progress, StepResult(VIRTUAL_NETWORK, name, "creating", subnet_note))
    clients.network.virtual_networks.begin_create_or_update(
        rg,
        name,
        VirtualNetwork(
            location=config.region,
            tags={TAG_KEY: config.tag_value},
            address_space=AddressSpace(address_prefixes=[config.network.address_space]),
            subnets=[
                Subnet(
                    name=names.kafka_subnet,
                    address_prefix=config.network.subnet,
                    nat_gateway=SubResource(id=_planned_id(plan, NAT_GATEWAY)),
                    network_security_group=NetworkSecurityGroup(id=_planned_id(plan, NETWORK_SECURITY_GROUP)),
                    default_outbound_access=False,  # private, as new subnets are since api-version 2025-07-01
                )
            ],
        ),
    ).result()
    return StepResult(VIRTUAL_NETWORK, name, "created", f"{config.network.address_space}, {subnet_note}")


def _storage(plan: Plan, clients: _Clients, progress: Progress | None) -> StepResult:
    config, names = plan.config, plan.names
    rg, name = names.resource_group, names.storage_account
    existing = arm.get_or_none(lambda: clients.storage.storage_accounts.get_properties(rg, name))
    if existing is not None and not arm.is_ours(existing, config.tag_value):
        return _not_ours(plan, STORAGE_ACCOUNT, name)
    if existing is not None and arm.provisioning_state(existing) == "Succeeded":
        return StepResult(STORAGE_ACCOUNT, name, "exists")
    report(progress, StepResult(STORAGE_ACCOUNT, name, "creating"))
    clients.storage.storage_accounts.begin_create(
        rg,
        name,
        StorageAccountCreateParameters(
            sku=Sku(name="Standard_LRS"),
            kind="StorageV2",
            location=config.region,
            tags={TAG_KEY: config.tag_value},
            minimum_tls_version="TLS1_2",
            allow_blob_public_access=False,
        ),
    ).result()
    return StepResult(STORAGE_ACCOUNT, name, "created", "StorageV2, Standard_LRS")


# --- teardown -------------------------------------------------------------------------------------


def find_tagged(
    plan_or_config: Plan | PlanConfig,
    credential: TokenCredential,
    subscription: str | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """(type, name) of what carries the plan's tag, in deletion order: storage, network, then the group."""
    plan = _as_plan(plan_or_config)
    clients = _clients(credential, subscription or plan.config.subscription_id, client_options or {})
    return _tagged(plan, clients)


def _tagged(plan: Plan, clients: _Clients) -> list[tuple[str, str]]:
    return [(kind, name) for kind, name, _ in _tagged_ids(plan, clients)]


def _tagged_ids(plan: Plan, clients: _Clients) -> list[tuple[str, str, str]]:
    """(type, name, id) of what carries the tag, in DELETE_ORDER; the Kafka network's peering (a child
    resource, which the tag filter does not list) comes first when the tagged network has it."""
    rg, value, names = plan.names.resource_group, plan.config.tag_value, plan.names
    group = arm.get_or_none(lambda: clients.resource.resource_groups.get(rg))
    if group is None:
        return []
    tag_filter = f"tagName eq '{TAG_KEY}' and tagValue eq '{value}'"
    found = [
        (str(item.type), str(item.name), str(item.id))
        for item in clients.resource.resources.list_by_resource_group(rg, filter=tag_filter)
        if str(item.type).count("/") == 1  # top-level resources only, as ARM lists them
    ]
    if any(kind == VIRTUAL_NETWORK and name == names.kafka_vnet for kind, name, _ in found):
        peering = arm.get_or_none(
            lambda: clients.network.virtual_network_peerings.get(rg, names.kafka_vnet, names.kafka_peering)
        )
        if peering is not None:
            found.append((KAFKA_PEERING, names.kafka_peering, str(peering.id)))
    order = {kind: number for number, kind in enumerate(DELETE_ORDER)}
    found.sort(key=lambda item: (order.get(item[0], len(order)), item[1]))
    if arm.is_ours(group, value):
        found.append((RESOURCE_GROUP, rg, str(group.id)))
    return found


def teardown(
    plan_or_config: Plan | PlanConfig,
    credential: TokenCredential,
    subscription: str | None = None,
    *,
    confirm: Sequence[str],
    client_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> list[StepResult]:
    """Delete what carries the plan's tag, after the caller confirmed by passing the names it showed.

    In DELETE_ORDER, then the resource group if it carries the tag and holds nothing else. Raises
    TeardownNotConfirmed if ``confirm`` differs from what it would delete.
    """
    plan = _as_plan(plan_or_config)
    rg = plan.names.resource_group
    clients = _clients(credential, subscription or plan.config.subscription_id, client_options or {})
    found = _tagged_ids(plan, clients)
    if sorted(confirm) != sorted(name for _, name, _ in found):
        raise TeardownNotConfirmed(
            "teardown would delete "
            + (", ".join(f"{kind} {name}" for kind, name, _ in found) or "nothing")
            + f"; confirmed: {', '.join(confirm) or 'nothing'}"
        )
    results: list[StepResult] = []

    # The later steps' own deletes (each refuses what lacks the tag and says what went with it).
    typed = {
        KAFKA_PEERING: workspace.delete_kafka_peering,
        DATABRICKS_WORKSPACE: workspace.delete_workspace,
        HDINSIGHT_CLUSTER: hdinsight.delete_kafka_cluster,
    }
    sub = subscription or plan.config.subscription_id
    shown: list[StepResult] = []

    def relay(result: StepResult) -> None:  # what the typed deletes report, each final line once
        if result.status not in ("creating", "deleting"):
            shown.append(result)
        if progress is not None:
            progress(result)

    for kind, name, _ in found:
        if kind in typed:
            result = typed[kind](plan, credential, sub, client_options=client_options, progress=relay)
            results.append(result)
            if result not in shown and progress is not None:
                progress(result)
            if result.status == "failed":
                break
            continue
        if progress is not None and kind != RESOURCE_GROUP:
            progress(StepResult(kind, name, "deleting"))
        try:
            if kind == STORAGE_ACCOUNT:
                clients.storage.storage_accounts.delete(rg, name)
            elif kind == VIRTUAL_NETWORK:
                clients.network.virtual_networks.begin_delete(rg, name).result()
            elif kind == NETWORK_SECURITY_GROUP:
                clients.network.network_security_groups.begin_delete(rg, name).result()
            elif kind == NAT_GATEWAY:
                clients.network.nat_gateways.begin_delete(rg, name).result()
            elif kind == PUBLIC_IP:
                clients.network.public_ip_addresses.begin_delete(rg, name).result()
            elif kind == RESOURCE_GROUP:
                others = [str(item.name) for item in clients.resource.resources.list_by_resource_group(rg)]
                if others:
                    results.append(
                        report(progress, StepResult(kind, name, "kept", "it also holds " + ", ".join(sorted(others))))
                    )
                    continue
                clients.resource.resource_groups.begin_delete(rg).result()
            else:
                results.append(report(progress, StepResult(kind, name, "kept", "not a type this teardown deletes yet")))
                continue
        except ARM_ERRORS as exc:
            results.append(report(progress, arm.failure(plan, kind, name, exc)))
            break
        results.append(report(progress, StepResult(kind, name, "deleted")))
    return results

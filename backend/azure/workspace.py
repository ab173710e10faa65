"""The Azure Databricks workspace (Premium, Hybrid compute, no public IPs) and the two VNet peerings
between its managed network and Kafka's, each a step that resumes as provision.py's do. Traffic flows
only once both peerings say Connected, so that step waits and says which side is stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.mgmt.databricks import AzureDatabricksManagementClient
from azure.mgmt.databricks import models as dbx
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import SubResource
from azure.mgmt.network.models import VirtualNetworkPeering as NetworkPeering

from backend.azure import arm
from backend.azure.arm import (
    ARM_ERRORS,
    KAFKA_PEERING,
    VIRTUAL_NETWORK,
    WORKSPACE_PEERING,
    Progress,
    StepResult,
    report,
)
from backend.azure.arm import DATABRICKS_WORKSPACE as WORKSPACE
from backend.azure.plan import Plan
from backend.azure.plan_config import DATABRICKS_SKU, TAG_KEY

COMPUTE_MODE = "Hybrid"  # classic clusters in the workspace's own (managed) network, which we peer
# A workspace in one of these states is being made by an earlier run: wait for it, do not PUT again.
IN_PROGRESS = ("Accepted", "Running", "Ready", "Creating", "Created", "Updating")


@dataclass(frozen=True)
class WorkspaceInfo:
    resource_id: str
    url: str  # "https://" + properties.workspaceUrl
    workspace_id: str


def _databricks(
    credential: TokenCredential, subscription: str, options: Mapping[str, Any] | None
) -> AzureDatabricksManagementClient:
    return AzureDatabricksManagementClient(credential, subscription, **(options or {}))


def _network(
    credential: TokenCredential, subscription: str, options: Mapping[str, Any] | None
) -> NetworkManagementClient:
    return NetworkManagementClient(credential, subscription, **(options or {}))


def _info(workspace: Any) -> WorkspaceInfo | None:
    properties = workspace.properties
    if properties is None or arm.provisioning_state(workspace) != "Succeeded" or not properties.workspace_url:
        return None
    return WorkspaceInfo(
        resource_id=str(workspace.id),
        url="https://" + str(properties.workspace_url),
        workspace_id=str(properties.workspace_id),
    )


def _workspace_body(plan: Plan) -> dbx.Workspace:
    config, names = plan.config, plan.names
    managed_rg = f"/subscriptions/{config.subscription_id}/resourceGroups/{names.databricks_managed_resource_group}"
    return dbx.Workspace(
        location=config.region,
        tags={TAG_KEY: config.tag_value},
        sku=dbx.Sku(name=DATABRICKS_SKU),
        properties=dbx.WorkspaceProperties(
            compute_mode=COMPUTE_MODE,
            managed_resource_group_id=managed_rg,
            # The spec's default initialType is HiveMetastore: without this the workspace's default catalog
            # would be hive_metastore, where no volume can be made and the job's tables would go.
            default_catalog=dbx.DefaultCatalogProperties(initial_type=dbx.InitialType.UNITY_CATALOG),
            parameters=dbx.WorkspaceCustomParameters(
                enable_no_public_ip=dbx.WorkspaceNoPublicIPBooleanParameter(value=True),
                vnet_address_prefix=dbx.WorkspaceCustomStringParameter(value=config.databricks.managed_vnet_prefix),
            ),
        ),
    )


# --- the workspace --------------------------------------------------------------------------------


def workspace_info(
    plan: Plan,
    credential: TokenCredential,
    subscription: str | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> WorkspaceInfo | None:
    """The workspace's URL, id and managed network; None if it is absent or not Succeeded."""
    client = _databricks(credential, subscription or plan.config.subscription_id, client_options)
    rg, name = plan.names.resource_group, plan.names.databricks_workspace
    existing = arm.get_or_none(lambda: client.workspaces.get(rg, name))
    return None if existing is None else _info(existing)


def ensure_workspace(
    plan: Plan,
    credential: TokenCredential,
    subscription: str | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    progress_every_s: float = 15,
    timeout_s: float = 1800,
) -> tuple[StepResult, WorkspaceInfo | None]:
    """Create (or find) the Databricks workspace; its result and, once Succeeded, its WorkspaceInfo.

    Creation takes minutes: a "creating" progress line every ``progress_every_s`` seconds while
    ARM's operation runs. A workspace an earlier run left being made is waited for (up to
    ``timeout_s``), not made again. Errors come back as a failed StepResult, never raised.
    """
    rg, name = plan.names.resource_group, plan.names.databricks_workspace
    client = _databricks(credential, subscription or plan.config.subscription_id, client_options)
    try:
        existing = arm.get_or_none(lambda: client.workspaces.get(rg, name))
        if existing is not None and not arm.is_ours(existing, plan.config.tag_value):
            return report(progress, arm.refusal(plan, WORKSPACE, name, f"exists without the tag {TAG_KEY}")), None
        deadline = time.monotonic() + timeout_s
        while existing is not None and arm.provisioning_state(existing) in IN_PROGRESS:
            if time.monotonic() >= deadline:
                code = "WorkspaceStillProvisioning"
                detail = f"{code}: still {arm.provisioning_state(existing)} after {timeout_s:g} s"
                advice = (
                    "Azure is still making it: run this step again later (it waits for it, it does not start over)."
                )
                return report(progress, StepResult(WORKSPACE, name, "failed", detail, code, advice)), None
            detail = f"{arm.provisioning_state(existing)}: an earlier run started it; waiting for Azure to finish"
            report(progress, StepResult(WORKSPACE, name, "creating", detail))
            time.sleep(progress_every_s)
            existing = arm.get_or_none(lambda: client.workspaces.get(rg, name))
        info = None if existing is None else _info(existing)
        if info is not None:
            return report(progress, StepResult(WORKSPACE, name, "exists", info.url)), info
        again = "" if existing is None else f", again (it was {arm.provisioning_state(existing)})"
        managed = plan.names.databricks_managed_resource_group
        report(progress, StepResult(WORKSPACE, name, "creating", f"Premium{again}; takes several minutes"))
        poller = client.workspaces.begin_create_or_update(rg, name, _workspace_body(plan))
        started = time.monotonic()
        while not poller.done():
            poller.wait(progress_every_s)
            if not poller.done():
                waited = round(time.monotonic() - started)
                detail = f"{poller.status()} after {waited} s; Azure is making {managed} and its network"
                report(progress, StepResult(WORKSPACE, name, "creating", detail))
        info = _info(poller.result())
    except ARM_ERRORS as exc:
        return report(progress, arm.failure(plan, WORKSPACE, name, exc)), None
    if info is None:
        result = StepResult(WORKSPACE, name, "failed", "the workspace did not reach Succeeded", None, None)
        return report(progress, result), None
    detail = f"{info.url}, managed resource group {managed}"
    return report(progress, StepResult(WORKSPACE, name, "created", detail)), info


def delete_workspace(
    plan: Plan,
    credential: TokenCredential,
    subscription: str | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> StepResult:
    """Delete the workspace if it carries the plan's tag ("kept" otherwise, "deleted" if absent)."""
    rg, name = plan.names.resource_group, plan.names.databricks_workspace
    client = _databricks(credential, subscription or plan.config.subscription_id, client_options)
    try:
        existing = arm.get_or_none(lambda: client.workspaces.get(rg, name))
        if existing is None:
            return report(progress, StepResult(WORKSPACE, name, "deleted", "it was not there"))
        if not arm.is_ours(existing, plan.config.tag_value):
            return report(progress, StepResult(WORKSPACE, name, "kept", f"it has no tag {TAG_KEY}"))
        managed = str(existing.properties.managed_resource_group_id).rsplit("/", 1)[-1]
        report(progress, StepResult(WORKSPACE, name, "deleting", "takes several minutes"))
        # Without forceDeletion Azure keeps the managed group's DBFS storage account and access connector
        # (the workspace catalog's data) when Unity Catalog is on, as it is for new workspaces: see
        # docs/azure.md, "Delete what the wizard created".
        client.workspaces.begin_delete(rg, name, force_deletion=True).result()
    except ARM_ERRORS as exc:
        return report(progress, arm.failure(plan, WORKSPACE, name, exc))
    detail = (
        f"with it Azure deleted its managed resource group {managed} (the network, and the storage of the "
        f"workspace catalog) and its peering {plan.names.databricks_peering}"
    )
    return report(progress, StepResult(WORKSPACE, name, "deleted", detail))


# --- the peerings ---------------------------------------------------------------------------------


def _peering_state(peering: Any) -> str:
    """peeringState of either SDK's model ("absent" for none)."""
    if peering is None:
        return "absent"
    properties = getattr(peering, "properties", None)
    state = getattr(properties, "peering_state", None) if properties is not None else None
    state = getattr(peering, "peering_state", None) if state is None else state
    return str(getattr(state, "value", state))


def _remote_id(peering: Any) -> str:
    properties = getattr(peering, "properties", None)
    remote = getattr(properties if properties is not None else peering, "remote_virtual_network", None)
    return str(getattr(remote, "id", "") or "")


def _peering_advice(plan: Plan) -> str:
    n = plan.names
    return (
        f"Check that the Kafka network ({plan.config.network.address_space}) and the workspace's network "
        f"({plan.config.databricks.managed_vnet_prefix}.0.0/16) do not overlap and that both networks still exist; "
        f"a Disconnected peering must be made again: delete {n.kafka_peering} (and {n.databricks_peering} in the "
        "workspace's Virtual Network Peerings) and run this step again."
    )


def ensure_peerings(
    plan: Plan,
    credential: TokenCredential,
    subscription: str | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    timeout_s: float = 600,
    poll_s: float = 10,
) -> list[StepResult]:
    """Peer the workspace's network and Kafka's, both ways, and wait until both say Connected.

    Returns one result per side (workspace side first), or one failed result if a step failed.
    A peering already Connected is "exists"; one not Connected after ``timeout_s`` is "failed"
    with the state it is stuck in and what to do.
    """
    sub = subscription or plan.config.subscription_id
    names = plan.names
    try:
        info = workspace_info(plan, credential, sub, client_options=client_options)
    except ARM_ERRORS as exc:
        return [report(progress, arm.failure(plan, WORKSPACE_PEERING, names.databricks_peering, exc))]
    if info is None:
        detail = f"WorkspaceNotReady: the workspace {names.databricks_workspace} does not exist or is not Succeeded"
        advice = "Create the workspace first (the step before), then run this step again."
        return [
            report(
                progress,
                StepResult(WORKSPACE_PEERING, names.databricks_peering, "failed", detail, "WorkspaceNotReady", advice),
            )
        ]
    workspace_side = _workspace_side(plan, _databricks(credential, sub, client_options))
    made: dict[str, bool] = {}
    sides = [workspace_side]
    try:
        made[workspace_side.name], refused = _ensure_side(plan, workspace_side, progress)
        # The managed network's name is Azure's to choose: the workspace side says which network it is.
        managed_vnet = "" if refused is not None else _local_id(workspace_side.read())
        if refused is None and not managed_vnet:
            why = "its workspace side names no databricksVirtualNetwork"
            refused = StepResult(
                WORKSPACE_PEERING, names.databricks_peering, "failed", why, "NoManagedNetwork", _peering_advice(plan)
            )
        if refused is None:
            sides.append(_kafka_side(plan, managed_vnet, _network(credential, sub, client_options)))
            made[sides[1].name], refused = _ensure_side(plan, sides[1], progress)
    except ARM_ERRORS as exc:
        side = sides[-1]
        return [report(progress, arm.failure(plan, side.type, side.name, exc))]
    if refused is not None:
        return [report(progress, refused)]
    return _wait_connected(plan, sides, made, progress, timeout_s, poll_s)


@dataclass(frozen=True)
class _PeeringSide:
    type: str
    name: str
    remote: str  # the id of the network it must point at
    read: Callable[[], Any]  # the peering, or None
    create: Callable[[], Any]  # the peering made (ARM's long-running operation waited for)
    delete: Callable[[], None]


def _local_id(peering: Any) -> str:
    """The workspace side's databricksVirtualNetwork id: the workspace's managed network ("" if not given)."""
    properties = getattr(peering, "properties", None)
    local = getattr(properties, "databricks_virtual_network", None) if properties is not None else None
    return str(getattr(local, "id", "") or "")


def _workspace_side(plan: Plan, dbx_client: AzureDatabricksManagementClient) -> _PeeringSide:
    """The workspace side (remote: the Kafka network)."""
    names = plan.names
    rg = names.resource_group
    kafka_vnet_id = str(plan.resource(VIRTUAL_NETWORK).resource_id)
    body = dbx.VirtualNetworkPeering(
        properties=dbx.VirtualNetworkPeeringPropertiesFormat(
            remote_virtual_network=dbx.VirtualNetworkPeeringPropertiesFormatRemoteVirtualNetwork(id=kafka_vnet_id),
            allow_virtual_network_access=True,
            allow_forwarded_traffic=True,
        )
    )
    peerings, workspace, peering = dbx_client.vnet_peering, names.databricks_workspace, names.databricks_peering
    return _PeeringSide(
        WORKSPACE_PEERING,
        peering,
        kafka_vnet_id,
        read=lambda: arm.get_or_none(lambda: peerings.get(rg, workspace, peering)),
        create=lambda: peerings.begin_create_or_update(rg, workspace, peering, body).result(),
        delete=lambda: peerings.begin_delete(rg, workspace, peering).result(),
    )


def _kafka_side(plan: Plan, managed_vnet_id: str, net_client: NetworkManagementClient) -> _PeeringSide:
    """The Kafka side (remote: the workspace's managed network, as its workspace side names it)."""
    names = plan.names
    rg = names.resource_group
    body = NetworkPeering(
        remote_virtual_network=SubResource(id=managed_vnet_id),
        allow_virtual_network_access=True,
        allow_forwarded_traffic=True,
    )
    network_peerings, vnet, kafka_peering = net_client.virtual_network_peerings, names.kafka_vnet, names.kafka_peering
    return _PeeringSide(
        KAFKA_PEERING,
        kafka_peering,
        managed_vnet_id,
        read=lambda: arm.get_or_none(lambda: network_peerings.get(rg, vnet, kafka_peering)),
        create=lambda: network_peerings.begin_create_or_update(rg, vnet, kafka_peering, body).result(),
        delete=lambda: network_peerings.begin_delete(rg, vnet, kafka_peering).result(),
    )


def _ensure_side(plan: Plan, side: _PeeringSide, progress: Progress | None) -> tuple[bool, StepResult | None]:
    """Make the side's peering if absent (or Disconnected: Azure cannot reconnect one); whether it was
    made, or the refusal when a peering of that name points elsewhere."""
    existing = side.read()
    if existing is not None and _remote_id(existing).lower() != side.remote.lower():
        why = f"exists but peers with {_remote_id(existing)}, not {side.remote}"
        return False, arm.refusal(plan, side.type, side.name, why)
    if _peering_state(existing) == "Disconnected":
        report(progress, StepResult(side.type, side.name, "deleting", "Disconnected: made again"))
        side.delete()
        existing = None
    if existing is None:
        towards = side.remote.rsplit("/", 1)[-1]
        report(progress, StepResult(side.type, side.name, "creating", f"towards {towards}"))
        state = _peering_state(side.create())
        report(progress, StepResult(side.type, side.name, "creating", f"towards {towards}: {state}"))
    return existing is None, None


def _wait_connected(
    plan: Plan,
    sides: list[_PeeringSide],
    made: dict[str, bool],
    progress: Progress | None,
    timeout_s: float,
    poll_s: float,
) -> list[StepResult]:
    """Poll both sides until both say Connected, or say which side is stuck after ``timeout_s``."""
    names = plan.names
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            states = [_peering_state(side.read()) for side in sides]
        except ARM_ERRORS as exc:
            return [report(progress, arm.failure(plan, WORKSPACE_PEERING, names.databricks_peering, exc))]
        line = f"workspace side {states[0]}, Kafka side {states[1]}"
        if all(state == "Connected" for state in states) or time.monotonic() >= deadline:
            results = []
            for side, state in zip(sides, states, strict=True):
                if state == "Connected":
                    results.append(
                        StepResult(side.type, side.name, "created" if made[side.name] else "exists", "Connected")
                    )
                    continue
                where = "workspace side" if side.type == WORKSPACE_PEERING else "Kafka side"
                detail = f"PeeringNotConnected: the {where} is still {state} after {timeout_s:g} s ({line})"
                results.append(
                    StepResult(side.type, side.name, "failed", detail, "PeeringNotConnected", _peering_advice(plan))
                )
            return [report(progress, result) for result in results]
        report(progress, StepResult(KAFKA_PEERING, names.kafka_peering, "creating", f"waiting for Connected: {line}"))
        time.sleep(poll_s)


def delete_kafka_peering(
    plan: Plan,
    credential: TokenCredential,
    subscription: str | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> StepResult:
    """Delete the Kafka-side peering; the workspace side then says Disconnected until it is made again."""
    rg, vnet, name = plan.names.resource_group, plan.names.kafka_vnet, plan.names.kafka_peering
    client = _network(credential, subscription or plan.config.subscription_id, client_options)
    try:
        existing = arm.get_or_none(lambda: client.virtual_network_peerings.get(rg, vnet, name))
        if existing is None:
            return report(progress, StepResult(KAFKA_PEERING, name, "deleted", "it was not there"))
        report(progress, StepResult(KAFKA_PEERING, name, "deleting"))
        client.virtual_network_peerings.begin_delete(rg, vnet, name).result()
    except ARM_ERRORS as exc:
        return report(progress, arm.failure(plan, KAFKA_PEERING, name, exc))
    detail = (
        f"the workspace side {plan.names.databricks_peering} now says Disconnected: the peering step makes both "
        "again; deleting the workspace deletes that side"
    )
    return report(progress, StepResult(KAFKA_PEERING, name, "deleted", detail))

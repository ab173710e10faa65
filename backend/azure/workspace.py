"""The Azure Databricks workspace and the two VNet peerings between its network and Kafka's.

The article made the workspace in the portal and both peerings by hand; here each is a step in
provision.py's manner: read what exists first (resume), create it tagged when absent or left
Failed, refuse a name held by something the wizard did not make, and turn ARM's errors into a
failed StepResult with its code, message and what to do.

- The workspace (azure-mgmt-databricks 3.0.0, api-version 2026-01-01): Premium, Hybrid compute
  (classic clusters in a managed network), no public IPs on cluster nodes, the managed network's
  prefix from the plan. Azure makes the managed resource group and the network ``workers-vnet``
  in it; the Kafka-side peering needs that network's id, read from the workspace.
- The peerings: the workspace side (``Microsoft.Databricks/workspaces/virtualNetworkPeerings``,
  remote = the Kafka network) and the Kafka side (``Microsoft.Network/virtualNetworks/
  virtualNetworkPeerings`` with azure-mgmt-network 33.1.0, remote = ``workers-vnet``). Traffic
  flows only once both say Connected, so the step waits for that and says which side is stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.mgmt.databricks import AzureDatabricksManagementClient
from azure.mgmt.databricks import models as dbx
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import SubResource
from azure.mgmt.network.models import VirtualNetworkPeering as NetworkPeering

from backend.azure.plan import DATABRICKS_MANAGED_VNET, DATABRICKS_SKU, TAG_KEY, Plan
from backend.azure.provision import Progress, StepResult, _failure, _get, _ours, _state, advice_for, report

WORKSPACE = "Microsoft.Databricks/workspaces"
WORKSPACE_PEERING = "Microsoft.Databricks/workspaces/virtualNetworkPeerings"
KAFKA_PEERING = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings"
COMPUTE_MODE = "Hybrid"  # classic clusters in the workspace's own (managed) network, which we peer
# A workspace in one of these states is being made by an earlier run: wait for it, do not PUT again.
IN_PROGRESS = ("Accepted", "Running", "Ready", "Creating", "Created", "Updating")
_ARM_ERRORS = (HttpResponseError, ClientAuthenticationError)


@dataclass(frozen=True)
class WorkspaceInfo:
    resource_id: str
    url: str  # "https://" + properties.workspaceUrl
    workspace_id: str
    managed_vnet_id: str


def _databricks(
    credential: TokenCredential, subscription: str, options: Mapping[str, Any] | None
) -> AzureDatabricksManagementClient:
    return AzureDatabricksManagementClient(credential, subscription, **(options or {}))


def _network(
    credential: TokenCredential, subscription: str, options: Mapping[str, Any] | None
) -> NetworkManagementClient:
    return NetworkManagementClient(credential, subscription, **(options or {}))


def _refuse(plan: Plan, step_type: str, name: str, why: str) -> StepResult:
    code = "NameTakenNotOurs"
    return StepResult(step_type, name, "failed", f"{code}: {name} {why}", code, advice_for(code, plan, step_type))


def _info(workspace: Any) -> WorkspaceInfo | None:
    properties = workspace.properties
    if properties is None or _state(workspace) != "Succeeded" or not properties.workspace_url:
        return None
    managed = str(properties.managed_resource_group_id)
    return WorkspaceInfo(
        resource_id=str(workspace.id),
        url="https://" + str(properties.workspace_url),
        workspace_id=str(properties.workspace_id),
        managed_vnet_id=f"{managed}/providers/Microsoft.Network/virtualNetworks/{DATABRICKS_MANAGED_VNET}",
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
    existing = _get(lambda: client.workspaces.get(rg, name))
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
        existing = _get(lambda: client.workspaces.get(rg, name))
        if existing is not None and not _ours(existing, plan.config.tag_value):
            return report(progress, _refuse(plan, WORKSPACE, name, f"exists without the tag {TAG_KEY}")), None
        deadline = time.monotonic() + timeout_s
        while existing is not None and _state(existing) in IN_PROGRESS:
            if time.monotonic() >= deadline:
                code = "WorkspaceStillProvisioning"
                detail = f"{code}: still {_state(existing)} after {timeout_s:g} s"
                advice = (
                    "Azure is still making it: run this step again later (it waits for it, it does not start over)."
                )
                return report(progress, StepResult(WORKSPACE, name, "failed", detail, code, advice)), None
            detail = f"{_state(existing)}: an earlier run started it; waiting for Azure to finish"
            report(progress, StepResult(WORKSPACE, name, "creating", detail))
            time.sleep(progress_every_s)
            existing = _get(lambda: client.workspaces.get(rg, name))
        info = None if existing is None else _info(existing)
        if info is not None:
            return report(progress, StepResult(WORKSPACE, name, "exists", info.url)), info
        again = "" if existing is None else f", again (it was {_state(existing)})"
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
    except _ARM_ERRORS as exc:
        return report(progress, _failure(plan, WORKSPACE, name, exc)), None
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
        existing = _get(lambda: client.workspaces.get(rg, name))
        if existing is None:
            return report(progress, StepResult(WORKSPACE, name, "deleted", "it was not there"))
        if not _ours(existing, plan.config.tag_value):
            return report(progress, StepResult(WORKSPACE, name, "kept", f"it has no tag {TAG_KEY}"))
        managed = str(existing.properties.managed_resource_group_id).rsplit("/", 1)[-1]
        report(progress, StepResult(WORKSPACE, name, "deleting", "takes several minutes"))
        client.workspaces.begin_delete(rg, name).result()
    except _ARM_ERRORS as exc:
        return report(progress, _failure(plan, WORKSPACE, name, exc))
    detail = (
        f"with it Azure deleted its managed resource group {managed} (and {DATABRICKS_MANAGED_VNET} in it) "
        f"and its peering {plan.names.databricks_peering}"
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
    rg = names.resource_group
    dbx_client = _databricks(credential, sub, client_options)
    net_client = _network(credential, sub, client_options)
    kafka_vnet_id = next(str(r.resource_id) for r in plan.resources if r.type == "Microsoft.Network/virtualNetworks")

    def read_workspace_side() -> Any:
        return _get(lambda: dbx_client.vnet_peering.get(rg, names.databricks_workspace, names.databricks_peering))

    def read_kafka_side() -> Any:
        return _get(lambda: net_client.virtual_network_peerings.get(rg, names.kafka_vnet, names.kafka_peering))

    try:
        info = workspace_info(plan, credential, sub, client_options=client_options)
    except _ARM_ERRORS as exc:
        return [report(progress, _failure(plan, WORKSPACE_PEERING, names.databricks_peering, exc))]
    if info is None:
        detail = f"WorkspaceNotReady: the workspace {names.databricks_workspace} does not exist or is not Succeeded"
        advice = "Create the workspace first (the step before), then run this step again."
        return [
            report(
                progress,
                StepResult(WORKSPACE_PEERING, names.databricks_peering, "failed", detail, "WorkspaceNotReady", advice),
            )
        ]

    # (type, name, read, create, remote it must point at)
    sides: list[tuple[str, str, Callable[[], Any], Callable[[], Any], str]] = [
        (
            WORKSPACE_PEERING,
            names.databricks_peering,
            read_workspace_side,
            lambda: dbx_client.vnet_peering.begin_create_or_update(
                rg,
                names.databricks_workspace,
                names.databricks_peering,
                dbx.VirtualNetworkPeering(
                    properties=dbx.VirtualNetworkPeeringPropertiesFormat(
                        remote_virtual_network=dbx.VirtualNetworkPeeringPropertiesFormatRemoteVirtualNetwork(
                            id=kafka_vnet_id
                        ),
                        allow_virtual_network_access=True,
                        allow_forwarded_traffic=True,
                    )
                ),
            ).result(),
            kafka_vnet_id,
        ),
        (
            KAFKA_PEERING,
            names.kafka_peering,
            read_kafka_side,
            lambda: net_client.virtual_network_peerings.begin_create_or_update(
                rg,
                names.kafka_vnet,
                names.kafka_peering,
                NetworkPeering(
                    remote_virtual_network=SubResource(id=info.managed_vnet_id),
                    allow_virtual_network_access=True,
                    allow_forwarded_traffic=True,
                ),
            ).result(),
            info.managed_vnet_id,
        ),
    ]
    made: dict[str, bool] = {}
    for step_type, name, read, create, remote in sides:
        try:
            existing = read()
            if existing is not None and _remote_id(existing).lower() != remote.lower():
                why = f"exists but peers with {_remote_id(existing)}, not {remote}"
                return [report(progress, _refuse(plan, step_type, name, why))]
            state = _peering_state(existing)
            if state == "Disconnected":  # Azure cannot reconnect one: it must be made again
                report(progress, StepResult(step_type, name, "deleting", "Disconnected: made again"))
                if step_type == WORKSPACE_PEERING:
                    dbx_client.vnet_peering.begin_delete(rg, names.databricks_workspace, name).result()
                else:
                    net_client.virtual_network_peerings.begin_delete(rg, names.kafka_vnet, name).result()
                existing = None
            made[name] = existing is None
            if existing is None:
                towards = remote.rsplit("/", 1)[-1]
                report(progress, StepResult(step_type, name, "creating", f"towards {towards}"))
                state = _peering_state(create())
                report(progress, StepResult(step_type, name, "creating", f"towards {towards}: {state}"))
        except _ARM_ERRORS as exc:
            return [report(progress, _failure(plan, step_type, name, exc))]

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            states = [_peering_state(read()) for _, _, read, _, _ in sides]
        except _ARM_ERRORS as exc:
            return [report(progress, _failure(plan, WORKSPACE_PEERING, names.databricks_peering, exc))]
        line = f"workspace side {states[0]}, Kafka side {states[1]}"
        if all(state == "Connected" for state in states):
            return [
                report(progress, StepResult(step_type, name, "created" if made[name] else "exists", "Connected"))
                for step_type, name, _, _, _ in sides
            ]
        if time.monotonic() >= deadline:
            results = []
            for (step_type, name, _, _, _), state in zip(sides, states, strict=True):
                if state == "Connected":
                    results.append(StepResult(step_type, name, "created" if made[name] else "exists", "Connected"))
                    continue
                side = "workspace side" if step_type == WORKSPACE_PEERING else "Kafka side"
                detail = f"PeeringNotConnected: the {side} is still {state} after {timeout_s:g} s ({line})"
                results.append(
                    StepResult(step_type, name, "failed", detail, "PeeringNotConnected", _peering_advice(plan))
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
        existing = _get(lambda: client.virtual_network_peerings.get(rg, vnet, name))
        if existing is None:
            return report(progress, StepResult(KAFKA_PEERING, name, "deleted", "it was not there"))
        report(progress, StepResult(KAFKA_PEERING, name, "deleting"))
        client.virtual_network_peerings.begin_delete(rg, vnet, name).result()
    except _ARM_ERRORS as exc:
        return report(progress, _failure(plan, KAFKA_PEERING, name, exc))
    detail = (
        f"the workspace side {plan.names.databricks_peering} now says Disconnected: the peering step makes both "
        "again; deleting the workspace deletes that side"
    )
    return report(progress, StepResult(KAFKA_PEERING, name, "deleted", detail))

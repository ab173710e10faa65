"""ARM routes for the Databricks workspace, the two VNet peerings, and the sign-in/access checks.

Added to an :class:`~tests.standins.azure_arm.ArmStandIn` by :func:`install_databricks` and
:func:`install_access`. Each route follows a spec of Azure/azure-rest-api-specs:

- Workspaces_CreateOrUpdate / _Get / _Delete, api-version 2026-01-01
  (specification/databricks/resource-manager/Microsoft.Databricks/Databricks/Workspace.tsp,
  examples/2026-01-01/WorkspaceCreateWithParameters.json, WorkspaceGet.json, WorkspaceDelete.json):
  PUT answers 201 with the body (provisioningState Accepted) and ``Location`` + ``Retry-After``
  (ArmLroLocationHeader); the Location URL answers 202 until done, then 200 with the workspace.
  Done means: provisioningState Succeeded, ``workspaceId``, ``workspaceUrl`` (the given host),
  and the managed resource group with the managed network (vnetAddressPrefix.0.0/16) made as
  resources of the stand-in. The managed network's name is ``install_databricks(managed_vnet=...)``
  ("workers-vnet" by default): Azure does not document it, and the workspace side of a peering is
  where ARM says which network it is (``databricksVirtualNetwork``).
  ``properties.defaultCatalog`` (models.tsp DefaultCatalogProperties, not allowed in Serverless mode):
  ``initialType`` HiveMetastore (the spec's default) or UnityCatalog, case-insensitive; ``initialName``
  defaults to the workspace's name. When done, a Unity Catalog stand-in given to ``install_databricks``
  gets that default catalog: the workspace's name with "_" for "-" for UnityCatalog, else
  hive_metastore (learn.microsoft.com/azure/databricks/catalogs/default: workspaces not set up with
  the workspace catalog have hive_metastore as their default catalog).
  The workspace is enabled for Unity Catalog (``isUcEnabled``, as Azure enables new workspaces), so the
  managed resource group also holds the DBFS storage account (the workspace catalog's default storage)
  and the Unity Catalog access connector.
  DELETE answers 202 with ``Azure-AsyncOperation`` and ``Location`` (as WorkspaceDelete.json), 204 if
  there is nothing to delete; when done the workspace, its peerings and its managed network are gone.
  Without ``forceDeletion=true`` the managed resource group stays, holding the storage account and the
  access connector: the spec's forceDeletion ("By default the data will [be] retained if Uc is enabled
  on the workspace", WorkspaceDeleteForceDeletion.json) and learn.microsoft.com/azure/databricks/admin/
  workspace/delete-workspace ("the DBFS storage account and access connector in the managed resource
  group are retained unless you force delete them"). With it, the managed resource group goes whole.
- vNetPeering_CreateOrUpdate / _Get / _Delete, api-version 2026-01-01 (VirtualNetworkPeering.tsp,
  examples/2026-01-01/WorkspaceVirtualNetworkPeeringCreateOrUpdate.json): PUT 201 with the body
  (databricksVirtualNetwork, databricksAddressSpace, remoteAddressSpace, peeringState,
  provisioningState Updating) and ``Location``; GET 200, or 204 without a body when absent
  (the spec's ArmNoContentResponse); DELETE 202 with ``Location``, or 204.
- VirtualNetworkPeerings_CreateOrUpdate / _Get / _Delete, api-version 2026-03-01 of the SDK
  (the newest example stored is specification/network/resource-manager/Microsoft.Network/Network/
  examples/2025-05-01/VirtualNetworkPeeringCreate.json, same body): PUT 201 with the body and
  ``Azure-AsyncOperation``; DELETE 202 with ``Location``.
  Both kinds of peering: peeringState "Initiated" while only one side exists, "Connected" once
  the other side (a peering from the remote network back to this one) exists, "Disconnected"
  after the other side or the remote network is deleted.
- Subscriptions_List, api-version 2022-12-01 (specification/resources/resource-manager/
  Microsoft.Resources/subscriptions/examples/2022-12-01/GetSubscriptions.json).
- Permissions_ListForResourceGroup, api-version 2022-04-01 (specification/authorization/
  resource-manager/Microsoft.Authorization/stable/2022-04-01/authorization-RoleDefinitionsCalls.json):
  ``GET /subscriptions/{id}/resourcegroups/{rg}/providers/Microsoft.Authorization/permissions``,
  404 ResourceGroupNotFound for a group that does not exist. The same answer at the subscription
  (``/subscriptions/{id}/providers/Microsoft.Authorization/permissions``): ARM serves it, but the
  spec documents only the resource-group and resource scopes.
- Providers_Get, api-version 2025-04-01 of azure-mgmt-resource 26.0.0
  (specification/resources/resource-manager/Microsoft.Resources/resources, GetProvider example):
  ``registrationState`` and each resource type's ``locations`` as display names ("East US").
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.standins.azure_arm import _RG, ArmStandIn, Fault, arm_error
from tests.standins.unity_catalog import UnityCatalogStandIn

WORKSPACE_TYPE = "Microsoft.Databricks/workspaces"
DATABRICKS_PEERING_TYPE = "Microsoft.Databricks/workspaces/virtualNetworkPeerings"
NETWORK_PEERING_TYPE = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings"
DATABRICKS_API = "2026-01-01"
MANAGED_VNET = "workers-vnet"  # the default name of the managed network (see install_databricks)

_WS = r"/providers/Microsoft\.Databricks/workspaces/(?P<name>[^/]+)"
_VNET = r"/providers/Microsoft\.Network/virtualNetworks/(?P<vnet>[^/]+)"


@dataclass
class _WorkspaceOperation:
    key: str
    kind: str  # "create" or "delete"
    polls_left: int
    error: dict[str, str] | None = None
    done: bool = False
    force: bool = False  # a delete with forceDeletion=true


@dataclass
class _DatabricksState:
    workspace_host: str
    connect: bool
    managed_vnet: str = MANAGED_VNET
    unity_catalog: UnityCatalogStandIn | None = None
    operations: dict[str, _WorkspaceOperation] = field(default_factory=dict)
    ever_connected: set[str] = field(default_factory=set)  # peering keys that were Connected once
    ids: Any = field(default_factory=lambda: itertools.count(1))


def _not_found(kind: str, name: str, rg: str) -> tuple[int, dict[str, str], Any]:
    return (
        404,
        {},
        arm_error("ResourceNotFound", f"The Resource '{kind}/{name}' under resource group '{rg}' was not found."),
    )


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


# --- peering state --------------------------------------------------------------------------------


def _local_and_remote(resource: dict[str, Any]) -> tuple[str, str]:
    properties = resource["properties"]
    remote = properties["remoteVirtualNetwork"]["id"]
    if resource["type"] == DATABRICKS_PEERING_TYPE:
        return properties["databricksVirtualNetwork"]["id"], remote
    return resource["id"].rsplit("/virtualNetworkPeerings/", 1)[0], remote


def _peerings(standin: ArmStandIn) -> list[dict[str, Any]]:
    """The peerings that exist (one being deleted no longer counts as the other side)."""
    return [
        r
        for r in standin.state.resources.values()
        if r["type"] in (DATABRICKS_PEERING_TYPE, NETWORK_PEERING_TYPE)
        and r["properties"].get("provisioningState") != "Deleting"
    ]


def _refresh_peering(standin: ArmStandIn, db: _DatabricksState, resource: dict[str, Any]) -> None:
    """Set peeringState from what exists now: the remote network, and a peering back from it."""
    local, remote = _local_and_remote(resource)
    key = resource["id"].lower()
    back = any(
        _local_and_remote(other)[0].lower() == remote.lower() and _local_and_remote(other)[1].lower() == local.lower()
        for other in _peerings(standin)
    )
    if remote.lower() in standin.state.resources and back and db.connect:
        state = "Connected"
        db.ever_connected.add(key)
    elif key in db.ever_connected or remote.lower() not in standin.state.resources:
        state = "Disconnected"
    else:
        state = "Initiated"
    resource["properties"]["peeringState"] = state


def _address_space(standin: ArmStandIn, vnet_id: str) -> dict[str, Any]:
    vnet = standin.state.resources.get(vnet_id.lower())
    return _copy(vnet["properties"]["addressSpace"]) if vnet else {"addressPrefixes": []}


# --- workspaces -----------------------------------------------------------------------------------


def _workspace_done(standin: ArmStandIn, db: _DatabricksState, op: _WorkspaceOperation) -> None:
    workspace = standin.state.resources.get(op.key)
    if op.kind == "delete":
        if workspace is None:
            return
        for key in [k for k in standin.state.resources if k.startswith(op.key + "/")]:
            standin.state.resources.pop(key)
        managed = workspace["properties"]["managedResourceGroupId"].lower()
        retained = () if op.force or not workspace["properties"].get("isUcEnabled") else _UC_DATA_TYPES
        for key in [k for k in standin.state.resources if k.startswith(managed + "/")]:
            if standin.state.resources[key]["type"] not in retained:
                standin.state.resources.pop(key)
        if retained:  # the docs do not say what manages the group then: no managedBy here
            standin.state.resources[managed].pop("managedBy", None)
        else:
            standin.state.resources.pop(managed, None)
        standin.state.resources.pop(op.key)
        return
    if workspace is None:
        return
    properties = workspace["properties"]
    if op.error:
        properties["provisioningState"] = "Failed"
        return
    properties["provisioningState"] = "Succeeded"
    properties["workspaceId"] = str(1000000000000000 + next(db.ids))
    properties["workspaceUrl"] = db.workspace_host
    properties["isUcEnabled"] = True
    if db.unity_catalog is not None:
        db.unity_catalog.default_catalog = _default_catalog(workspace)
    group = _managed_group(workspace)
    standin.state.resources[group["id"].lower()] = group
    group_id = group["id"]
    storage = f"dbstorage{properties['workspaceId'][-13:]}"  # Azure picks the name when none is given
    for kind, name in ((_STORAGE_TYPE, storage), (_ACCESS_CONNECTOR_TYPE, _ACCESS_CONNECTOR)):
        resource_id = f"{group_id}/providers/{kind}/{name}"
        standin.state.resources[resource_id.lower()] = {
            "id": resource_id,
            "name": name,
            "type": kind,
            "location": workspace["location"],
            "tags": {},
            "properties": {"provisioningState": "Succeeded"},
        }
    prefix = (properties.get("parameters", {}).get("vnetAddressPrefix") or {}).get("value", "10.139")
    vnet_id = f"{group_id}/providers/Microsoft.Network/virtualNetworks/{db.managed_vnet}"
    standin.state.resources[vnet_id.lower()] = {
        "id": vnet_id,
        "name": db.managed_vnet,
        "type": "Microsoft.Network/virtualNetworks",
        "location": workspace["location"],
        "tags": {},
        "properties": {
            "provisioningState": "Succeeded",
            "addressSpace": {"addressPrefixes": [f"{prefix}.0.0/16"]},
            "subnets": [
                {"id": f"{vnet_id}/subnets/{name}", "name": name, "properties": {"provisioningState": "Succeeded"}}
                for name in ("public-subnet", "private-subnet")
            ],
        },
    }


_STORAGE_TYPE = "Microsoft.Storage/storageAccounts"
_ACCESS_CONNECTOR_TYPE = "Microsoft.Databricks/accessConnectors"
_ACCESS_CONNECTOR = "unity-catalog-access-connector"
_UC_DATA_TYPES = (_STORAGE_TYPE, _ACCESS_CONNECTOR_TYPE)  # kept without forceDeletion


def _managed_group(workspace: dict[str, Any]) -> dict[str, Any]:
    """The workspace's managed resource group, ``managedBy`` the workspace."""
    _, _, sub, _, name = workspace["properties"]["managedResourceGroupId"].split("/")[:5]
    return {
        "id": f"/subscriptions/{sub}/resourceGroups/{name}",
        "name": name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": workspace["location"],
        "managedBy": workspace["id"],
        "tags": {},
        "properties": {"provisioningState": "Succeeded"},
    }


def _default_catalog(workspace: dict[str, Any]) -> str:
    """The default catalog a new workspace gets from its ``defaultCatalog`` (see the module docstring)."""
    default = workspace["properties"].get("defaultCatalog") or {}
    if str(default.get("initialType", "HiveMetastore")).lower() != "unitycatalog":
        return "hive_metastore"
    return (default.get("initialName") or workspace["name"]).replace("-", "_")


def _check_workspace_body(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request content must be a JSON object."
    missing = [key for key in ("location", "properties") if key not in body]
    if missing:
        return f"The request content lacks {', '.join(missing)}."
    properties = body["properties"]
    mode = properties.get("computeMode")
    if mode not in ("Hybrid", "Serverless"):
        return f"computeMode must be Hybrid or Serverless, not {mode!r}."
    if mode == "Hybrid" and not properties.get("managedResourceGroupId"):
        return "managedResourceGroupId is required in Hybrid compute mode."
    for name, parameter in (properties.get("parameters") or {}).items():
        if not isinstance(parameter, dict) or "value" not in parameter:
            return f"The custom parameter {name!r} must be an object with a 'value'."
    prefix = (properties.get("parameters") or {}).get("vnetAddressPrefix", {}).get("value")
    if prefix is not None and not re.fullmatch(r"\d{1,3}\.\d{1,3}", str(prefix)):
        return f"vnetAddressPrefix {prefix!r} must be the first two octets of a /16, like 10.139."
    default_catalog = properties.get("defaultCatalog")
    if default_catalog is not None:
        if mode == "Serverless":
            return "defaultCatalog is not allowed in Serverless compute mode."
        kind = str(default_catalog.get("initialType", "HiveMetastore"))
        if kind.lower() not in ("hivemetastore", "unitycatalog"):
            return f"defaultCatalog.initialType must be HiveMetastore or UnityCatalog, not {kind!r}."
    sku = (body.get("sku") or {}).get("name")
    if sku not in (None, "premium", "trial"):
        return f"The sku {sku!r} is not offered for new workspaces."
    return None


def install_databricks(
    standin: ArmStandIn,
    *,
    workspace_host: str = "adb-0000000000000000.0.azuredatabricks.net",
    connect_peerings: bool = True,
    managed_vnet: str = MANAGED_VNET,
    unity_catalog: UnityCatalogStandIn | None = None,
) -> None:
    """Serve Databricks workspaces and both kinds of VNet peering (see the module docstring).

    ``workspace_host``: the workspaceUrl of every workspace made (a test gives "127.0.0.1:PORT"
    of a Databricks REST stand-in). ``connect_peerings=False``: peerings stay "Initiated" even when
    both sides exist (a peering that never connects). ``managed_vnet``: the name of each workspace's
    managed network. ``unity_catalog``: the workspace host's Unity Catalog, whose default catalog a
    new workspace sets.
    """
    db = _DatabricksState(workspace_host, connect_peerings, managed_vnet, unity_catalog)

    def op_headers(match: re.Match[str], op_id: str, *names: str) -> dict[str, str]:
        workspace_path = f"/subscriptions/{match['sub']}/resourceGroups/{match['rg']}/providers/{WORKSPACE_TYPE}"
        base = f"{standin.base_url}{workspace_path}/{match['name']}"
        urls = {
            "Azure-AsyncOperation": f"{base}/operationStatus/{op_id}?api-version={DATABRICKS_API}",
            "Location": f"{base}/operationResults/{op_id}?api-version={DATABRICKS_API}",
        }
        return {name: urls[name] for name in names} | {"Retry-After": "0"}

    def advance(op: _WorkspaceOperation) -> None:
        if op.done:
            return
        op.polls_left -= 1
        if op.polls_left <= 0:
            op.done = True
            _workspace_done(standin, db, op)

    def operations(method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        op = db.operations.get(match["op"])
        if op is None:
            return 404, {}, arm_error("OperationNotFound", match["op"])
        advance(op)
        if match["which"].lower() == "operationstatus":
            if not op.done:
                return 200, {"Retry-After": "0"}, {"status": "InProgress"}
            if op.error:
                return 200, {}, {"status": "Failed", "error": op.error}
            return 200, {}, {"status": "Succeeded"}
        if not op.done:
            return 202, op_headers(match, match["op"], "Location"), None
        if op.error:
            return 400, {}, arm_error(op.error["code"], op.error["message"])
        if op.kind == "delete":
            return 200, {}, None
        return 200, {}, standin.state.resources.get(op.key)

    def workspace(method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        key = match.group(0).lower()
        rg_key = key.split("/providers/")[0]
        existing = standin.state.resources.get(key)
        if rg_key not in standin.state.resources:
            return 404, {}, arm_error("ResourceGroupNotFound", f"Resource group '{match['rg']}' could not be found.")
        if method == "GET":
            for op in [op for op in db.operations.values() if op.key == key and op.kind == "create"]:
                advance(op)  # time passes for an operation nobody polls (a run that stopped waiting)
            existing = standin.state.resources.get(key)
            return (200, {}, existing) if existing else _not_found(WORKSPACE_TYPE, match["name"], match["rg"])
        if method == "PUT":
            problem = _check_workspace_body(body)
            if problem is not None:
                return 400, {}, arm_error("InvalidRequestContent", problem)
            managed = body["properties"].get("managedResourceGroupId", "").lower()
            owner = standin.state.resources.get(managed, {}).get("managedBy")
            if managed in standin.state.resources and (owner or "").lower() != key:
                return (
                    409,
                    {},
                    arm_error(
                        "InvalidManagedResourceGroup",
                        f"The managed resource group '{managed.rsplit('/', 1)[-1]}' already exists; "
                        "give a resource group that does not exist.",
                    ),
                )
            properties = _copy(body["properties"])
            for parameter in (properties.get("parameters") or {}).values():
                parameter.setdefault("type", "Bool" if isinstance(parameter["value"], bool) else "String")
            properties["provisioningState"] = "Accepted"
            resource = {
                "id": match.group(0),
                "name": match["name"],
                "type": WORKSPACE_TYPE,
                "location": body["location"],
                "tags": body.get("tags") or {},
                "sku": body.get("sku") or {"name": "premium"},
                "properties": properties,
            }
            standin.state.resources[key] = resource
            op_id = f"ws-op-{next(db.ids)}"
            error = {"code": fault.code, "message": fault.message} if fault and fault.during_operation else None
            db.operations[op_id] = _WorkspaceOperation(key, "create", standin.polls, error)
            return (200 if existing else 201), op_headers(match, op_id, "Location"), resource
        if method == "DELETE":
            if existing is None:
                return 204, {}, None
            existing["properties"]["provisioningState"] = "Deleting"
            op_id = f"ws-op-{next(db.ids)}"
            force = query.get("forceDeletion", "false").lower() == "true"
            db.operations[op_id] = _WorkspaceOperation(key, "delete", standin.polls, force=force)
            return 202, op_headers(match, op_id, "Azure-AsyncOperation", "Location"), None
        return 405, {}, arm_error("MethodNotAllowed", method)

    def peering(method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        databricks = "/microsoft.databricks/" in match.group(0).lower()
        key = match.group(0).lower()
        parent_key = key.rsplit("/virtualnetworkpeerings/", 1)[0]
        parent = standin.state.resources.get(parent_key)
        kind = DATABRICKS_PEERING_TYPE if databricks else NETWORK_PEERING_TYPE
        existing = standin.state.resources.get(key)
        if parent is None:
            parent_kind = WORKSPACE_TYPE if databricks else "Microsoft.Network/virtualNetworks"
            parent_name = match["name"] if databricks else match["vnet"]
            return _not_found(parent_kind, parent_name, match["rg"])
        if method == "GET":
            if existing is None:
                # vNetPeering_Get answers 204 without a body (the spec's ArmNoContentResponse).
                return (204, {}, None) if databricks else _not_found(kind, match["peering"], match["rg"])
            _refresh_peering(standin, db, existing)
            return 200, {}, existing
        if method == "PUT":
            properties = (body or {}).get("properties") if isinstance(body, dict) else None
            remote = ((properties or {}).get("remoteVirtualNetwork") or {}).get("id")
            if not remote:
                return 400, {}, arm_error("InvalidRequestContent", "properties.remoteVirtualNetwork.id is required.")
            if remote.lower() not in standin.state.resources:
                return 400, {}, arm_error("ResourceNotFound", f"The remote virtual network '{remote}' was not found.")
            if databricks and parent["properties"].get("provisioningState") != "Succeeded":
                return (
                    409,
                    {},
                    arm_error("WorkspaceNotReady", f"The workspace '{match['name']}' is not in a Succeeded state."),
                )
            properties = _copy(properties)
            resource: dict[str, Any] = {"id": match.group(0), "name": match["peering"], "type": kind}
            if databricks:
                managed = parent["properties"]["managedResourceGroupId"]
                local = f"{managed}/providers/Microsoft.Network/virtualNetworks/{db.managed_vnet}"
                properties["databricksVirtualNetwork"] = {"id": local}
                properties["databricksAddressSpace"] = _address_space(standin, local)
            else:
                properties["remoteVirtualNetworkAddressSpace"] = _address_space(standin, remote)
            properties["remoteAddressSpace"] = _address_space(standin, remote)
            for flag in (
                "allowVirtualNetworkAccess",
                "allowForwardedTraffic",
                "allowGatewayTransit",
                "useRemoteGateways",
            ):
                properties.setdefault(flag, flag == "allowVirtualNetworkAccess")
            properties["provisioningState"] = "Updating"
            resource["properties"] = properties
            standin.state.resources[key] = resource
            db.ever_connected.discard(key)
            _refresh_peering(standin, db, resource)
            for other in _peerings(standin):
                _refresh_peering(standin, db, other)
            error = {"code": fault.code, "message": fault.message} if fault and fault.during_operation else None
            op_id = standin._operation(key, "create", error)
            header = "Location" if databricks else "Azure-AsyncOperation"
            return (200 if existing else 201), standin._async_headers(op_id, header), resource
        if method == "DELETE":
            if existing is None:
                return 204, {}, None
            existing["properties"]["provisioningState"] = "Deleting"  # gone when the operation is done
            return 202, standin._async_headers(standin._operation(key, "delete"), "Location"), None
        return 405, {}, arm_error("MethodNotAllowed", method)

    standin.add_route(
        "databricks-operations",
        _RG + _WS + r"/(?P<which>operationStatus|operationResults)/(?P<op>[^/]+)$",
        operations,
    )
    standin.add_route("databricks-peering", _RG + _WS + r"/virtualNetworkPeerings/(?P<peering>[^/]+)$", peering)
    standin.add_route("databricks-workspace", _RG + _WS + "$", workspace)
    standin.add_route("network-peering", _RG + _VNET + r"/virtualNetworkPeerings/(?P<peering>[^/]+)$", peering)


# --- sign-in and access ---------------------------------------------------------------------------

DEFAULT_LOCATIONS: Mapping[str, Sequence[str]] = {
    "Microsoft.HDInsight/clusters": ("East US", "East US 2", "West Europe", "North Europe", "West US 2"),
    "Microsoft.Databricks/workspaces": ("East US", "East US 2", "West Europe", "North Europe", "West US 2"),
}


@dataclass(frozen=True)
class SubscriptionEntry:
    subscription_id: str
    display_name: str
    state: str = "Enabled"


def install_access(
    standin: ArmStandIn,
    *,
    actions: Sequence[str] = ("*",),
    not_actions: Sequence[str] = (),
    subscriptions: Sequence[SubscriptionEntry] = (
        SubscriptionEntry("00000000-0000-0000-0000-000000000000", "Tweet stream (test)"),
    ),
    provider_locations: Mapping[str, Sequence[str]] = DEFAULT_LOCATIONS,
    unregistered: Sequence[str] = (),
) -> None:
    """Serve Subscriptions_List, the permissions of the caller, and Providers_Get.

    ``actions``/``not_actions``: the caller's one permission entry (as a role's). ``provider_locations``:
    "Namespace/resourceType" -> the display names of its regions. ``unregistered``: namespaces whose
    registrationState is NotRegistered.
    """

    def subscriptions_list(method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        if method != "GET":
            return 405, {}, arm_error("MethodNotAllowed", method)
        value = [
            {
                "id": f"/subscriptions/{entry.subscription_id}",
                "subscriptionId": entry.subscription_id,
                "displayName": entry.display_name,
                "state": entry.state,
                "tenantId": "31c75423-32d6-4322-88b7-c478bdde4858",
                "authorizationSource": "RoleBased",
                "subscriptionPolicies": {"spendingLimit": "Off"},
            }
            for entry in subscriptions
        ]
        return 200, {}, {"value": value}

    answer = {
        "value": [{"actions": list(actions), "notActions": list(not_actions), "dataActions": [], "notDataActions": []}]
    }

    def permissions(method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        rg = match.groupdict().get("rg")
        if (
            rg is not None
            and f"/subscriptions/{match['sub']}/resourcegroups/{rg}".lower() not in standin.state.resources
        ):
            return 404, {}, arm_error("ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return 200, {}, answer

    def provider(method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        namespace = match["ns"]
        types = [
            {"resourceType": key.split("/", 1)[1], "locations": list(locations), "apiVersions": []}
            for key, locations in provider_locations.items()
            if key.split("/", 1)[0].lower() == namespace.lower()
        ]
        if not types:
            return 404, {}, arm_error("InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
        registered = namespace.lower() not in {name.lower() for name in unregistered}
        return (
            200,
            {},
            {
                "id": f"/subscriptions/{match['sub']}/providers/{namespace}",
                "namespace": namespace,
                "registrationState": "Registered" if registered else "NotRegistered",
                "resourceTypes": types,
            },
        )

    standin.add_route("subscriptions-list", r"/subscriptions$", subscriptions_list)
    standin.add_route("permissions-rg", _RG + r"/providers/Microsoft\.Authorization/permissions$", permissions)
    standin.add_route(
        "permissions-subscription",
        r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Authorization/permissions$",
        permissions,
    )
    standin.add_route("provider", r"/subscriptions/(?P<sub>[^/]+)/providers/(?P<ns>[^/]+)$", provider)

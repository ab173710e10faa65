"""A stand-in for Azure Resource Manager and Entra ID's token endpoint on 127.0.0.1, over HTTPS.

A real HTTPS server (ThreadingHTTPServer on a free port, served from a thread) with a
self-signed certificate made at start; give ``ca_path`` to the SDK clients and the credential
as ``connection_verify`` (azure-core sends bearer tokens over https only). It follows the
documented REST contracts (Azure/azure-rest-api-specs, the SDKs' default api-versions):

- Entra ID: ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and
  ``POST /{tenant}/oauth2/v2.0/token`` (client credentials), for ``ClientSecretCredential``
  with ``authority=`` this server and ``disable_instance_discovery=True``.
- Resource groups (ResourceGroups_CreateOrUpdate / _Get: 200 or 201, synchronous;
  _Delete: 202 with ``Location``, then 200) and ``GET .../resources`` with a
  ``tagName eq '..' and tagValue eq '..'`` filter (Resources_ListByResourceGroup).
- Virtual networks, with their subnets inline (VirtualNetworks_CreateOrUpdate: 201 with
  ``Azure-AsyncOperation``, ``provisioningState`` Updating until the operation succeeds;
  _Delete: 202 with ``Location``).
- Public IP addresses, NAT gateways and network security groups (PublicIPAddresses_CreateOrUpdate,
  NatGateways_CreateOrUpdate, NetworkSecurityGroups_CreateOrUpdate: 201 with ``Azure-AsyncOperation``;
  _Delete: 202 with ``Location``), checked as ``_network_kinds`` says; a subnet's ``natGateway`` and
  ``networkSecurityGroup`` must exist, and a new subnet is private (``defaultOutboundAccess`` false)
  unless the request says otherwise. Deleting one that a subnet or NAT gateway still uses is refused.
- Storage accounts (StorageAccounts_Create: 202 with ``Location``, which answers 202 until
  done, then 200 with the account; ``provisioningState`` Creating, then Succeeded;
  StorageAccounts_Delete: 200, synchronous; a globally taken name: 409
  StorageAccountAlreadyTaken).

More resource types are served with :meth:`ArmStandIn.add_kind` (a ResourceKind: its path,
required body keys, how create and delete answer, hooks for validation and completion) and any
other path with :meth:`ArmStandIn.add_route`, so each service's routes can live in a module of
its own.

Every operation takes ``polls`` polls to finish; answers carry ``Retry-After: 0``. Errors are
ARM's body ``{"error": {"code", "message"}}``. Faults are injected with :meth:`fail` (an answer
on the Nth matching call, or an operation that ends Failed). Every request is recorded
(method, path, api-version, body) in ``calls``.

Use it as a context manager::

    with ArmStandIn() as arm:
        credential = arm.credential()
        ... ResourceManagementClient(credential, sub, **arm.client_options())
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.standins.https import HttpsServer

TENANT = "tweetstream-tenant"
CLIENT_ID = "tweetstream-client"
CLIENT_SECRET = "tweetstream-secret"  # a test value, not a secret

_RG = r"/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
_ROUTES = {
    "rg": re.compile(_RG + r"$", re.I),
    "resources": re.compile(_RG + r"/resources$", re.I),
    "status": re.compile(r"/subscriptions/[^/]+/providers/[^/]+/locations/[^/]+/operations/(?P<op>[^/]+)$", re.I),
    "result": re.compile(r"/subscriptions/[^/]+/providers/[^/]+/locations/[^/]+/operationResults/(?P<op>[^/]+)$", re.I),
}


@dataclass(frozen=True)
class ResourceKind:
    """How the stand-in serves one ARM resource type: GET, PUT (long-running), DELETE.

    ``path``: the pattern after the resource group (groups ``name`` and any parents).
    ``create_answer``: "azure-async" (201 with the body and ``Azure-AsyncOperation``) or
    "location" (202, no body, ``Location``). ``delete_answer``: "sync" (200) or "location" (202).
    ``check_put(standin, match, body)``: an error answer (status, body) for a bad request, or None.
    ``on_put(standin, match, resource)``: fill in what ARM adds (ids, read-only properties).
    ``on_done(standin, resource)``: what changes when the create operation succeeds.
    ``check_delete(standin, resource)``: an error answer (status, body) for a delete ARM refuses, or None.
    """

    route: str
    path: str
    type: str
    required: tuple[str, ...] = ("location",)
    creating: str = "Creating"
    create_answer: str = "location"
    delete_answer: str = "location"
    check_put: Callable[..., tuple[int, dict[str, Any]] | None] | None = None
    on_put: Callable[..., None] | None = None
    on_done: Callable[..., None] | None = None
    check_delete: Callable[..., tuple[int, dict[str, Any]] | None] | None = None


def _users_of(standin: ArmStandIn, resource_id: str) -> list[str]:
    """The ids of the subnets and NAT gateways that refer to ``resource_id``."""
    wanted, users = resource_id.lower(), []
    for resource in standin.state.resources.values():
        props = resource.get("properties", {})
        for ip in props.get("publicIpAddresses", []):
            if str(ip.get("id", "")).lower() == wanted:
                users.append(resource["id"])
        for subnet in props.get("subnets", []):
            refs = [(subnet.get("properties") or {}).get(key) or {} for key in ("natGateway", "networkSecurityGroup")]
            if any(str(ref.get("id", "")).lower() == wanted for ref in refs):
                users.append(subnet.get("id", resource["id"]))
    return users


def _in_use(code: str) -> Callable[[ArmStandIn, dict[str, Any]], tuple[int, dict[str, Any]] | None]:
    # The network resource provider refuses to delete what another resource still uses (error codes as
    # ARM answers them: InUseNatGatewayCannotBeDeleted, PublicIPAddressCannotBeDeleted,
    # InUseNetworkSecurityGroupCannotBeDeleted), so teardown must go in order.
    def check(standin: ArmStandIn, resource: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        users = _users_of(standin, resource["id"])
        if not users:
            return None
        return 400, arm_error(code, f"{resource['type']} {resource['name']} is in use by {', '.join(users)}.")

    return check


def _check_public_ip(standin: ArmStandIn, match: re.Match[str], body: dict[str, Any]):
    # Basic SKU public IPs were retired on 2025-09-30 ("Upgrade to Standard SKU public IP addresses"); a NAT
    # gateway takes only Standard static IPv4 addresses ("Azure NAT Gateway resource": public IP requirements).
    sku = (body.get("sku") or {}).get("name")
    method = (body.get("properties") or {}).get("publicIPAllocationMethod")
    if sku != "Standard" or method != "Static":
        return 400, arm_error("InvalidRequestContent", f"only Standard static public IPs: sku {sku}, {method}")
    return None


def _check_nat_gateway(standin: ArmStandIn, match: re.Match[str], body: dict[str, Any]):
    # NatGateways_CreateOrUpdate (NatGatewayCreateOrUpdate.json): sku Standard, publicIpAddresses that exist.
    if (body.get("sku") or {}).get("name") != "Standard":
        return 400, arm_error("InvalidRequestContent", "a NAT gateway's sku must be Standard")
    for ip in (body.get("properties") or {}).get("publicIpAddresses") or []:
        if standin.resource(str(ip.get("id", ""))) is None:
            return 400, arm_error("InvalidResourceReference", f"Resource {ip.get('id')} referenced was not found.")
    return None


def _check_subnets(standin: ArmStandIn, match: re.Match[str], body: dict[str, Any]):
    # A subnet's natGateway and networkSecurityGroup must exist (InvalidResourceReference, as ARM answers).
    for subnet in (body.get("properties") or {}).get("subnets") or []:
        props = subnet.get("properties") or {}
        for key in ("natGateway", "networkSecurityGroup"):
            ref = str((props.get(key) or {}).get("id", ""))
            if ref and standin.resource(ref) is None:
                return 400, arm_error("InvalidResourceReference", f"Resource {ref} referenced by subnet was not found.")
    return None


def _private_subnets(standin: ArmStandIn, match: re.Match[str], resource: dict[str, Any]) -> None:
    # From api-version 2025-07-01 (azure-mgmt-network 33.1.0 sends 2026-03-01) a new subnet is private:
    # defaultOutboundAccess false unless the request sets it ("Default outbound access in Azure").
    for subnet in resource["properties"].get("subnets", []):
        subnet.setdefault("properties", {}).setdefault("defaultOutboundAccess", False)


_KINDS = (
    # The specs' VirtualNetworks_CreateOrUpdate (as in VirtualNetworkCreateSubnet.json).
    ResourceKind(
        "vnet",
        r"/providers/Microsoft\.Network/virtualNetworks/(?P<name>[^/]+)",
        "Microsoft.Network/virtualNetworks",
        required=("location", "properties"),
        creating="Updating",
        create_answer="azure-async",
        check_put=_check_subnets,
        on_put=_private_subnets,
    ),
    ResourceKind(
        "public-ip",
        r"/providers/Microsoft\.Network/publicIPAddresses/(?P<name>[^/]+)",
        "Microsoft.Network/publicIPAddresses",
        required=("location", "sku"),
        creating="Updating",
        create_answer="azure-async",
        check_put=_check_public_ip,
        check_delete=_in_use("PublicIPAddressCannotBeDeleted"),
    ),
    ResourceKind(
        "nat-gateway",
        r"/providers/Microsoft\.Network/natGateways/(?P<name>[^/]+)",
        "Microsoft.Network/natGateways",
        required=("location", "sku"),
        creating="Updating",
        create_answer="azure-async",
        check_put=_check_nat_gateway,
        check_delete=_in_use("InUseNatGatewayCannotBeDeleted"),
    ),
    ResourceKind(
        "nsg",
        r"/providers/Microsoft\.Network/networkSecurityGroups/(?P<name>[^/]+)",
        "Microsoft.Network/networkSecurityGroups",
        creating="Updating",
        create_answer="azure-async",
        check_delete=_in_use("InUseNetworkSecurityGroupCannotBeDeleted"),
    ),
    # StorageAccountCreateParameters: sku, kind, location.
    ResourceKind(
        "storage",
        r"/providers/Microsoft\.Storage/storageAccounts/(?P<name>[^/]+)",
        "Microsoft.Storage/storageAccounts",
        required=("sku", "kind", "location"),
        delete_answer="sync",
    ),
)
_TAG_FILTER = re.compile(r"tagName eq '(?P<name>[^']*)' and tagValue eq '(?P<value>[^']*)'")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")


@dataclass
class Fault:
    """Answer ``status`` with ARM's error body on the ``nth`` call matching method and path.

    ``during_operation``: accept the request, then end its long-running operation as Failed
    with this error (the resource stays, provisioningState Failed).
    """

    method: str
    path_contains: str
    code: str
    message: str
    status: int = 409
    nth: int = 1
    during_operation: bool = False
    seen: int = 0


@dataclass
class _Operation:
    key: str  # the resource's key in the store
    kind: str  # "create" or "delete"
    polls_left: int
    error: dict[str, str] | None = None
    done: bool = False


@dataclass
class _State:
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-cased id -> body
    operations: dict[str, _Operation] = field(default_factory=dict)
    taken_storage_names: set[str] = field(default_factory=set)  # taken by others, elsewhere in Azure


def arm_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class ArmStandIn:
    def __init__(self, *, polls: int = 2) -> None:
        self.polls = polls
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.state = _State()
        self.token = "standin-token"
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._https = HttpsServer(_handler(self), "arm-standin")
        self.ca_path = self._https.ca_path
        self.routes: dict[str, tuple[re.Pattern[str], Callable[..., Any]]] = {
            route: (pattern, getattr(self, f"_{route}")) for route, pattern in _ROUTES.items()
        }
        self.kinds: dict[str, ResourceKind] = {}
        for kind in _KINDS:
            self.add_kind(kind)

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._https.port}"

    def __enter__(self) -> ArmStandIn:
        self._https.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._https.stop()

    # --- for tests ------------------------------------------------------------------------------

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for the management clients: this server, its CA, no wait between polls."""
        return {"base_url": self.base_url, "connection_verify": str(self.ca_path), "polling_interval": 0}

    def credential(self) -> Any:
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(
            TENANT,
            CLIENT_ID,
            CLIENT_SECRET,
            authority=self.base_url,
            disable_instance_discovery=True,
            connection_verify=str(self.ca_path),
        )

    def add_route(self, route: str, pattern: str, handler: Callable[..., tuple[int, dict[str, str], Any]]) -> None:
        """Serve paths matching ``pattern`` (a full path regex) with ``handler(method, match, query, body, fault)``,
        called under the lock; the route is tried before the ones added after it."""
        self.routes[route] = (re.compile(pattern, re.I), handler)

    def add_kind(self, kind: ResourceKind) -> None:
        """Serve a resource type inside a resource group (see ResourceKind)."""
        self.kinds[kind.route] = kind
        self.add_route(
            kind.route,
            _RG + kind.path + "$",
            lambda method, match, query, body, fault: self._arm_resource(kind.route, method, match, body, fault),
        )

    def fail(self, method: str, path_contains: str, code: str, message: str, **options: Any) -> Fault:
        fault = Fault(method, path_contains, code, message, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def arm_calls(self) -> list[Call]:
        """The ARM requests (not the token endpoint's), in order."""
        return [call for call in self.calls if call.path == "/subscriptions" or call.path.startswith("/subscriptions/")]

    def resource(self, resource_id: str) -> dict[str, Any] | None:
        return self.state.resources.get(resource_id.lower())

    # --- the server's logic (called by the handler under the lock) -------------------------------

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.path_contains.lower() in path.lower():
                fault.seen += 1
                if fault.seen == fault.nth:
                    return fault
        return None

    def _operation(self, key: str, kind: str, error: dict[str, str] | None = None) -> str:
        op_id = f"op-{next(self._ids)}"
        self.state.operations[op_id] = _Operation(key, kind, self.polls, error)
        return op_id

    def _advance(self, op: _Operation) -> None:
        if op.done:
            return
        op.polls_left -= 1
        if op.polls_left > 0:
            return
        op.done = True
        resource = self.state.resources.get(op.key)
        if op.kind == "delete":
            self.state.resources.pop(op.key, None)
        elif resource is not None:
            resource["properties"]["provisioningState"] = "Failed" if op.error else "Succeeded"
            for subnet in resource["properties"].get("subnets", []):
                subnet["properties"]["provisioningState"] = resource["properties"]["provisioningState"]
            kind = next((k for k in self.kinds.values() if k.type == resource["type"]), None)
            if not op.error and kind is not None and kind.on_done is not None:
                kind.on_done(self, resource)

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        self.calls.append(Call(method, path, dict(query), body))
        tenant_prefix = f"/{TENANT}/"
        if path.startswith(tenant_prefix):
            return self._entra(method, path[len(tenant_prefix) - 1 :], body)
        fault = self._fault(method, path)
        if fault is not None and not fault.during_operation:
            return fault.status, {}, arm_error(fault.code, fault.message)
        if "api-version" not in query:
            return 400, {}, arm_error("MissingApiVersionParameter", "The api-version query parameter is required.")
        for pattern, handler in self.routes.values():
            match = pattern.match(path)
            if match:
                return handler(method, match, query, body, fault)
        return 404, {}, arm_error("InvalidResourceType", f"No route for {method} {path}.")

    def _entra(self, method: str, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        issuer = f"{self.base_url}/{TENANT}/v2.0"
        if method == "GET" and path == "/v2.0/.well-known/openid-configuration":
            return (
                200,
                {},
                {
                    "issuer": issuer,
                    "authorization_endpoint": f"{self.base_url}/{TENANT}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{self.base_url}/{TENANT}/oauth2/v2.0/token",
                },
            )
        if method == "POST" and path == "/oauth2/v2.0/token":
            form = body if isinstance(body, dict) else {}
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return (
                    401,
                    {},
                    {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."},
                )
            return 200, {}, {"token_type": "Bearer", "expires_in": 3599, "access_token": self.token}
        return 404, {}, {"error": "not_found"}

    def _async_headers(self, op_id: str, header: str) -> dict[str, str]:
        kind = "operations" if header == "Azure-AsyncOperation" else "operationResults"
        url = f"{self.base_url}/subscriptions/sub/providers/standin/locations/eastus/{kind}/{op_id}?api-version=standin"
        return {header: url, "Retry-After": "0"}

    def _rg(self, method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        key = match.group(0).lower()
        existing = self.state.resources.get(key)
        if method == "GET":
            if existing is None:
                return (
                    404,
                    {},
                    arm_error("ResourceGroupNotFound", f"Resource group '{match['rg']}' could not be found."),
                )
            return 200, {}, existing
        if method == "PUT":
            if not isinstance(body, dict) or "location" not in body:
                return 400, {}, arm_error("InvalidRequestContent", "The request content must have 'location'.")
            resource = {
                "id": f"/subscriptions/{match['sub']}/resourceGroups/{match['rg']}",
                "name": match["rg"],
                "type": "Microsoft.Resources/resourceGroups",
                "location": body["location"],
                "tags": body.get("tags") or {},
                "properties": {"provisioningState": "Succeeded"},
            }
            self.state.resources[key] = resource
            return (200 if existing else 201), {}, resource
        if method == "DELETE":
            if existing is None:
                return (
                    404,
                    {},
                    arm_error("ResourceGroupNotFound", f"Resource group '{match['rg']}' could not be found."),
                )
            for other in list(self.state.resources):
                if other.startswith(key + "/"):
                    self.state.resources.pop(other)
            return 202, self._async_headers(self._operation(key, "delete"), "Location"), None
        return 405, {}, arm_error("MethodNotAllowed", method)

    def _resources(self, method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        rg_key = _ROUTES["rg"].match(match.group(0).rsplit("/", 1)[0])
        if rg_key is None or rg_key.group(0).lower() not in self.state.resources:
            return 404, {}, arm_error("ResourceGroupNotFound", f"Resource group '{match['rg']}' could not be found.")
        wanted = _TAG_FILTER.fullmatch(query.get("$filter", "")) if "$filter" in query else None
        if "$filter" in query and wanted is None:
            return 400, {}, arm_error("InvalidFilterInQueryString", f"Unsupported filter {query['$filter']!r}.")
        prefix = rg_key.group(0).lower() + "/"
        found = []
        for key, resource in self.state.resources.items():
            # Top-level resources only (providers/NS/TYPE/NAME), as ARM lists them: no child resources.
            if not key.startswith(prefix) or key[len(prefix) :].count("/") != 3:
                continue
            if wanted and resource.get("tags", {}).get(wanted["name"]) != wanted["value"]:
                continue
            item = {k: resource[k] for k in ("id", "name", "type", "location")}
            if not wanted:  # a tag filter's answer carries no tags (Resources_ListByResourceGroup)
                item["tags"] = resource.get("tags", {})
            found.append(item)
        return 200, {}, {"value": found}

    def _arm_resource(self, route: str, method: str, match: re.Match[str], body: Any, fault: Fault | None):
        kind = self.kinds[route]
        key = match.group(0).lower()
        rg_key = key.split("/providers/")[0]
        existing = self.state.resources.get(key)
        if rg_key not in self.state.resources:
            return 404, {}, arm_error("ResourceGroupNotFound", f"Resource group '{match['rg']}' could not be found.")
        if method == "GET":
            if existing is None:
                return (
                    404,
                    {},
                    arm_error(
                        "ResourceNotFound",
                        f"The Resource '{kind.type}/{match['name']}' under resource group "
                        f"'{match['rg']}' was not found.",
                    ),
                )
            return 200, {}, existing
        if method == "PUT":
            if not isinstance(body, dict) or "location" not in body:
                return 400, {}, arm_error("InvalidRequestContent", "The request content must have 'location'.")
            missing = [key for key in kind.required if key not in body]
            if missing:
                return 400, {}, arm_error("InvalidRequestContent", f"The request content lacks {', '.join(missing)}.")
            refusal = kind.check_put(self, match, body) if kind.check_put is not None else None
            if refusal is not None:
                return refusal[0], {}, refusal[1]
            if route == "storage" and match["name"].lower() in self.state.taken_storage_names:
                return (
                    409,
                    {},
                    arm_error(
                        "StorageAccountAlreadyTaken", f"The storage account named {match['name']} is already taken."
                    ),
                )
            resource_id = match.group(0)
            properties = json.loads(json.dumps(body.get("properties") or {}))
            properties["provisioningState"] = kind.creating
            for subnet in properties.get("subnets", []):
                subnet["id"] = f"{resource_id}/subnets/{subnet['name']}"
                subnet.setdefault("properties", {})["provisioningState"] = kind.creating
            resource = {
                "id": resource_id,
                "name": match["name"],
                "type": kind.type,
                "location": body["location"],
                "tags": body.get("tags") or {},
                "properties": properties,
            }
            for extra in ("sku", "kind", "identity", "zones"):
                if extra in body:
                    resource[extra] = body[extra]
            if kind.on_put is not None:
                kind.on_put(self, match, resource)
            self.state.resources[key] = resource
            error = {"code": fault.code, "message": fault.message} if fault and fault.during_operation else None
            op_id = self._operation(key, "create", error)
            if kind.create_answer == "azure-async":
                return 201, self._async_headers(op_id, "Azure-AsyncOperation"), resource
            return 202, self._async_headers(op_id, "Location"), None
        if method == "DELETE":
            if existing is None:
                return 204, {}, None
            refusal = kind.check_delete(self, existing) if kind.check_delete is not None else None
            if refusal is not None:
                return refusal[0], {}, refusal[1]
            if kind.delete_answer == "sync":
                self.state.resources.pop(key)
                return 200, {}, None
            return 202, self._async_headers(self._operation(key, "delete"), "Location"), None
        return 405, {}, arm_error("MethodNotAllowed", method)

    def _status(self, method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        op = self.state.operations.get(match["op"])
        if op is None:
            return 404, {}, arm_error("OperationNotFound", match["op"])
        self._advance(op)
        if not op.done:
            return 200, {"Retry-After": "0"}, {"status": "InProgress"}
        if op.error:
            return 200, {}, {"status": "Failed", "error": op.error}
        return 200, {}, {"status": "Succeeded"}

    def _result(self, method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        op = self.state.operations.get(match["op"])
        if op is None:
            return 404, {}, arm_error("OperationNotFound", match["op"])
        self._advance(op)
        if not op.done:
            return 202, self._async_headers(match["op"], "Location"), None
        if op.error:
            return 400, {}, arm_error(op.error["code"], op.error["message"])
        if op.kind == "delete":
            return 200, {}, None
        return 200, {}, self.state.resources.get(op.key)


def _handler(standin: ArmStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # each answer at once, not after the client's delayed ACK

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                if "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                    body = dict(parse_qsl(raw.decode()))
                else:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = raw.decode(errors="replace")
            if (parts.path == "/subscriptions" or parts.path.startswith("/subscriptions/")) and self.headers.get(
                "Authorization"
            ) != f"Bearer {standin.token}":
                status, headers, answer = 401, {}, arm_error("AuthenticationFailed", "Authentication failed.")
                standin.calls.append(Call(self.command, parts.path, dict(query), body))
            else:
                with standin._lock:
                    status, headers, answer = standin.handle(self.command, parts.path, query, body)
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-request-id", f"standin-{time.monotonic_ns()}")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_DELETE = do_POST = do_PATCH = do_HEAD = _serve

    return Handler


def iter_paths(calls: list[Call]) -> Iterator[tuple[str, str, str | None]]:
    """(method, path, api-version) of each call: what tests compare."""
    for call in calls:
        yield call.method, call.path, call.api_version

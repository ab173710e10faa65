"""HDInsight clusters (and the storage key they need) on the ARM stand-in.

``install_hdinsight(standin)`` adds these routes to an :class:`ArmStandIn`, following
Azure/azure-rest-api-specs:

- ``PUT .../providers/Microsoft.HDInsight/clusters/{name}`` (Clusters_Create, api-version
  2021-06-01; specification/hdinsight/resource-manager/Microsoft.HDInsight/stable/2021-06-01/
  cluster.json and its examples CreateKafkaClusterWithKafkaRestProxy.json,
  CreateHDInsightClusterWithCustomNetworkProperties.json, CreateHDInsightClusterWithTLS12.json):
  the spec's only success answer is 200 with the cluster, a long-running operation with
  final-state-via location. The answer carries ``Azure-AsyncOperation`` at
  ``.../clusters/{name}/azureasyncoperations/{id}`` (the spec's
  Clusters_GetAzureAsyncOperationStatus path, which answers AsyncOperationResult:
  ``{"status": "InProgress"|"Succeeded"|"Failed", "error": {...}}``) and ``Location`` at
  ``.../clusters/{name}/operationresults/{id}`` (as DeleteLinuxHadoopCluster.json's Location),
  which answers 202 until the operation ends, then 200 with the cluster.
  While it runs, ``provisioningState`` is InProgress and ``clusterState`` goes Accepted,
  AzureVMConfiguration, HdInsightConfiguration (one step per status poll), then Running with
  provisioningState Succeeded and ``connectivityEndpoints`` (HTTPS at the given gateway
  host and port, SSH at ``{name}-ssh.azurehdinsight.net:22``), as in the examples' responses.
  A failed operation leaves provisioningState Failed, clusterState Error and ``errors``.
  Like the service, answers never carry the passwords, the storage key or the gateway
  configuration (the spec marks ``configurations`` and ``sshProfile`` x-ms-secret).
- ``GET`` the same path (Clusters_Get, GetLinuxHadoopCluster.json): 200, or 404 ResourceNotFound.
- ``DELETE`` the same path (Clusters_Delete, DeleteLinuxHadoopCluster.json): 202 with
  ``Location`` (answers 202, then 200 once gone), 204 when there is no such cluster.
- ``POST /subscriptions/{sub}/providers/Microsoft.HDInsight/locations/{region}/checkNameAvailability``
  (Locations_CheckNameAvailability, locations.json 2021-06-01, as in
  HDI_Locations_CheckClusterNameAvailability.json): ``{"nameAvailable": false, "reason":
  "AlreadyExists", "message": "Cluster name '..' is unavailable"}`` for a name taken anywhere
  in Azure (cluster names are global DNS names), else ``{"nameAvailable": true}``.
- ``POST .../providers/Microsoft.Storage/storageAccounts/{name}/listKeys`` (StorageAccounts_ListKeys,
  api-version 2026-09-01 as azure-mgmt-storage 25.3.0 sends it; the body follows
  specification/storage/resource-manager/Microsoft.Storage/stable/2025-01-01/examples/
  StorageAccountListKeys.json, the newest example in the index): key1 and key2, Full.

A create request is checked the way the service would refuse it, with ARM's error body (the
spec does not list HDInsight's validation codes, so these answers use ARM's generic 400
``BadRequest`` with a message naming each fault): a version other than 5.1 (3.6, 4.0 and 5.0
are retired), a kind other than kafka or a Kafka other than 3.2, a missing headnode,
workernode or zookeepernode role, a Kafka worker role without data disks, logins that break
HDInsight's password rules, a default storage account that is not ``{account}.blob.core.windows.net``
with this stand-in's key, a virtual network or subnet that does not exist, a TLS version
below 1.2. A PUT on a cluster that exists answers 409 Conflict (a cluster is not updated by
PUT). A name in ``taken_names`` answers 409 Conflict on PUT as well.

Quota errors and failures during the operation are injected with ``ArmStandIn.fail`` (a
fault with ``during_operation=True`` on ``PUT`` makes the operation end Failed).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from tests.standins.azure_arm import ArmStandIn, Fault, arm_error

HDINSIGHT_API = "2021-06-01"
# The keys this stand-in hands out for every storage account (test values, not secrets).
STORAGE_KEY1 = "c3RhbmRpbi1rZXktb25lLWZvci10ZXN0cw=="
STORAGE_KEY2 = "c3RhbmRpbi1rZXktdHdvLWZvci10ZXN0cw=="
# clusterState while the create operation runs: the first at the PUT, one more per status poll.
CREATING_STATES = ("Accepted", "AzureVMConfiguration", "HdInsightConfiguration")
KAFKA_ROLES = ("headnode", "workernode", "zookeepernode")
SUPPORTED_VERSION = "5.1"
FULL_VERSION = "5.1.3000.0"  # what GET reports for clusterVersion "5.1" (the service adds the build)
KAFKA_VERSION = "3.2"

_RG = r"/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
_CLUSTER = _RG + r"/providers/Microsoft\.HDInsight/clusters/(?P<name>[^/]+)"
_NOT_IN_GATEWAY_PASSWORD = "'\"\\]."  # single/double quote, backslash, right bracket, full stop


@dataclass
class _Operation:
    key: str  # the cluster's key in the store
    kind: str  # "create" or "delete"
    step: int = 0
    error: dict[str, str] | None = None
    done: bool = False


@dataclass
class HDInsightStandIn:
    """What ``install_hdinsight`` keeps per stand-in; tests change ``taken_names`` and ``advance_on_get``."""

    gateway: tuple[str, int]
    taken_names: set[str] = field(default_factory=set)  # cluster names taken elsewhere in Azure
    # Time passes on every GET of a creating cluster too (for a cluster whose operation nobody polls).
    advance_on_get: bool = False
    operations: dict[str, _Operation] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def hdinsight_of(standin: ArmStandIn) -> HDInsightStandIn:
    """The HDInsight state ``install_hdinsight`` attached to ``standin``."""
    state = getattr(standin, "hdinsight", None)
    if not isinstance(state, HDInsightStandIn):
        raise LookupError("install_hdinsight(standin) was not called")
    return state


def install_hdinsight(standin: ArmStandIn, *, gateway: tuple[str, int] = ("127.0.0.1", 443)) -> None:
    """Serve HDInsight clusters, their operations, name checks and storage keys on ``standin``."""
    state = HDInsightStandIn(gateway=gateway)
    standin.hdinsight = state  # type: ignore[attr-defined]

    def cluster(method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        return _cluster(standin, state, method, match, body, fault)

    def status(method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        return _status(standin, state, match)

    def result(method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        return _result(standin, state, match)

    def check_name(method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        return _check_name(standin, state, method, match, body)

    def list_keys(method: str, match: re.Match[str], query: dict[str, str], body: Any, fault: Fault | None):
        return _list_keys(standin, method, match)

    standin.add_route("hdinsight-cluster", _CLUSTER + "$", cluster)
    standin.add_route("hdinsight-status", _CLUSTER + r"/azureasyncoperations/(?P<op>[^/]+)$", status)
    standin.add_route("hdinsight-result", _CLUSTER + r"/operationresults/(?P<op>[^/]+)$", result)
    standin.add_route(
        "hdinsight-name",
        r"/subscriptions/[^/]+/providers/Microsoft\.HDInsight/locations/(?P<location>[^/]+)/checkNameAvailability$",
        check_name,
    )
    standin.add_route(
        "storage-keys", _RG + r"/providers/Microsoft\.Storage/storageAccounts/(?P<name>[^/]+)/listKeys$", list_keys
    )


# --- validation ---------------------------------------------------------------------------------


def _consecutive(password: str, user: str) -> bool:
    """True if the password holds 3 consecutive characters of the user name (any case)."""
    low, user = password.lower(), user.lower()
    return any(user[i : i + 3] in low for i in range(len(user) - 2))


def _password_faults(what: str, password: Any, users: list[str], *, gateway: bool) -> list[str]:
    # The rules of HDInsight's templates (Azure/azure-quickstart-templates, microsoft.hdinsight): the
    # cluster login password at least 10 characters with a digit, an upper and a lower case letter and a
    # non-alphanumeric character (not ' " \ ] .); the SSH password 6-72 characters (hdinsight-kafka) and
    # "at least 10 characters ... at least one digit, one non-alphanumeric character, and one upper or
    # lower case letter" (the other HDInsight templates): the stricter of the two; neither holding
    # 3 consecutive characters of a user name.
    if not isinstance(password, str) or not password:
        return [f"{what} is missing"]
    faults = []
    if gateway and len(password) < 10:
        faults.append(f"{what} must be at least 10 characters")
    if not gateway and not 10 <= len(password) <= 72:
        faults.append(f"{what} must be 10-72 characters")
    if not (any(c.isdigit() for c in password) and any(c.isupper() for c in password)):
        faults.append(f"{what} must contain a digit and an upper case letter")
    if not any(c.islower() for c in password):
        faults.append(f"{what} must contain a lower case letter")
    if not any(not c.isalnum() for c in password):
        faults.append(f"{what} must contain a non-alphanumeric character")
    if gateway and any(c in _NOT_IN_GATEWAY_PASSWORD for c in password):
        faults.append(f"{what} must not contain ' \" \\ ] or .")
    if any(_consecutive(password, user) for user in users if user):
        faults.append(f"{what} must not contain 3 consecutive characters of a user name")
    return faults


def _create_faults(standin: ArmStandIn, match: re.Match[str], body: dict[str, Any]) -> list[str]:
    props = body.get("properties")
    if not isinstance(props, dict):
        return ["the request has no properties"]
    faults = []
    version = props.get("clusterVersion")
    if version != SUPPORTED_VERSION:
        faults.append(
            f"cluster version {version!r} is not supported: HDInsight 3.6, 4.0 and 5.0 are retired; "
            f"create {SUPPORTED_VERSION}"
        )
    if props.get("osType") != "Linux":
        faults.append(f"osType {props.get('osType')!r} is not supported: Linux")
    definition = props.get("clusterDefinition") or {}
    kind = str(definition.get("kind", "")).lower()
    if kind != "kafka":
        faults.append(f"cluster kind {definition.get('kind')!r} is not what this stand-in serves: kafka")
    elif (definition.get("componentVersion") or {}).get("Kafka") != KAFKA_VERSION:
        faults.append(f"componentVersion Kafka must be {KAFKA_VERSION} on HDInsight {SUPPORTED_VERSION}")
    gateway = (definition.get("configurations") or {}).get("gateway") or {}
    gateway_user = gateway.get("restAuthCredential.username")
    if gateway.get("restAuthCredential.isEnabled") is not True or not gateway_user:
        faults.append("configurations.gateway needs restAuthCredential.isEnabled true and a username")
    roles = {role.get("name"): role for role in (props.get("computeProfile") or {}).get("roles") or []}
    missing = [name for name in KAFKA_ROLES if name not in roles]
    if missing:
        faults.append(f"a Kafka cluster needs the roles {', '.join(KAFKA_ROLES)}; missing: {', '.join(missing)}")
    ssh_users: list[str] = []
    vnets: set[tuple[str, str]] = set()
    for name, role in roles.items():
        if not isinstance(role.get("targetInstanceCount"), int) or role["targetInstanceCount"] < 1:
            faults.append(f"role {name}: targetInstanceCount must be at least 1")
        if not (role.get("hardwareProfile") or {}).get("vmSize"):
            faults.append(f"role {name}: hardwareProfile.vmSize is missing")
        linux = (role.get("osProfile") or {}).get("linuxOperatingSystemProfile") or {}
        if not linux.get("username"):
            faults.append(f"role {name}: osProfile.linuxOperatingSystemProfile.username is missing")
        else:
            ssh_users.append(linux["username"])
        users = [str(gateway_user or ""), str(linux.get("username") or "")]
        faults.extend(_password_faults(f"role {name}: the SSH password", linux.get("password"), users, gateway=False))
        network = role.get("virtualNetworkProfile")
        vnets.add((str((network or {}).get("id")), str((network or {}).get("subnet"))) if network else ("", ""))
    worker = roles.get("workernode") or {}
    disks = [group.get("disksPerNode") for group in worker.get("dataDisksGroups") or []]
    if worker and not (len(disks) == 1 and isinstance(disks[0], int) and 1 <= disks[0] <= 16):
        faults.append("role workernode: a Kafka cluster needs dataDisksGroups with disksPerNode 1-16")
    faults.extend(
        _password_faults(
            "the cluster login (gateway) password",
            gateway.get("restAuthCredential.password"),
            [str(gateway_user or ""), *ssh_users],
            gateway=True,
        )
    )
    if len(vnets) > 1:
        faults.append("every role must be in the same virtual network and subnet")
    elif vnets and vnets != {("", "")}:
        vnet_id, subnet_id = next(iter(vnets))
        vnet = standin.resource(vnet_id)
        subnets = {str(s.get("id", "")).lower(): s for s in (vnet or {}).get("properties", {}).get("subnets", [])}
        if vnet is None or subnet_id.lower() not in subnets:
            faults.append(f"virtual network {vnet_id!r} with subnet {subnet_id!r} was not found")
        else:
            faults.extend(_subnet_faults(standin, subnets[subnet_id.lower()]))
    faults.extend(_storage_faults(standin, match, props.get("storageProfile") or {}))
    tls = props.get("minSupportedTlsVersion")
    if tls is not None and tls not in ("1.2",):
        faults.append(f"minSupportedTlsVersion {tls!r}: TLS below 1.2 is not allowed")
    return faults


def _subnet_faults(standin: ArmStandIn, subnet: dict[str, Any]) -> list[str]:
    """HDInsight on Standard Load Balancers in a network of one's own (the HDInsight load balancer migration
    guideline, "New cluster creation"): the subnet needs an explicit outbound path (a NAT gateway, as it
    recommends; new subnets have no default outbound access) and an NSG, which lets HDInsight's management
    traffic in ("Control network traffic in Azure HDInsight": service tag HDInsight, port 443)."""
    props = subnet.get("properties") or {}
    faults = []
    nat = str((props.get("natGateway") or {}).get("id", ""))
    if not nat or standin.resource(nat) is None:
        faults.append(
            "the subnet has no outbound connectivity: attach a NAT gateway (required with the standard load balancer)"
        )
    nsg_id = str((props.get("networkSecurityGroup") or {}).get("id", ""))
    nsg = standin.resource(nsg_id) if nsg_id else None
    if nsg is None:
        faults.append("the subnet has no network security group (required by the standard load balancer)")
        return faults
    rules = [(rule.get("properties") or {}) for rule in nsg["properties"].get("securityRules") or []]
    if not any(
        r.get("direction") == "Inbound"
        and r.get("access") == "Allow"
        and r.get("sourceAddressPrefix") == "HDInsight"
        and r.get("destinationPortRange") in ("443", "*")
        for r in rules
    ):
        faults.append("the network security group must allow inbound 443 from the service tag HDInsight")
    return faults


def _storage_faults(standin: ArmStandIn, match: re.Match[str], profile: dict[str, Any]) -> list[str]:
    accounts = [account for account in profile.get("storageaccounts") or [] if account.get("isDefault")]
    if len(accounts) != 1:
        return ["storageProfile needs exactly one default storage account"]
    account = accounts[0]
    host = str(account.get("name", ""))
    if not host.endswith(".blob.core.windows.net"):
        return [f"storage account name {host!r} must be the blob endpoint host, like mystorage.blob.core.windows.net"]
    name = host.removesuffix(".blob.core.windows.net")
    storage_id = (
        f"/subscriptions/{match['sub']}/resourceGroups/{match['rg']}/providers/Microsoft.Storage/storageAccounts/{name}"
    )
    faults = []
    if standin.resource(storage_id) is None:
        faults.append(f"storage account {name!r} was not found")
    if account.get("key") not in (STORAGE_KEY1, STORAGE_KEY2):
        faults.append(f"the key of storage account {name!r} is not valid")
    if not account.get("container"):
        faults.append("the default storage account needs a container")
    return faults


# --- the resource and its operations --------------------------------------------------------------


def _public(body: dict[str, Any], match: re.Match[str], gateway: tuple[str, int]) -> dict[str, Any]:
    """The cluster as GET shows it: what was asked, without secrets, plus what the service adds."""
    props = copy.deepcopy(body["properties"])
    definition = props.get("clusterDefinition") or {}
    definition.pop("configurations", None)  # x-ms-secret: the gateway login is never read back
    definition["kind"] = str(definition.get("kind", "")).upper()  # the examples answer "KAFKA"
    for role in (props.get("computeProfile") or {}).get("roles") or []:
        linux = (role.get("osProfile") or {}).get("linuxOperatingSystemProfile") or {}
        linux.pop("password", None)
        linux.pop("sshProfile", None)
        for group in role.get("dataDisksGroups") or []:  # read-only values the service fills in
            group.setdefault("storageAccountType", "Standard_LRS")
            group.setdefault("diskSizeGB", 1023)
    for account in (props.get("storageProfile") or {}).get("storageaccounts") or []:
        account.pop("key", None)
    props.pop("storageProfile", None)  # the examples' answers leave the storage profile out
    props["clusterVersion"] = (
        FULL_VERSION if props.get("clusterVersion") == SUPPORTED_VERSION else props.get("clusterVersion")
    )
    props.update(
        provisioningState="InProgress",
        clusterState=CREATING_STATES[0],
        createdDate=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        quotaInfo={"coresUsed": 0},
    )
    return {
        "id": f"/subscriptions/{match['sub']}/resourceGroups/{match['rg']}/providers/Microsoft.HDInsight/clusters/"
        f"{match['name']}",
        "name": match["name"],
        "type": "Microsoft.HDInsight/clusters",
        "location": body["location"],
        "etag": f"standin-{match['name']}",
        "tags": body.get("tags") or {},
        "properties": props,
    }


def _headers(standin: ArmStandIn, cluster_path: str, op_id: str, *, async_header: bool) -> dict[str, str]:
    base = f"{standin.base_url}{cluster_path}"
    headers = {"Location": f"{base}/operationresults/{op_id}?api-version={HDINSIGHT_API}", "Retry-After": "0"}
    if async_header:
        headers["Azure-AsyncOperation"] = f"{base}/azureasyncoperations/{op_id}?api-version={HDINSIGHT_API}"
    return headers


def _advance(standin: ArmStandIn, state: HDInsightStandIn, op: _Operation) -> None:
    if op.done:
        return
    op.step += 1
    resource = standin.state.resources.get(op.key)
    if op.kind == "delete":
        if op.step >= standin.polls:
            op.done = True
            standin.state.resources.pop(op.key, None)
        return
    if resource is None:
        op.done = True
        return
    props = resource["properties"]
    if op.step < len(CREATING_STATES):
        props["clusterState"] = CREATING_STATES[op.step]
        return
    op.done = True
    if op.error:
        props.update(provisioningState="Failed", clusterState="Error", errors=[dict(op.error)])
        return
    cores = {"standard_d12_v2": 4, "standard_d3_v2": 4, "standard_d4_v2": 8, "standard_a4_v2": 4}
    props["quotaInfo"] = {
        "coresUsed": sum(
            role["targetInstanceCount"] * cores.get(role["hardwareProfile"]["vmSize"].lower(), 4)
            for role in props["computeProfile"]["roles"]
        )
    }
    host, port = state.gateway
    props.update(
        provisioningState="Succeeded",
        clusterState="Running",
        connectivityEndpoints=[
            {"name": "SSH", "protocol": "TCP", "location": f"{resource['name']}-ssh.azurehdinsight.net", "port": 22},
            {"name": "HTTPS", "protocol": "TCP", "location": host, "port": port},
        ],
    )


def _not_found(match: re.Match[str]) -> tuple[int, dict[str, str], Any]:
    return (
        404,
        {},
        arm_error(
            "ResourceNotFound",
            f"The Resource 'Microsoft.HDInsight/clusters/{match['name']}' under resource group "
            f"'{match['rg']}' was not found.",
        ),
    )


def _cluster(
    standin: ArmStandIn, state: HDInsightStandIn, method: str, match: re.Match[str], body: Any, fault: Fault | None
) -> tuple[int, dict[str, str], Any]:
    key = match.group(0).lower()
    rg_key = key.split("/providers/")[0]
    if rg_key not in standin.state.resources:
        return 404, {}, arm_error("ResourceGroupNotFound", f"Resource group '{match['rg']}' could not be found.")
    existing = standin.state.resources.get(key)
    if method == "GET":
        if existing is None:
            return _not_found(match)
        if state.advance_on_get:
            for op in state.operations.values():
                if op.key == key and not op.done:
                    _advance(standin, state, op)
        return 200, {}, existing
    if method == "PUT":
        if not isinstance(body, dict) or "location" not in body:
            return 400, {}, arm_error("InvalidRequestContent", "The request content must have 'location'.")
        if existing is not None:
            return (
                409,
                {},
                arm_error("Conflict", f"Cluster '{match['name']}' already exists; a cluster is not updated by PUT."),
            )
        if match["name"].lower() in state.taken_names:
            return 409, {}, arm_error("Conflict", f"Cluster name '{match['name']}' is unavailable")
        faults = _create_faults(standin, match, body)
        if faults:
            return 400, {}, arm_error("BadRequest", "Invalid cluster create request: " + "; ".join(faults) + ".")
        resource = _public(body, match, state.gateway)
        standin.state.resources[key] = resource
        op_id = f"hdi-op-{next(state.ids)}"
        error = {"code": fault.code, "message": fault.message} if fault and fault.during_operation else None
        state.operations[op_id] = _Operation(key, "create", error=error)
        path = resource["id"]
        return 200, _headers(standin, path, op_id, async_header=True), resource
    if method == "DELETE":
        if existing is None:
            return 204, {}, None
        existing["properties"].update(provisioningState="Deleting", clusterState="Deleting")
        op_id = f"hdi-op-{next(state.ids)}"
        state.operations[op_id] = _Operation(key, "delete")
        return 202, _headers(standin, existing["id"], op_id, async_header=False), None
    return 405, {}, arm_error("MethodNotAllowed", method)


def _status(standin: ArmStandIn, state: HDInsightStandIn, match: re.Match[str]) -> tuple[int, dict[str, str], Any]:
    op = state.operations.get(match["op"])
    if op is None:
        return 404, {}, arm_error("OperationNotFound", match["op"])
    _advance(standin, state, op)
    if not op.done:
        return 200, {"Retry-After": "0"}, {"status": "InProgress"}
    if op.error:
        return 200, {}, {"status": "Failed", "error": op.error}
    return 200, {}, {"status": "Succeeded"}


def _result(standin: ArmStandIn, state: HDInsightStandIn, match: re.Match[str]) -> tuple[int, dict[str, str], Any]:
    op = state.operations.get(match["op"])
    if op is None:
        return 404, {}, arm_error("OperationNotFound", match["op"])
    _advance(standin, state, op)
    if not op.done:
        cluster_path = match.group(0).split("/operationresults/")[0]
        return 202, _headers(standin, cluster_path, match["op"], async_header=False), None
    if op.error:
        return 400, {}, arm_error(op.error["code"], op.error["message"])
    if op.kind == "delete":
        return 200, {}, None
    return 200, {}, standin.state.resources.get(op.key)


def _check_name(
    standin: ArmStandIn, state: HDInsightStandIn, method: str, match: re.Match[str], body: Any
) -> tuple[int, dict[str, str], Any]:
    if method != "POST":
        return 405, {}, arm_error("MethodNotAllowed", method)
    if not isinstance(body, dict) or not body.get("name"):
        return 400, {}, arm_error("InvalidRequestContent", "The request content must have 'name' and 'type'.")
    name = str(body["name"])
    ours = any(
        resource.get("type") == "Microsoft.HDInsight/clusters" and resource["name"].lower() == name.lower()
        for resource in standin.state.resources.values()
    )
    if ours or name.lower() in state.taken_names:
        return (
            200,
            {},
            {"nameAvailable": False, "reason": "AlreadyExists", "message": f"Cluster name '{name}' is unavailable"},
        )
    return 200, {}, {"nameAvailable": True}


def _list_keys(standin: ArmStandIn, method: str, match: re.Match[str]) -> tuple[int, dict[str, str], Any]:
    if method != "POST":
        return 405, {}, arm_error("MethodNotAllowed", method)
    account_id = match.group(0).rsplit("/", 1)[0]
    if standin.resource(account_id) is None:
        return (
            404,
            {},
            arm_error(
                "ResourceNotFound",
                f"The Resource 'Microsoft.Storage/storageAccounts/{match['name']}' under resource group "
                f"'{match['rg']}' was not found.",
            ),
        )
    keys = [
        {"keyName": "key1", "permissions": "Full", "value": STORAGE_KEY1},
        {"keyName": "key2", "permissions": "Full", "value": STORAGE_KEY2},
    ]
    return 200, {}, {"keys": keys}

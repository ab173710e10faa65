"""Provisioning the plan's first ARM steps: the resource group, the Kafka network with its subnet,
the storage account; and teardown of what carries the plan's tag.

Each step first reads what exists (resume): a resource with the plan's tag is kept and shown as
"exists"; one left half-made by an earlier run (provisioningState Failed) is created again; one
without the tag is not touched (a name taken by something else). Otherwise the step creates it,
tagged, and waits for ARM's long-running operation. A failed step ends the run with ARM's code
and message and what to do; what was made before it carries the tag, so a rerun resumes and
teardown can delete it.

The SDK calls are in a few thin functions; ``client_options`` (base_url, connection_verify,
polling_interval, transport...) go to every management client, for tests against a stand-in.
The later steps (HDInsight, Databricks, the peerings, the topic) are in their own modules,
called in order by wizard.build; teardown here deletes all that carries the tag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import AddressSpace, Subnet, VirtualNetwork
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.resources.models import ResourceGroup
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage.models import Sku, StorageAccountCreateParameters

from backend.azure.plan import TAG_KEY, Plan, PlanConfig, build_plan

Status = Literal["creating", "created", "exists", "failed", "deleting", "deleted", "kept"]
Progress = Callable[["StepResult"], None]

RESOURCE_GROUP = "Microsoft.Resources/resourceGroups"
VIRTUAL_NETWORK = "Microsoft.Network/virtualNetworks"
STORAGE_ACCOUNT = "Microsoft.Storage/storageAccounts"
HDINSIGHT_CLUSTER = "Microsoft.HDInsight/clusters"
DATABRICKS_WORKSPACE = "Microsoft.Databricks/workspaces"
KAFKA_PEERING = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings"
# Teardown's order: the peering first (a network with a peering cannot go), the workspace (it takes its
# managed resource group and its own peering along), the cluster (it holds addresses in the subnet and
# uses the storage account), then storage and the network; the resource group last.
DELETE_ORDER = (KAFKA_PEERING, DATABRICKS_WORKSPACE, HDINSIGHT_CLUSTER, STORAGE_ACCOUNT, VIRTUAL_NETWORK)


@dataclass(frozen=True)
class StepResult:
    type: str
    name: str
    status: Status
    detail: str = ""
    error_code: str | None = None
    advice: str | None = None

    @property
    def line(self) -> str:
        text = f"{self.type} {self.name}: {self.status}"
        if self.detail:
            text += f" ({self.detail})"
        if self.advice:
            text += f". {self.advice}"
        return text


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


# --- errors ---------------------------------------------------------------------------------------


def report(progress: Progress | None, result: StepResult) -> StepResult:
    """Show ``result`` to ``progress`` (if any) and return it: a step's lines and its result in one call."""
    if progress is not None:
        progress(result)
    return result


def advice_for(code: str | None, plan: Plan, step_type: str) -> str:
    """What to do about ARM's error code, for a person."""
    names, config = plan.names, plan.config
    if code in ("StorageAccountAlreadyTaken", "StorageAccountAlreadyExists"):
        return (
            f"The storage account name {names.storage_account!r} is taken elsewhere in Azure (names are global): "
            "set another name_prefix or names.storage_account in the config and run again; "
            "what was created so far is kept and found again."
        )
    if code == "NameTakenNotOurs":
        return (
            f"Something not created by the wizard (no tag {TAG_KEY}={config.tag_value}) already has this name "
            "in the resource group: pick another name_prefix (or set the name under [names]) and run again."
        )
    if code is not None and ("Quota" in code or code in ("OperationNotAllowed", "SkuNotAvailable")):
        return (
            f"The subscription's quota or the region {config.region!r} does not allow this: ask for more quota "
            "(Azure portal, Quotas) or choose another region, then run again; what was created so far is kept."
        )
    if code in ("AuthorizationFailed", "LinkedAuthorizationFailed", "RequestDisallowedByPolicy"):
        return (
            "The signed-in identity may not do this here: it needs the Contributor role on the subscription or "
            f"resource group {names.resource_group!r} (and no policy denying {step_type}); then run again."
        )
    if code == "SignInFailed":
        return "Sign-in failed: check the tenant, client id and secret (or `az login`), then run again."
    return "Run again to resume (what exists with the tag is kept), or tear down what was created."


def _failure(plan: Plan, step_type: str, name: str, exc: Exception) -> StepResult:
    if isinstance(exc, ClientAuthenticationError) and exc.response is None:  # the token, not ARM
        code, message = "SignInFailed", str(exc.message).splitlines()[0]
    elif isinstance(exc, HttpResponseError):
        error = exc.error
        code = (error.code if error is not None else None) or (exc.reason or "HttpError")
        message = (error.message if error is not None else None) or str(exc.message)
    else:
        code, message = type(exc).__name__, str(exc)
    return StepResult(step_type, name, "failed", f"{code}: {message}", code, advice_for(code, plan, step_type))


# --- the SDK calls (thin) -------------------------------------------------------------------------


def _get(read: Callable[[], Any]) -> Any | None:
    try:
        return read()
    except ResourceNotFoundError:
        return None


def _state(resource: Any) -> str | None:
    properties = getattr(resource, "properties", None)
    state = getattr(properties, "provisioning_state", None) if properties is not None else None
    state = state if state is not None else getattr(resource, "provisioning_state", None)
    return None if state is None else str(getattr(state, "value", state))


def _ours(resource: Any, tag_value: str) -> bool:
    return (getattr(resource, "tags", None) or {}).get(TAG_KEY) == tag_value


# --- provisioning ---------------------------------------------------------------------------------


def provision(
    plan_or_config: Plan | PlanConfig,
    credential: TokenCredential,
    subscription: str | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> list[StepResult]:
    """Create (or find) the resource group, the Kafka network with its subnet, the storage account.

    Returns one result per step reached, in order; the last is "failed" if a step failed
    (nothing after it was attempted). Rerunning resumes.
    """
    plan = _as_plan(plan_or_config)
    config, names = plan.config, plan.names
    tags = {TAG_KEY: config.tag_value}
    clients = _clients(credential, subscription or config.subscription_id, client_options or {})
    results: list[StepResult] = []

    def report(result: StepResult) -> StepResult:
        if progress is not None:
            progress(result)
        return result

    def resource_group() -> StepResult:
        existing = _get(lambda: clients.resource.resource_groups.get(names.resource_group))
        if existing is not None:
            note = "" if _ours(existing, config.tag_value) else "not made by the wizard: teardown keeps it"
            return StepResult(RESOURCE_GROUP, names.resource_group, "exists", note)
        report(StepResult(RESOURCE_GROUP, names.resource_group, "creating"))
        clients.resource.resource_groups.create_or_update(
            names.resource_group, ResourceGroup(location=config.region, tags=tags)
        )
        return StepResult(RESOURCE_GROUP, names.resource_group, "created", config.region)

    def network() -> StepResult:
        rg, name = names.resource_group, names.kafka_vnet
        existing = _get(lambda: clients.network.virtual_networks.get(rg, name))
        subnet_note = f"subnet {names.kafka_subnet} {config.network.subnet}"
        if existing is not None and not _ours(existing, config.tag_value):
            return _refuse(VIRTUAL_NETWORK, name)
        if existing is not None and _state(existing) == "Succeeded":
            subnets = {subnet.name for subnet in existing.subnets or []}
            if names.kafka_subnet in subnets:
                return StepResult(VIRTUAL_NETWORK, name, "exists", subnet_note)
        report(StepResult(VIRTUAL_NETWORK, name, "creating", subnet_note))
        clients.network.virtual_networks.begin_create_or_update(
            rg,
            name,
            VirtualNetwork(
                location=config.region,
                tags=tags,
                address_space=AddressSpace(address_prefixes=[config.network.address_space]),
                subnets=[Subnet(name=names.kafka_subnet, address_prefix=config.network.subnet)],
            ),
        ).result()
        return StepResult(VIRTUAL_NETWORK, name, "created", f"{config.network.address_space}, {subnet_note}")

    def storage() -> StepResult:
        rg, name = names.resource_group, names.storage_account
        existing = _get(lambda: clients.storage.storage_accounts.get_properties(rg, name))
        if existing is not None and not _ours(existing, config.tag_value):
            return _refuse(STORAGE_ACCOUNT, name)
        if existing is not None and _state(existing) == "Succeeded":
            return StepResult(STORAGE_ACCOUNT, name, "exists")
        report(StepResult(STORAGE_ACCOUNT, name, "creating"))
        clients.storage.storage_accounts.begin_create(
            rg,
            name,
            StorageAccountCreateParameters(
                sku=Sku(name="Standard_LRS"),
                kind="StorageV2",
                location=config.region,
                tags=tags,
                minimum_tls_version="TLS1_2",
                allow_blob_public_access=False,
            ),
        ).result()
        return StepResult(STORAGE_ACCOUNT, name, "created", "StorageV2, Standard_LRS")

    def _refuse(step_type: str, name: str) -> StepResult:
        code = "NameTakenNotOurs"
        detail = f"{code}: {name} exists without the tag {TAG_KEY}={config.tag_value}"
        return StepResult(step_type, name, "failed", detail, code, advice_for(code, plan, step_type))

    steps: Sequence[tuple[str, str, Callable[[], StepResult]]] = (
        (RESOURCE_GROUP, names.resource_group, resource_group),
        (VIRTUAL_NETWORK, names.kafka_vnet, network),
        (STORAGE_ACCOUNT, names.storage_account, storage),
    )
    for step_type, name, run in steps:
        try:
            result = run()
        except (HttpResponseError, ClientAuthenticationError) as exc:
            result = _failure(plan, step_type, name, exc)
        results.append(report(result))
        if result.status == "failed":
            break
    return results


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
    group = _get(lambda: clients.resource.resource_groups.get(rg))
    if group is None:
        return []
    tag_filter = f"tagName eq '{TAG_KEY}' and tagValue eq '{value}'"
    found = [
        (str(item.type), str(item.name), str(item.id))
        for item in clients.resource.resources.list_by_resource_group(rg, filter=tag_filter)
        if str(item.type).count("/") == 1  # top-level resources only, as ARM lists them
    ]
    if any(kind == VIRTUAL_NETWORK and name == names.kafka_vnet for kind, name, _ in found):
        peering = _get(lambda: clients.network.virtual_network_peerings.get(rg, names.kafka_vnet, names.kafka_peering))
        if peering is not None:
            found.append((KAFKA_PEERING, names.kafka_peering, str(peering.id)))
    order = {kind: number for number, kind in enumerate(DELETE_ORDER)}
    found.sort(key=lambda item: (order.get(item[0], len(order)), item[1]))
    if _ours(group, value):
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

    def report(result: StepResult) -> None:
        results.append(result)
        if progress is not None:
            progress(result)

    # The later steps' own deletes (each refuses what lacks the tag and says what went with it); imported
    # here because those modules import this one.
    from backend.azure import hdinsight, workspace

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
            elif kind == RESOURCE_GROUP:
                others = [str(item.name) for item in clients.resource.resources.list_by_resource_group(rg)]
                if others:
                    report(StepResult(kind, name, "kept", "it also holds " + ", ".join(sorted(others))))
                    continue
                clients.resource.resource_groups.begin_delete(rg).result()
            else:
                report(StepResult(kind, name, "kept", "not a type this teardown deletes yet"))
                continue
        except (HttpResponseError, ClientAuthenticationError) as exc:
            report(_failure(plan, kind, name, exc))
            break
        report(StepResult(kind, name, "deleted"))
    return results

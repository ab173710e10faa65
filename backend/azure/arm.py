"""What every provisioning step shares: its result, how it reports progress, ARM's errors as advice,
and reading an ARM resource (absent, provisioning state, carries the plan's tag)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from backend.azure.plan import Plan
from backend.azure.plan_config import TAG_KEY

Status = Literal["creating", "created", "exists", "failed", "deleting", "deleted", "kept"]
Progress = Callable[["StepResult"], None]

# The errors an ARM call raises that a step turns into a failed result (sign-in failures included).
ARM_ERRORS = (HttpResponseError, ClientAuthenticationError)

RESOURCE_GROUP = "Microsoft.Resources/resourceGroups"
VIRTUAL_NETWORK = "Microsoft.Network/virtualNetworks"
PUBLIC_IP = "Microsoft.Network/publicIPAddresses"
NAT_GATEWAY = "Microsoft.Network/natGateways"
NETWORK_SECURITY_GROUP = "Microsoft.Network/networkSecurityGroups"
STORAGE_ACCOUNT = "Microsoft.Storage/storageAccounts"
HDINSIGHT_CLUSTER = "Microsoft.HDInsight/clusters"
DATABRICKS_WORKSPACE = "Microsoft.Databricks/workspaces"
WORKSPACE_PEERING = "Microsoft.Databricks/workspaces/virtualNetworkPeerings"
KAFKA_PEERING = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings"


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


def failure(plan: Plan, step_type: str, name: str, exc: Exception) -> StepResult:
    """A failed result from an exception: ARM's error code and message (or the sign-in's), with advice."""
    if isinstance(exc, ClientAuthenticationError) and exc.response is None:  # the token, not ARM
        code, message = "SignInFailed", str(exc.message).splitlines()[0]
    elif isinstance(exc, HttpResponseError):
        error = exc.error
        code = (error.code if error is not None else None) or (exc.reason or "HttpError")
        message = (error.message if error is not None else None) or str(exc.message)
    else:
        code, message = type(exc).__name__, str(exc)
    return StepResult(step_type, name, "failed", f"{code}: {message}", code, advice_for(code, plan, step_type))


def refusal(plan: Plan, step_type: str, name: str, why: str) -> StepResult:
    """The failed result for a name held by something the wizard did not make (NameTakenNotOurs)."""
    code = "NameTakenNotOurs"
    return StepResult(step_type, name, "failed", f"{code}: {name} {why}", code, advice_for(code, plan, step_type))


def get_or_none(read: Callable[[], Any]) -> Any | None:
    """What ``read`` returns, or None when ARM answers that the resource does not exist."""
    try:
        return read()
    except ResourceNotFoundError:
        return None


def provisioning_state(resource: Any) -> str | None:
    """The resource's provisioningState as text, from either place the SDKs' models keep it."""
    properties = getattr(resource, "properties", None)
    state = getattr(properties, "provisioning_state", None) if properties is not None else None
    state = state if state is not None else getattr(resource, "provisioning_state", None)
    return None if state is None else str(getattr(state, "value", state))


def is_ours(resource: Any, tag_value: str) -> bool:
    """Whether the resource carries the plan's tag (the wizard made it)."""
    return (getattr(resource, "tags", None) or {}).get(TAG_KEY) == tag_value

"""What the Setup page's Azure section calls (no Streamlit here): sign-in from the settings, the plan
as rows with costs, and the first ARM steps and teardown of provision.py with their errors as messages.

Not built yet: HDInsight, Databricks, the peerings and the topic (steps 5-10 of the plan).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError

from backend.azure import provision as _provision
from backend.azure.plan import ConfigError, Plan, build_plan, load_config
from backend.azure.prices import PriceTableError
from backend.azure.provision import StepResult, TeardownNotConfirmed
from backend.settings import PROJECT_ROOT, Settings

PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
EXAMPLE_PLAN = PROJECT_ROOT / "backend" / "azure" / "example-plan.toml"
NOT_BUILT = ("the HDInsight Kafka cluster", "the Databricks workspace and cluster", "the two peerings", "the topic")


def service_principal_set(settings: Settings) -> bool:
    return bool(settings.azure_tenant_id and settings.azure_client_id and settings.azure_client_secret)


def credential_from(settings: Settings) -> TokenCredential:
    """A ClientSecretCredential when the service principal's three settings are set, else DefaultAzureCredential."""
    options: dict[str, Any] = {"authority": settings.azure_authority_host}
    if settings.azure_authority_host.rstrip("/") != PUBLIC_AUTHORITY:
        options["disable_instance_discovery"] = True  # a stand-in, or a cloud without discovery
    if settings.azure_ca_bundle is not None:
        options["connection_verify"] = str(settings.azure_ca_bundle)
    if service_principal_set(settings):
        from azure.identity import ClientSecretCredential

        assert settings.azure_client_secret is not None
        return ClientSecretCredential(
            str(settings.azure_tenant_id),
            str(settings.azure_client_id),
            settings.azure_client_secret.get_secret_value(),
            **options,
        )
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(**options)


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for the management clients: the ARM endpoint, the polling interval, the CA bundle."""
    options: dict[str, Any] = {
        "base_url": settings.azure_arm_endpoint,
        "polling_interval": settings.azure_polling_interval_s,
    }
    if settings.azure_ca_bundle is not None:
        options["connection_verify"] = str(settings.azure_ca_bundle)
    return options


def load_plan_config(path: Path | str) -> Plan:
    """The plan of a config file; ConfigError (its problems) or PlanError with one message otherwise."""
    try:
        return build_plan(load_config(Path(path)))
    except ConfigError:
        raise
    except (PriceTableError, OSError, KeyError) as exc:
        raise PlanError(str(exc)) from exc


class PlanError(RuntimeError):
    """The plan could not be made for a reason other than the config's own faults."""


@dataclass(frozen=True)
class PlanRows:
    rows: list[dict[str, Any]]  # step, type, name, USD/h
    total_hourly_usd: Decimal
    prices_as_of: str
    prices_status: str


def plan_rows(plan: Plan) -> PlanRows:
    rows = [{"step": r.step, "type": r.type, "name": r.name, "USD/h": float(r.hourly_usd)} for r in plan.resources]
    return PlanRows(rows, plan.total_hourly_usd, plan.prices.as_of.isoformat(), plan.prices.status)


def subscription(settings: Settings, plan: Plan) -> str:
    return settings.azure_subscription_id or plan.config.subscription_id


def provision_steps(
    plan: Plan, settings: Settings, progress: Callable[[StepResult], None] | None = None
) -> list[StepResult]:
    """The resource group, the Kafka network and the storage account (provision.provision); failures as results."""
    try:
        return _provision.provision(
            plan,
            credential_from(settings),
            subscription(settings, plan),
            client_options=client_options(settings),
            progress=progress,
        )
    except (AzureError, ValueError) as exc:  # e.g. DefaultAzureCredential finding no identity
        return [_unexpected(plan, exc)]


def find_tagged(plan: Plan, settings: Settings) -> tuple[list[tuple[str, str]], StepResult | None]:
    """What carries the plan's tag, or the failure that prevented reading it."""
    try:
        return (
            _provision.find_tagged(
                plan, credential_from(settings), subscription(settings, plan), client_options=client_options(settings)
            ),
            None,
        )
    except (AzureError, ValueError) as exc:
        return [], _unexpected(plan, exc)


def teardown(
    plan: Plan,
    settings: Settings,
    confirm: Sequence[str],
    progress: Callable[[StepResult], None] | None = None,
) -> list[StepResult]:
    """Delete what carries the tag after ``confirm`` named exactly it; a refusal or failure comes back as a result."""
    try:
        return _provision.teardown(
            plan,
            credential_from(settings),
            subscription(settings, plan),
            confirm=confirm,
            client_options=client_options(settings),
            progress=progress,
        )
    except TeardownNotConfirmed as exc:
        return [StepResult("teardown", plan.names.resource_group, "failed", str(exc), "NotConfirmed", "List again.")]
    except (AzureError, ValueError) as exc:
        return [_unexpected(plan, exc)]


def _unexpected(plan: Plan, exc: Exception) -> StepResult:
    if isinstance(exc, ClientAuthenticationError) and exc.response is None:
        code, message = "SignInFailed", str(exc.message).splitlines()[0]
    else:
        code, message = type(exc).__name__, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StepResult(
        "sign-in" if code == "SignInFailed" else "azure",
        plan.names.resource_group,
        "failed",
        f"{code}: {message}",
        code,
        _provision.advice_for(code, plan, "the request"),
    )

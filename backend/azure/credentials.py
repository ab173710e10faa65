"""Signing in to Azure from the settings, and where the calls go: the management clients' options and the
subscription (AZURE_SUBSCRIPTION_ID, else the plan's own)."""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential

from backend.azure.plan import Plan, build_plan
from backend.azure.plan_config import parse_config
from backend.settings import Settings

PUBLIC_AUTHORITY = "https://login.microsoftonline.com"


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


def subscription(settings: Settings, plan: Plan) -> str:
    return settings.azure_subscription_id or plan.config.subscription_id


def effective_plan(plan: Plan, settings: Settings) -> Plan:
    """The plan for the subscription the calls go to: AZURE_SUBSCRIPTION_ID when set, else the plan's own.
    Resource ids in request bodies (subnet, storage, managed resource group) come from the plan, so the two
    must agree."""
    wanted = settings.azure_subscription_id
    if not wanted or wanted == plan.config.subscription_id:
        return plan
    return build_plan(parse_config({**plan.config.model_dump(), "subscription_id": wanted}))

"""The plan as the Setup page picks and shows it: from a config file with the page's choices (subscription,
region, resource group), the priced regions to choose from, and the plan's rows with their costs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from backend.azure.plan import Plan, build_plan
from backend.azure.plan_config import ConfigError, load_config, parse_config
from backend.azure.prices import PriceTableError, load_prices
from backend.settings import PROJECT_ROOT

EXAMPLE_PLAN = PROJECT_ROOT / "backend" / "azure" / "example-plan.toml"


class PlanError(RuntimeError):
    """The plan could not be made for a reason other than the config's own faults."""


def load_plan_config(path: Path | str, choices: Mapping[str, str] | None = None) -> Plan:
    """The plan of a config file, with ``choices`` (subscription_id, region, resource_group, as picked on
    the page) in place of the file's; ConfigError (its problems) or PlanError with one message otherwise."""
    try:
        config = load_config(Path(path))
        if choices:
            config = parse_config({**config.model_dump(), **choices})
        return build_plan(config)
    except ConfigError:
        raise
    except (PriceTableError, OSError, KeyError) as exc:
        raise PlanError(str(exc)) from exc


def config_defaults(path: Path | str) -> dict[str, str] | None:
    """The file's subscription, region and resource group (what the page's choices start from), or None."""
    try:
        config = load_config(Path(path))
    except ConfigError:
        return None
    return {"subscription_id": config.subscription_id, "region": config.region, "resource_group": config.resource_group}


def priced_regions() -> list[str]:
    """The regions prices.toml prices (the only ones a plan can be made for)."""
    try:
        return sorted(load_prices().regions)
    except (PriceTableError, OSError):
        return []


@dataclass(frozen=True)
class PlanRows:
    rows: list[dict[str, Any]]  # step, type, name, USD/h
    total_hourly_usd: Decimal
    prices_as_of: str
    prices_status: str


def plan_rows(plan: Plan) -> PlanRows:
    rows = [{"step": r.step, "type": r.type, "name": r.name, "USD/h": float(r.hourly_usd)} for r in plan.resources]
    return PlanRows(rows, plan.total_hourly_usd, plan.prices.as_of.isoformat(), plan.prices.status)

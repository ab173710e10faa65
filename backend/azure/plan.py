"""The Azure plan: what the wizard would create for the article's architecture, in order, with costs.

Pure logic: the config is checked (plan_checks), each size and region priced from the dated price
table (prices.toml; what it does not price is an error, never a zero), and the resources listed
(plan_resources). No network call, no Azure SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from backend.azure.plan_checks import ProjectSpark, ResourceNames, derive_names, runtime_for, validate
from backend.azure.plan_config import (
    DATABRICKS_SKU,
    DATABRICKS_WORKLOAD,
    KAFKA_DISK,
    REGION_NAME,
    TAG_KEY,
    ConfigError,
    PlanConfig,
)
from backend.azure.plan_resources import PlannedResource, UnitPrices, money, planned_resources
from backend.azure.prices import PriceTable, RegionPrices, load_prices


@dataclass(frozen=True)
class Plan:
    config: PlanConfig
    names: ResourceNames
    resources: tuple[PlannedResource, ...]
    prices: PriceTable

    def resource(self, resource_type: str) -> PlannedResource:
        """The planned resource of ``resource_type`` (each type is planned once)."""
        return next(resource for resource in self.resources if resource.type == resource_type)

    @property
    def total_hourly_usd(self) -> Decimal:
        return sum((resource.hourly_usd for resource in self.resources), Decimal(0))

    def to_dict(self) -> dict[str, Any]:
        total = self.total_hourly_usd
        return {
            "subscription_id": self.config.subscription_id,
            "region": self.config.region,
            "resource_group": self.names.resource_group,
            "tag": {TAG_KEY: self.config.tag_value},
            "prices": {
                "file": "backend/azure/" + self.prices.path.name,
                "as_of": self.prices.as_of.isoformat(),
                "status": self.prices.status,
                "source": self.prices.source,
                "currency": self.prices.currency,
            },
            "resources": [resource.to_dict() for resource in self.resources],
            "total_hourly_usd": float(total),
            "hours_per_month": self.prices.hours_per_month,
            "total_monthly_usd": float(money(total * self.prices.hours_per_month)),
        }


def build_plan(config: PlanConfig, *, prices: PriceTable | None = None, spark: ProjectSpark | None = None) -> Plan:
    """The ordered resources to create, each with type, name, ARM id, api-version and hourly cost.

    Raises ConfigError listing every fault: names, versions, network, and any size or region
    the price table does not price.
    """
    prices = load_prices() if prices is None else prices
    spark = ProjectSpark.from_repository() if spark is None else spark
    problems = validate(config)
    runtime, runtime_problems = runtime_for(config, spark)
    problems.extend(runtime_problems)

    region = prices.region(config.region)
    if region is None:
        if REGION_NAME.fullmatch(config.region):
            problems.append(
                f"region = {config.region!r} has no prices in {prices.describe()}; priced regions: "
                + ", ".join(sorted(prices.regions))
            )
        raise ConfigError(list(dict.fromkeys(problems)))
    unit = _unit_prices(config, prices, region, problems)
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    assert runtime is not None

    names, _ = derive_names(config)
    resources = planned_resources(config, names, runtime, spark, unit)
    return Plan(config=config, names=names, resources=resources, prices=prices)


def _unit_prices(config: PlanConfig, prices: PriceTable, region: RegionPrices, problems: list[str]) -> UnitPrices:
    """The prices of the config's sizes in its region; each one missing adds a problem (and counts 0)."""
    hdi, dbx = config.hdinsight, config.databricks

    def price(table: Mapping[str, Decimal], key: str, label: str, field_name: str = "") -> Decimal:
        if key in table:
            return table[key]
        if not (field_name and any(p.startswith(f"{field_name} = ") for p in problems)):  # said already
            problems.append(
                f"{label}: no price for it in region {config.region!r} in {prices.describe()}; "
                f"priced there: {', '.join(sorted(table))}"
            )
        return Decimal(0)

    def size(field_name: str, value: str) -> tuple[str, str, str]:
        return value, f"{field_name} = {value!r}", field_name

    dbu_key = f"{DATABRICKS_SKU}_{DATABRICKS_WORKLOAD}"
    sql_dbu_key = f"{DATABRICKS_SKU}_serverless_sql"
    return UnitPrices(
        head_node=price(region.hdinsight_node, *size("hdinsight.head_node_size", hdi.head_node_size)),
        worker_node=price(region.hdinsight_node, *size("hdinsight.worker_node_size", hdi.worker_node_size)),
        zookeeper_node=price(region.hdinsight_node, *size("hdinsight.zookeeper_node_size", hdi.zookeeper_node_size)),
        databricks_vm=price(region.vm, *size("databricks.node_type", dbx.node_type)),
        dbu_per_node=price(
            prices.dbu_per_node_hour,
            dbx.node_type,
            f"databricks.node_type = {dbx.node_type!r} (its DBUs per hour)",
            "databricks.node_type",
        ),
        disk_month=price(region.managed_disk_per_month, KAFKA_DISK, f"the data disk of Kafka workers ({KAFKA_DISK})"),
        dbu_rate=price(region.dbu, dbu_key, f"the DBU rate {dbu_key!r}", "databricks.sku"),
        warehouse_dbu=price(
            prices.sql_warehouse_dbu_per_hour,
            dbx.warehouse_size,
            f"databricks.warehouse_size = {dbx.warehouse_size!r} (its DBUs per hour)",
            "databricks.warehouse_size",
        ),
        sql_dbu_rate=price(region.dbu, sql_dbu_key, f"the DBU rate {sql_dbu_key!r}", "databricks.sku"),
        nat_gateway=region.nat_gateway,
        public_ip=region.public_ip,
        hours_per_month=prices.hours_per_month,
    )

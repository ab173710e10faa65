"""The dated price table (prices.toml beside this file) the plan's hourly costs come from."""

from __future__ import annotations

import datetime
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.toml")


class PriceTableError(RuntimeError):
    """The price table itself is unreadable or malformed (a fault of the repository, not of a config)."""


@dataclass(frozen=True)
class RegionPrices:
    hdinsight_node: Mapping[str, Decimal]  # per node-hour, by VM size
    vm: Mapping[str, Decimal]  # Linux VM per hour, by VM size
    dbu: Mapping[str, Decimal]  # USD per DBU, by "<tier>_<workload>"
    managed_disk_per_month: Mapping[str, Decimal]
    nat_gateway: Decimal
    public_ip: Decimal


@dataclass(frozen=True)
class PriceTable:
    as_of: datetime.date
    status: str
    currency: str
    source: str
    hours_per_month: int
    dbu_per_node_hour: Mapping[str, Decimal]
    sql_warehouse_dbu_per_hour: Mapping[str, Decimal]  # by SQL warehouse size ("2X-Small")
    regions: Mapping[str, RegionPrices]
    path: Path

    def region(self, name: str) -> RegionPrices | None:
        return self.regions.get(name)

    def describe(self) -> str:
        return f"{self.path.name} ({self.status}, as of {self.as_of.isoformat()})"


def _prices(raw: Any, where: str) -> dict[str, Decimal]:
    if not isinstance(raw, dict) or not raw:
        raise PriceTableError(f"{where} must be a non-empty table of prices")
    out: dict[str, Decimal] = {}
    for key, value in raw.items():
        out[key] = _price(value, f"{where}.{key}")
    return out


def _price(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise PriceTableError(f"{where} must be a number, not {value!r}")
    price = Decimal(value)
    if price < 0:
        raise PriceTableError(f"{where} is negative ({price})")
    return price


def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    """Read the price table; numbers become Decimals (no binary rounding in the sums)."""
    try:
        with path.open("rb") as file:
            raw = tomllib.load(file, parse_float=Decimal)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PriceTableError(f"cannot read the price table {path}: {exc}") from exc
    try:
        as_of = raw["as_of"]
        if not isinstance(as_of, datetime.date) or isinstance(as_of, datetime.datetime):
            raise PriceTableError(f"{path}: as_of must be a date (YYYY-MM-DD), not {as_of!r}")
        regions = {
            name: RegionPrices(
                hdinsight_node=_prices(region["hdinsight_node"], f"regions.{name}.hdinsight_node"),
                vm=_prices(region["vm"], f"regions.{name}.vm"),
                dbu=_prices(region["dbu"], f"regions.{name}.dbu"),
                managed_disk_per_month=_prices(
                    region["managed_disk_per_month"], f"regions.{name}.managed_disk_per_month"
                ),
                nat_gateway=_price(region["nat_gateway"], f"regions.{name}.nat_gateway"),
                public_ip=_price(region["public_ip"], f"regions.{name}.public_ip"),
            )
            for name, region in raw["regions"].items()
        }
        return PriceTable(
            as_of=as_of,
            status=str(raw["status"]),
            currency=str(raw["currency"]),
            source=str(raw["source"]),
            hours_per_month=int(raw["hours_per_month"]),
            dbu_per_node_hour=_prices(raw["dbu_per_node_hour"], "dbu_per_node_hour"),
            sql_warehouse_dbu_per_hour=_prices(raw["sql_warehouse_dbu_per_hour"], "sql_warehouse_dbu_per_hour"),
            regions=regions,
            path=path,
        )
    except KeyError as exc:
        raise PriceTableError(f"{path}: missing key {exc.args[0]!r}") from exc

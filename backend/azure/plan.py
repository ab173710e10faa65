"""The Azure plan: what the wizard would create for the article's architecture, in order, with costs.

The article's setup, made explicit: a resource group; Kafka on an HDInsight 5.1 cluster in its own
virtual network and subnet, with a storage account for the cluster's file system; an Azure
Databricks workspace (in its own managed virtual network) and a cluster whose Spark matches our
job, with Spark's Kafka connector; a peering on each side of the two networks; the topic.

Pure logic: reading a config file, checking it, building the plan. No network call, no Azure SDK.
Costs come from the dated price table (prices.toml); a size or region it does not price is an
error, never a zero.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.aggregates.interfaces import TABLE_PREFIX, TABLE_PREFIX_RULE
from backend.azure import naming
from backend.azure.prices import PriceTable, load_prices
from backend.kafka.topic_names import DEFAULT_TOPIC

# The api-versions the wizard will send: the defaults of the SDK releases it is to use
# (azure-mgmt-resource 26.0.0, azure-mgmt-network 33.1.0, azure-mgmt-storage 25.3.0,
# azure-mgmt-hdinsight 9.0.1, azure-mgmt-databricks 3.0.0), read from their wheels on 2026-11-30.
# HDInsight's 2021-06-01 is also its newest stable REST version (only previews came after).
API_VERSIONS: Mapping[str, str] = {
    "Microsoft.Resources/resourceGroups": "2025-04-01",
    "Microsoft.Network/virtualNetworks": "2026-03-01",
    "Microsoft.Network/virtualNetworks/subnets": "2026-03-01",
    "Microsoft.Network/virtualNetworks/virtualNetworkPeerings": "2026-03-01",
    "Microsoft.Storage/storageAccounts": "2026-09-01",
    "Microsoft.HDInsight/clusters": "2021-06-01",
    "Microsoft.Databricks/workspaces": "2026-01-01",
    "Microsoft.Databricks/workspaces/virtualNetworkPeerings": "2026-01-01",
}
DATABRICKS_WAREHOUSES_API = "2.0"  # POST /api/2.0/sql/warehouses; statements: POST /api/2.0/sql/statements
DATABRICKS_CLUSTERS_API = "2.1"  # POST /api/2.1/clusters/create; libraries: POST /api/2.0/libraries/install

TAG_KEY = "tweetstream-wizard"  # on everything the wizard creates; teardown finds resources by it

HDINSIGHT_VERSION = "5.1"
HDINSIGHT_RETIRED = ("3.6", "4.0", "5.0")
HDINSIGHT_KAFKA_VERSION = "3.2"  # the Kafka that HDInsight 5.1 ships
HEAD_NODES = 2
ZOOKEEPER_NODES = 3
GATEWAY_NODES = 2  # HDInsight's gateways sit in the cluster's subnet too (not billed here)
AZURE_RESERVED_ADDRESSES = 5  # per subnet
MAX_DISKS_PER_WORKER = 16  # 16 disks of 1 TiB: HDInsight Kafka's documented 16 TB per node
KAFKA_DISK = "standard_hdd_s30"  # HDInsight Kafka's data disks on these (non-premium) sizes

# Sizes offered per role: the defaults and recommended sizes of HDInsight's node configuration
# documentation for Kafka. Each must also be priced in prices.toml for the chosen region.
HDINSIGHT_SIZES: Mapping[str, tuple[str, ...]] = {
    "head": ("Standard_D3_v2", "Standard_D4_v2", "Standard_D12_v2"),
    "worker": ("Standard_D3_v2", "Standard_D4_v2", "Standard_D12_v2", "Standard_D13_v2", "Standard_E4_v3"),
    "zookeeper": ("Standard_A4_v2", "Standard_D3_v2"),
}
DATABRICKS_NODE_TYPES = ("Standard_DS3_v2", "Standard_DS4_v2")
DATABRICKS_SKU = "premium"
# Azure Databricks took no new Standard-tier workspaces after 2026-04-01 and moved the rest to
# Premium on 2026-10-01.
DATABRICKS_RETIRED_SKUS = ("standard",)
DATABRICKS_WORKLOAD = "all_purpose"  # one long-running cluster that both jobs run on
# Databricks runtimes (clusters API spark_version keys) and their Apache Spark, from Databricks'
# runtime release notes (17.3 LTS: 4.0.0, 18: 4.1.0, 19: 4.2.0). The keys of 18 and 19 follow
# the pattern of 17.3's; the provisioning step is to confirm them with GET /api/2.1/clusters/spark-versions.
DATABRICKS_RUNTIMES: Mapping[str, str] = {
    "17.3.x-scala2.13": "4.0.0",
    "18.0.x-scala2.13": "4.1.0",
    "19.0.x-scala2.13": "4.2.0",
}
DATABRICKS_MANAGED_VNET = "workers-vnet"  # the name of the workspace's managed virtual network

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_REGION = re.compile(r"[a-z][a-z0-9]*")
_TWO_OCTETS = re.compile(r"(\d{1,3})\.(\d{1,3})")
_PRECISION = Decimal("0.0001")  # USD: a hundredth of a cent


class ConfigError(ValueError):
    """A plan config that cannot be planned; ``problems`` has one clear message per fault."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --- the config ---------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Section):
    address_space: str = "10.0.0.0/16"  # the Kafka virtual network (the article's)
    subnet: str = "10.0.0.0/24"


class HDInsightConfig(_Section):
    version: str = HDINSIGHT_VERSION
    head_node_size: str = "Standard_D3_v2"
    worker_node_size: str = "Standard_D12_v2"
    worker_count: int = Field(default=3, ge=1)
    disks_per_worker: int = Field(default=2, ge=1, le=MAX_DISKS_PER_WORKER)
    zookeeper_node_size: str = "Standard_A4_v2"

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # `version = 5.1` in TOML is a float; the version is text ("4.0" must stay "4.0").
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


class DatabricksConfig(_Section):
    sku: str = DATABRICKS_SKU
    node_type: str = "Standard_DS3_v2"
    workers: int = Field(default=2, ge=1)
    runtime: str | None = None  # a clusters API spark_version key; default: the one with our Spark
    autotermination_minutes: int = Field(default=60, ge=10, le=10000)
    managed_vnet_prefix: str = "10.139"  # Databricks' default: the managed network is 10.139.0.0/16
    # The SQL warehouse the console reads the Delta aggregates through (serverless; it starts on the first
    # statement and stops after these idle minutes).
    warehouse_size: str = "2X-Small"
    warehouse_auto_stop_minutes: int = Field(default=10, ge=10, le=10000)  # the API takes 0 or 10 and more


class KafkaConfig(_Section):
    topic: str = DEFAULT_TOPIC
    partitions: int = Field(default=4, ge=1)
    replication: int = Field(default=3, ge=1)


class NameOverrides(_Section):
    """Names to use instead of those derived from name_prefix (each still checked)."""

    kafka_vnet: str | None = None
    kafka_subnet: str | None = None
    storage_account: str | None = None
    hdinsight_cluster: str | None = None
    databricks_workspace: str | None = None
    databricks_managed_resource_group: str | None = None
    databricks_cluster: str | None = None
    databricks_peering: str | None = None
    kafka_peering: str | None = None
    databricks_warehouse: str | None = None
    table_prefix: str | None = None


class PlanConfig(_Section):
    subscription_id: str
    region: str
    resource_group: str
    name_prefix: str
    tag: str | None = None  # the value of the tweetstream-wizard tag; default: name_prefix
    network: NetworkConfig = NetworkConfig()
    hdinsight: HDInsightConfig = HDInsightConfig()
    databricks: DatabricksConfig = DatabricksConfig()
    kafka: KafkaConfig = KafkaConfig()
    names: NameOverrides = NameOverrides()

    @property
    def tag_value(self) -> str:
        return self.name_prefix if self.tag is None else self.tag


def _pydantic_problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(config)"
        if item["type"] in ("missing", "extra_forbidden"):
            problems.append(f"{where}: {item['msg'].lower()}")
        else:
            problems.append(f"{where} = {item['input']!r}: {item['msg']}")
    return problems


def parse_config(data: Mapping[str, Any]) -> PlanConfig:
    """A PlanConfig from already-parsed data; ConfigError lists every structural fault."""
    try:
        return PlanConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_pydantic_problems(exc)) from None


def load_config(path: Path) -> PlanConfig:
    """Read a plan config from a .toml or .json file (structure only; build_plan checks the rest)."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError([f"{path}: a plan config is a .toml or .json file"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read it ({exc})"]) from None
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError([f"{path}: not valid {suffix[1:].upper()}: {exc}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the config must be a table (an object), not {type(data).__name__}"])
    return parse_config(data)


# --- the project's Spark ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectSpark:
    """The Spark our consumer job is built for (jvm/pom.xml, equal to the pinned pyspark)."""

    spark_version: str
    scala_binary_version: str

    @classmethod
    def from_repository(cls) -> ProjectSpark:
        from backend.runtime.jars import pom_property

        return cls(pom_property("spark.version"), pom_property("scala.binary.version"))

    @property
    def kafka_connector(self) -> str:
        return f"org.apache.spark:spark-sql-kafka-0-10_{self.scala_binary_version}:{self.spark_version}"


# --- names ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceNames:
    resource_group: str
    kafka_vnet: str
    kafka_subnet: str
    storage_account: str
    storage_container: str
    hdinsight_cluster: str
    databricks_workspace: str
    databricks_managed_resource_group: str
    databricks_cluster: str
    databricks_peering: str
    kafka_peering: str
    topic: str
    databricks_warehouse: str = ""
    table_prefix: str = ""  # the consumer's Delta tables: <table_prefix>tweets_per_window...


def derive_names(config: PlanConfig) -> tuple[ResourceNames, dict[str, str]]:
    """Every name the plan uses, and for each the config field it comes from (for messages).

    Globally unique names (storage account, HDInsight cluster) end with six hex digits of the
    subscription and resource group, so the same config always gives the same names (a rerun
    finds what it made) and two people's plans do not collide.
    """
    prefix = config.name_prefix
    suffix = hashlib.sha256(f"{config.subscription_id.lower()}/{config.resource_group.lower()}".encode()).hexdigest()
    suffix = suffix[:6]
    given = config.names
    derived = f"derived from name_prefix {prefix!r}"
    fields: dict[str, str] = {"resource_group": "resource_group", "topic": "kafka.topic"}

    def pick(key: str, default: str) -> str:
        value = getattr(given, key)
        fields[key] = f"names.{key}" if value is not None else f"names.{key} ({derived})"
        return default if value is None else value

    workspace = pick("databricks_workspace", f"{prefix}-databricks")
    cluster = pick("hdinsight_cluster", f"{prefix}-kafka-{suffix}")
    fields["storage_container"] = f"the default container of the HDInsight cluster, from {fields['hdinsight_cluster']}"
    names = ResourceNames(
        resource_group=config.resource_group,
        kafka_vnet=pick("kafka_vnet", f"{prefix}-kafka-vnet"),
        kafka_subnet=pick("kafka_subnet", f"{prefix}-kafka-subnet"),
        storage_account=pick("storage_account", prefix.replace("-", "")[:18] + suffix),
        storage_container=cluster.lower(),
        hdinsight_cluster=cluster,
        databricks_workspace=workspace,
        databricks_managed_resource_group=pick("databricks_managed_resource_group", f"databricks-rg-{workspace}"),
        databricks_cluster=pick("databricks_cluster", f"{prefix}-spark"),
        databricks_peering=pick("databricks_peering", f"{prefix}-databricks-to-kafka"),
        kafka_peering=pick("kafka_peering", f"{prefix}-kafka-to-databricks"),
        topic=config.kafka.topic,
        databricks_warehouse=pick("databricks_warehouse", f"{prefix}-sql"),
        table_prefix=pick("table_prefix", prefix.replace("-", "_") + "_"),
    )
    return names, fields


_NAME_RULES: Mapping[str, naming.NameRule] = {
    "resource_group": naming.RESOURCE_GROUP,
    "kafka_vnet": naming.VIRTUAL_NETWORK,
    "kafka_subnet": naming.SUBNET,
    "storage_account": naming.STORAGE_ACCOUNT,
    "storage_container": naming.BLOB_CONTAINER,
    "hdinsight_cluster": naming.HDINSIGHT_CLUSTER,
    "databricks_workspace": naming.DATABRICKS_WORKSPACE,
    "databricks_managed_resource_group": naming.RESOURCE_GROUP,
    "databricks_peering": naming.DATABRICKS_PEERING,
    "kafka_peering": naming.VIRTUAL_NETWORK_PEERING,
    "topic": naming.KAFKA_TOPIC,
    "databricks_warehouse": naming.SQL_WAREHOUSE,
}


# --- checks ---------------------------------------------------------------------------------------


def _network_problems(config: PlanConfig) -> list[str]:
    problems: list[str] = []
    net = config.network
    networks: dict[str, ipaddress.IPv4Network] = {}
    for key in ("address_space", "subnet"):
        value = getattr(net, key)
        try:
            parsed = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            problems.append(f"network.{key} = {value!r} is not an IPv4 network in CIDR form like 10.0.0.0/16 ({exc})")
            continue
        if not isinstance(parsed, ipaddress.IPv4Network):
            problems.append(f"network.{key} = {value!r} is IPv6; HDInsight's virtual network needs an IPv4 range")
            continue
        networks[key] = parsed
    space, subnet = networks.get("address_space"), networks.get("subnet")
    if space is not None and subnet is not None:
        if not subnet.subnet_of(space):
            problems.append(
                f"network.subnet = {net.subnet!r} is not inside network.address_space = {net.address_space!r}"
            )
        elif subnet.prefixlen > 29:
            problems.append(f"network.subnet = {net.subnet!r} is smaller than /29, the smallest subnet Azure allows")
        else:
            nodes = HEAD_NODES + config.hdinsight.worker_count + ZOOKEEPER_NODES + GATEWAY_NODES
            usable = subnet.num_addresses - AZURE_RESERVED_ADDRESSES
            if usable < nodes:
                problems.append(
                    f"network.subnet = {net.subnet!r} has {usable} usable addresses but the HDInsight cluster needs "
                    f"{nodes} ({HEAD_NODES} head, {config.hdinsight.worker_count} worker, {ZOOKEEPER_NODES} ZooKeeper "
                    f"and {GATEWAY_NODES} gateway nodes; Azure keeps {AZURE_RESERVED_ADDRESSES} of every subnet)"
                )
    prefix = config.databricks.managed_vnet_prefix
    match = _TWO_OCTETS.fullmatch(prefix)
    if match is None or any(int(octet) > 255 for octet in match.groups()):
        problems.append(
            f"databricks.managed_vnet_prefix = {prefix!r} is not the first two octets of a /16 like '10.139'"
        )
    elif space is not None:
        managed = ipaddress.IPv4Network(f"{prefix}.0.0/16")
        if managed.overlaps(space):
            problems.append(
                f"network.address_space = {net.address_space!r} overlaps the Databricks workspace's managed network "
                f"{managed} (databricks.managed_vnet_prefix = {prefix!r}): peered networks must not overlap"
            )
    return problems


def _runtime(config: PlanConfig, spark: ProjectSpark) -> tuple[str | None, list[str]]:
    wanted = config.databricks.runtime
    known = ", ".join(f"{key} (Spark {version})" for key, version in DATABRICKS_RUNTIMES.items())
    if wanted is None:
        for key, version in DATABRICKS_RUNTIMES.items():
            if version == spark.spark_version and key.endswith(f"-scala{spark.scala_binary_version}"):
                return key, []
        return None, [
            f"no Databricks runtime known here has our Spark {spark.spark_version} "
            f"(Scala {spark.scala_binary_version}); known: {known}"
        ]
    if wanted not in DATABRICKS_RUNTIMES:
        return None, [f"databricks.runtime = {wanted!r} is not a runtime this plan knows; known: {known}"]
    if DATABRICKS_RUNTIMES[wanted] != spark.spark_version or not wanted.endswith(f"-scala{spark.scala_binary_version}"):
        return None, [
            f"databricks.runtime = {wanted!r} runs Spark {DATABRICKS_RUNTIMES[wanted]}, but our consumer job is built "
            f"for Spark {spark.spark_version} with Scala {spark.scala_binary_version} (jvm/pom.xml, requirements.txt)"
        ]
    return wanted, []


def validate(config: PlanConfig) -> list[str]:
    """Everything wrong with a config that needs no price table: names, versions, SKU, network, Kafka."""
    problems: list[str] = []
    if not _GUID.fullmatch(config.subscription_id):
        problems.append(
            f"subscription_id = {config.subscription_id!r} is not a subscription id "
            "(a GUID like 00000000-0000-0000-0000-000000000000)"
        )
    if not _REGION.fullmatch(config.region):
        problems.append(
            f"region = {config.region!r} is not an Azure region name as ARM spells it (lowercase, no spaces: 'eastus')"
        )
    prefix_problem = naming.NAME_PREFIX.check("name_prefix", config.name_prefix)
    if prefix_problem:
        problems.append(prefix_problem)
    if not 1 <= len(config.tag_value) <= 256:
        problems.append(f"tag = {config.tag_value!r} is {len(config.tag_value)} characters; a tag value has 1-256")
    if prefix_problem is None:
        names, fields = derive_names(config)
        for key, rule in _NAME_RULES.items():
            message = rule.check(fields[key], getattr(names, key))
            if message:
                problems.append(message)
        if not names.databricks_cluster.strip():
            problems.append(f"{fields['databricks_cluster']} is empty")
        if not TABLE_PREFIX.fullmatch(names.table_prefix):
            # The consumer's own rule (it would refuse the prefix on Databricks, after the build).
            problems.append(f"{fields['table_prefix']} = {names.table_prefix!r}: a table prefix is {TABLE_PREFIX_RULE}")
        if names.databricks_managed_resource_group.lower() == names.resource_group.lower():
            problems.append(
                f"{fields['databricks_managed_resource_group']} = {names.databricks_managed_resource_group!r} is "
                "resource_group: Azure Databricks creates its managed resource group itself, so it must be another one"
            )
    version = config.hdinsight.version
    if version in HDINSIGHT_RETIRED:
        problems.append(
            f"hdinsight.version = {version!r} is retired (HDInsight {', '.join(HDINSIGHT_RETIRED)} are); "
            f"only {HDINSIGHT_VERSION} is offered"
        )
    elif version != HDINSIGHT_VERSION:
        problems.append(
            f"hdinsight.version = {version!r} is not an HDInsight version offered here: only {HDINSIGHT_VERSION}"
        )
    sku = config.databricks.sku
    if sku.lower() in DATABRICKS_RETIRED_SKUS:
        problems.append(
            f"databricks.sku = {sku!r} is retired (no new Standard-tier workspaces since 2026-04-01); "
            f"use {DATABRICKS_SKU!r}"
        )
    elif sku != DATABRICKS_SKU:
        problems.append(f"databricks.sku = {sku!r} is not offered here: only {DATABRICKS_SKU!r}")
    for role, key in (("head", "head_node_size"), ("worker", "worker_node_size"), ("zookeeper", "zookeeper_node_size")):
        size = getattr(config.hdinsight, key)
        if size not in HDINSIGHT_SIZES[role]:
            problems.append(
                f"hdinsight.{key} = {size!r} is not a size offered for HDInsight Kafka {role} nodes: "
                + ", ".join(HDINSIGHT_SIZES[role])
            )
    if config.databricks.node_type not in DATABRICKS_NODE_TYPES:
        problems.append(
            f"databricks.node_type = {config.databricks.node_type!r} is not a node type offered here: "
            + ", ".join(DATABRICKS_NODE_TYPES)
        )
    if config.kafka.replication > config.hdinsight.worker_count:
        problems.append(
            f"kafka.replication = {config.kafka.replication} needs as many brokers, "
            f"but hdinsight.worker_count = {config.hdinsight.worker_count}"
        )
    problems.extend(_network_problems(config))
    return problems


# --- the plan -------------------------------------------------------------------------------------


def _money(value: Decimal) -> Decimal:
    return value.quantize(_PRECISION, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class CostLine:
    what: str
    quantity: Decimal
    unit: str
    unit_usd: Decimal  # per unit per hour

    @property
    def hourly_usd(self) -> Decimal:
        return self.quantity * self.unit_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "quantity": float(self.quantity),
            "unit": self.unit,
            "unit_usd": float(_money(self.unit_usd)),
            "hourly_usd": float(_money(self.hourly_usd)),
        }


@dataclass(frozen=True)
class PlannedResource:
    step: int
    type: str  # the ARM resource type, or databricks.cluster / kafka.topic for what ARM does not hold
    name: str
    resource_id: str | None  # the ARM resource id, where it has one
    api_version: str | None
    api: str  # how it is created
    depends_on: tuple[str, ...] = ()
    cost: tuple[CostLine, ...] = ()
    properties: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def hourly_usd(self) -> Decimal:
        """Estimated USD per hour, rounded to 1/100 cent (the plan's total adds these)."""
        return _money(sum((line.hourly_usd for line in self.cost), Decimal(0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "type": self.type,
            "name": self.name,
            "id": self.resource_id,
            "api_version": self.api_version,
            "api": self.api,
            "depends_on": list(self.depends_on),
            "hourly_usd": float(self.hourly_usd),
            "cost": [line.to_dict() for line in self.cost],
            "properties": dict(self.properties),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Plan:
    config: PlanConfig
    names: ResourceNames
    resources: tuple[PlannedResource, ...]
    prices: PriceTable

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
            "total_monthly_usd": float(_money(total * self.prices.hours_per_month)),
        }


def _arm(api_type: str, long_running: bool = True) -> tuple[str, str]:
    how = "ARM PUT, long-running (polled until provisioningState is final)" if long_running else "ARM PUT"
    return API_VERSIONS[api_type], how


def build_plan(config: PlanConfig, *, prices: PriceTable | None = None, spark: ProjectSpark | None = None) -> Plan:
    """The ordered resources to create, each with type, name, ARM id, api-version and hourly cost.

    Raises ConfigError listing every fault: names, versions, network, and any size or region
    the price table does not price.
    """
    prices = load_prices() if prices is None else prices
    spark = ProjectSpark.from_repository() if spark is None else spark
    problems = validate(config)
    runtime, runtime_problems = _runtime(config, spark)
    problems.extend(runtime_problems)

    hdi, dbx = config.hdinsight, config.databricks
    region = prices.region(config.region)
    if region is None:
        if _REGION.fullmatch(config.region):
            problems.append(
                f"region = {config.region!r} has no prices in {prices.describe()}; priced regions: "
                + ", ".join(sorted(prices.regions))
            )
        raise ConfigError(list(dict.fromkeys(problems)))

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

    head_price = price(region.hdinsight_node, *size("hdinsight.head_node_size", hdi.head_node_size))
    worker_price = price(region.hdinsight_node, *size("hdinsight.worker_node_size", hdi.worker_node_size))
    zk_price = price(region.hdinsight_node, *size("hdinsight.zookeeper_node_size", hdi.zookeeper_node_size))
    vm_price = price(region.vm, *size("databricks.node_type", dbx.node_type))
    dbu_per_node = price(
        prices.dbu_per_node_hour,
        dbx.node_type,
        f"databricks.node_type = {dbx.node_type!r} (its DBUs per hour)",
        "databricks.node_type",
    )
    disk_month = price(region.managed_disk_per_month, KAFKA_DISK, f"the data disk of Kafka workers ({KAFKA_DISK})")
    dbu_key = f"{DATABRICKS_SKU}_{DATABRICKS_WORKLOAD}"
    dbu_rate = price(region.dbu, dbu_key, f"the DBU rate {dbu_key!r}", "databricks.sku")
    warehouse_dbu = price(
        prices.sql_warehouse_dbu_per_hour,
        dbx.warehouse_size,
        f"databricks.warehouse_size = {dbx.warehouse_size!r} (its DBUs per hour)",
        "databricks.warehouse_size",
    )
    sql_dbu_key = f"{DATABRICKS_SKU}_serverless_sql"
    sql_dbu_rate = price(region.dbu, sql_dbu_key, f"the DBU rate {sql_dbu_key!r}", "databricks.sku")
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    assert runtime is not None

    names, _ = derive_names(config)
    tags = {TAG_KEY: config.tag_value}
    sub = config.subscription_id
    rg_id = f"/subscriptions/{sub}/resourceGroups/{names.resource_group}"
    vnet_id = f"{rg_id}/providers/Microsoft.Network/virtualNetworks/{names.kafka_vnet}"
    subnet_id = f"{vnet_id}/subnets/{names.kafka_subnet}"
    storage_id = f"{rg_id}/providers/Microsoft.Storage/storageAccounts/{names.storage_account}"
    hdi_id = f"{rg_id}/providers/Microsoft.HDInsight/clusters/{names.hdinsight_cluster}"
    ws_id = f"{rg_id}/providers/Microsoft.Databricks/workspaces/{names.databricks_workspace}"
    managed_rg_id = f"/subscriptions/{sub}/resourceGroups/{names.databricks_managed_resource_group}"
    managed_vnet_id = f"{managed_rg_id}/providers/Microsoft.Network/virtualNetworks/{DATABRICKS_MANAGED_VNET}"
    hours_per_month = Decimal(prices.hours_per_month)
    dbx_nodes = Decimal(dbx.workers + 1)
    disks = hdi.worker_count * hdi.disks_per_worker

    steps: list[dict[str, Any]] = [
        dict(
            type="Microsoft.Resources/resourceGroups",
            name=names.resource_group,
            resource_id=rg_id,
            api=_arm("Microsoft.Resources/resourceGroups", long_running=False),
            properties={"location": config.region, "tags": tags},
            notes=("No charge of its own.",),
        ),
        dict(
            type="Microsoft.Network/virtualNetworks",
            name=names.kafka_vnet,
            resource_id=vnet_id,
            api=_arm("Microsoft.Network/virtualNetworks"),
            depends_on=("Microsoft.Resources/resourceGroups",),
            properties={"location": config.region, "addressSpace": [config.network.address_space], "tags": tags},
            notes=("Kafka's network, as in the article. No charge of its own.",),
        ),
        dict(
            type="Microsoft.Network/virtualNetworks/subnets",
            name=names.kafka_subnet,
            resource_id=subnet_id,
            api=_arm("Microsoft.Network/virtualNetworks/subnets"),
            depends_on=("Microsoft.Network/virtualNetworks",),
            properties={"addressPrefix": config.network.subnet},
            notes=("Every node of the HDInsight cluster gets an address here. No charge of its own.",),
        ),
        dict(
            type="Microsoft.Storage/storageAccounts",
            name=names.storage_account,
            resource_id=storage_id,
            api=_arm("Microsoft.Storage/storageAccounts"),
            depends_on=("Microsoft.Resources/resourceGroups",),
            properties={
                "location": config.region,
                "kind": "StorageV2",
                "sku": "Standard_LRS",
                "minimumTlsVersion": "TLS1_2",
                "allowBlobPublicAccess": False,
                "container": names.storage_container,
                "tags": tags,
            },
            notes=(
                "The HDInsight cluster's default file system (its container is named after the cluster).",
                "Billed per GB stored and per operation, not per hour: 0 here.",
                "The name must be unique across all of Azure; if it is taken, set names.storage_account.",
            ),
        ),
        dict(
            type="Microsoft.HDInsight/clusters",
            name=names.hdinsight_cluster,
            resource_id=hdi_id,
            api=_arm("Microsoft.HDInsight/clusters"),
            depends_on=("Microsoft.Network/virtualNetworks/subnets", "Microsoft.Storage/storageAccounts"),
            cost=(
                CostLine("head nodes", Decimal(HEAD_NODES), f"{hdi.head_node_size} node", head_price),
                CostLine(
                    "worker nodes (Kafka brokers)",
                    Decimal(hdi.worker_count),
                    f"{hdi.worker_node_size} node",
                    worker_price,
                ),
                CostLine("ZooKeeper nodes", Decimal(ZOOKEEPER_NODES), f"{hdi.zookeeper_node_size} node", zk_price),
                CostLine(
                    f"data disks ({hdi.disks_per_worker} per worker)",
                    Decimal(disks),
                    f"Standard HDD S30 disk (USD {disk_month}/month / {prices.hours_per_month} h)",
                    disk_month / hours_per_month,
                ),
            ),
            properties={
                "location": config.region,
                "clusterVersion": HDINSIGHT_VERSION,
                "osType": "Linux",
                "tier": "Standard",
                "kind": "kafka",
                "componentVersion": {"Kafka": HDINSIGHT_KAFKA_VERSION},
                "roles": {
                    "headnode": {"count": HEAD_NODES, "vmSize": hdi.head_node_size},
                    "workernode": {
                        "count": hdi.worker_count,
                        "vmSize": hdi.worker_node_size,
                        "disksPerNode": hdi.disks_per_worker,
                    },
                    "zookeepernode": {"count": ZOOKEEPER_NODES, "vmSize": hdi.zookeeper_node_size},
                },
                "subnet": subnet_id,
                "defaultStorage": {"account": storage_id, "container": names.storage_container},
                "minSupportedTlsVersion": "1.2",
                "tags": tags,
            },
            notes=(
                f"HDInsight {HDINSIGHT_VERSION} (Kafka {HDINSIGHT_KAFKA_VERSION}); "
                f"{', '.join(HDINSIGHT_RETIRED)} are retired.",
                "Billed per node-hour from creation to deletion, running or idle: the largest cost here.",
                "The name must be unique across all of Azure (NAME.azurehdinsight.net); if it is taken, "
                "set names.hdinsight_cluster.",
                "Gateway and SSH credentials are made when provisioning, never written to the plan.",
            ),
        ),
        dict(
            type="Microsoft.Databricks/workspaces",
            name=names.databricks_workspace,
            resource_id=ws_id,
            api=_arm("Microsoft.Databricks/workspaces"),
            depends_on=("Microsoft.Resources/resourceGroups",),
            cost=(
                CostLine("NAT gateway (managed resource group)", Decimal(1), "gateway", region.nat_gateway),
                CostLine("its public IP address", Decimal(1), "address", region.public_ip),
            ),
            properties={
                "location": config.region,
                "sku": DATABRICKS_SKU,
                "computeMode": "Hybrid",  # required on create from api-version 2026-01-01
                "managedResourceGroupId": managed_rg_id,
                "parameters": {"enableNoPublicIp": True, "vnetAddressPrefix": dbx.managed_vnet_prefix},
                "tags": tags,
            },
            notes=(
                f"Azure Databricks makes the managed resource group {names.databricks_managed_resource_group} "
                f"and the network {DATABRICKS_MANAGED_VNET} ({dbx.managed_vnet_prefix}.0.0/16) in it.",
                "With secure cluster connectivity (no public IPs on cluster nodes) it also makes a NAT gateway "
                "there, billed per hour whether a cluster runs or not, plus per GB it carries.",
            ),
        ),
        dict(
            type="databricks.cluster",
            name=names.databricks_cluster,
            resource_id=None,
            api=(
                DATABRICKS_CLUSTERS_API,
                "Databricks REST: POST /api/2.1/clusters/create, then POST /api/2.0/libraries/install",
            ),
            depends_on=("Microsoft.Databricks/workspaces",),
            cost=(
                CostLine("driver and worker VMs", dbx_nodes, f"{dbx.node_type} VM", vm_price),
                CostLine(
                    "DBUs, Premium All-Purpose Compute",
                    dbx_nodes * dbu_per_node,
                    f"DBU ({dbu_per_node} per {dbx.node_type} node-hour)",
                    dbu_rate,
                ),
            ),
            properties={
                "spark_version": runtime,
                "apache_spark": spark.spark_version,
                "node_type_id": dbx.node_type,
                "driver_node_type_id": dbx.node_type,
                "num_workers": dbx.workers,
                "autotermination_minutes": dbx.autotermination_minutes,
                "custom_tags": tags,
                "libraries": [{"maven": {"coordinates": spark.kafka_connector}}],
            },
            notes=(
                f"Its Spark ({spark.spark_version}) is the one our consumer job is built for; the library is "
                "Spark's Kafka connector of that version.",
                f"Billed only while it runs; it stops after {dbx.autotermination_minutes} idle minutes.",
            ),
        ),
        dict(
            type="Microsoft.Databricks/workspaces/virtualNetworkPeerings",
            name=names.databricks_peering,
            resource_id=f"{ws_id}/virtualNetworkPeerings/{names.databricks_peering}",
            api=_arm("Microsoft.Databricks/workspaces/virtualNetworkPeerings"),
            depends_on=("Microsoft.Databricks/workspaces", "Microsoft.Network/virtualNetworks"),
            properties={
                "remoteVirtualNetwork": vnet_id,
                "allowVirtualNetworkAccess": True,
                "allowForwardedTraffic": True,
            },
            notes=("The workspace side. Billed per GB that crosses it, not per hour: 0 here.",),
        ),
        dict(
            type="Microsoft.Network/virtualNetworks/virtualNetworkPeerings",
            name=names.kafka_peering,
            resource_id=f"{vnet_id}/virtualNetworkPeerings/{names.kafka_peering}",
            api=_arm("Microsoft.Network/virtualNetworks/virtualNetworkPeerings"),
            depends_on=("Microsoft.Databricks/workspaces/virtualNetworkPeerings",),
            properties={
                "remoteVirtualNetwork": managed_vnet_id,
                "allowVirtualNetworkAccess": True,
                "allowForwardedTraffic": True,
            },
            notes=(
                "The Kafka side, towards the workspace's managed network (its id is read from the workspace "
                "once it exists). Both sides must then say Connected.",
                "Billed per GB that crosses it, not per hour: 0 here.",
            ),
        ),
        dict(
            type="kafka.topic",
            name=names.topic,
            resource_id=None,
            api=(None, "Kafka Admin API (CreateTopics) from inside the peered networks"),
            depends_on=("Microsoft.HDInsight/clusters", "Microsoft.Network/virtualNetworks/virtualNetworkPeerings"),
            properties={"partitions": config.kafka.partitions, "replication_factor": config.kafka.replication},
            notes=("Lives on the brokers' disks: no charge of its own.",),
        ),
        dict(
            type="databricks.sql_warehouse",
            name=names.databricks_warehouse,
            resource_id=None,
            api=(
                DATABRICKS_WAREHOUSES_API,
                "Databricks REST: POST /api/2.0/sql/warehouses; the console reads with POST /api/2.0/sql/statements",
            ),
            depends_on=("Microsoft.Databricks/workspaces",),
            cost=(
                CostLine(
                    f"DBUs, Serverless SQL ({dbx.warehouse_size})",
                    warehouse_dbu,
                    f"DBU ({warehouse_dbu} per {dbx.warehouse_size} warehouse-hour)",
                    sql_dbu_rate,
                ),
            ),
            properties={
                "cluster_size": dbx.warehouse_size,
                "warehouse_type": "PRO",
                "enable_serverless_compute": True,
                "auto_stop_mins": dbx.warehouse_auto_stop_minutes,
                "max_num_clusters": 1,
                "tables": f"{names.table_prefix}*",
            },
            notes=(
                "The console on your machine reads the Spark job's Delta tables through it (the job writes "
                f"{names.table_prefix}tweets_per_window and the rest).",
                f"Billed only while it runs: it starts on the console's first query and stops after "
                f"{dbx.warehouse_auto_stop_minutes} idle minutes. The console reads only while one of its pages "
                "is open with live updates on (and a minute after).",
            ),
        ),
    ]
    resources = []
    for number, step in enumerate(steps, start=1):
        api_version, api = step.pop("api")
        resources.append(PlannedResource(step=number, api_version=api_version, api=api, **step))
    return Plan(config=config, names=names, resources=tuple(resources), prices=prices)

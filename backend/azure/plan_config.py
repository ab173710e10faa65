"""The Azure plan's config: what it may choose from (versions, sizes, runtimes, api-versions), the
config file's model and reading it. Pure logic: no network call, no Azure SDK."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.kafka.topic_names import DEFAULT_TOPIC

# The api-versions the wizard will send: the defaults of the SDK releases it is to use
# (azure-mgmt-resource 26.0.0, azure-mgmt-network 33.1.0, azure-mgmt-storage 25.3.0,
# azure-mgmt-hdinsight 9.0.1, azure-mgmt-databricks 3.0.0), read from their wheels on 2026-11-30.
# HDInsight's 2021-06-01 is also its newest stable REST version (only previews came after).
API_VERSIONS: Mapping[str, str] = {
    "Microsoft.Resources/resourceGroups": "2025-04-01",
    "Microsoft.Network/publicIPAddresses": "2026-03-01",
    "Microsoft.Network/natGateways": "2026-03-01",
    "Microsoft.Network/networkSecurityGroups": "2026-03-01",
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


REGION_NAME = re.compile(r"[a-z][a-z0-9]*")  # an Azure region as ARM spells it


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
    # Where the console calls the cluster's HTTPS gateway (Ambari) from: the NSG lets it in on 443. A CIDR
    # (your address as a.b.c.d/32) or a service tag; "Internet" lets any address reach the login page.
    console_source: str = "Internet"


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
    # The Unity Catalog schema whose volume holds the consumer's checkpoint and archive (new workspaces
    # have no DBFS root). catalog: None is the workspace's default catalog (read from its metastore
    # assignment); schema_name: None is name_prefix with "_" for "-"; both made if missing.
    catalog: str | None = None
    schema_name: str | None = None
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
    kafka_public_ip: str | None = None
    kafka_nat_gateway: str | None = None
    kafka_nsg: str | None = None
    storage_account: str | None = None
    hdinsight_cluster: str | None = None
    databricks_workspace: str | None = None
    databricks_managed_resource_group: str | None = None
    databricks_cluster: str | None = None
    databricks_peering: str | None = None
    kafka_peering: str | None = None
    databricks_warehouse: str | None = None
    table_prefix: str | None = None
    volume: str | None = None


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

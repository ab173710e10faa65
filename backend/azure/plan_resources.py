"""The plan's resources in the order they are made, each with its ARM type, id, api-version, properties
and hourly cost lines (from unit prices already looked up)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from backend.azure.plan_checks import ProjectSpark, ResourceNames
from backend.azure.plan_config import (
    API_VERSIONS,
    DATABRICKS_CLUSTERS_API,
    DATABRICKS_SKU,
    DATABRICKS_WAREHOUSES_API,
    HDINSIGHT_KAFKA_VERSION,
    HDINSIGHT_RETIRED,
    HDINSIGHT_VERSION,
    HEAD_NODES,
    TAG_KEY,
    ZOOKEEPER_NODES,
    PlanConfig,
)

# The Kafka side's remote network is not known before the workspace exists: Azure names it.
MANAGED_VNET_FROM_WORKSPACE = "(the workspace side's databricksVirtualNetwork.id)"
_PRECISION = Decimal("0.0001")  # USD: a hundredth of a cent
Step = dict[str, Any]  # PlannedResource's fields but the step number, with api as (api_version, how)


def money(value: Decimal) -> Decimal:
    """USD rounded to a hundredth of a cent."""
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
            "unit_usd": float(money(self.unit_usd)),
            "hourly_usd": float(money(self.hourly_usd)),
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
        return money(sum((line.hourly_usd for line in self.cost), Decimal(0)))

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
class UnitPrices:
    """The USD prices the plan's cost lines use, looked up in the price table for the plan's region."""

    head_node: Decimal
    worker_node: Decimal
    zookeeper_node: Decimal
    databricks_vm: Decimal
    dbu_per_node: Decimal  # DBUs per Databricks node-hour
    disk_month: Decimal  # one Kafka data disk per month
    dbu_rate: Decimal  # USD per DBU of all-purpose compute
    warehouse_dbu: Decimal  # DBUs per SQL warehouse-hour
    sql_dbu_rate: Decimal  # USD per DBU of serverless SQL
    nat_gateway: Decimal
    public_ip: Decimal
    hours_per_month: int


# The Kafka subnet's inbound rules ("Control network traffic in Azure HDInsight": HDInsight's management
# traffic from the HDInsight service tag on 443; the console's calls to the cluster's HTTPS gateway on 443).
# Traffic within the network and its peerings and from Azure's load balancer passes the NSG's default rules.
def kafka_nsg_rules(console_source: str) -> list[dict[str, Any]]:
    """The NSG's security rules, as ARM's securityRules properties (name, then the rule's properties)."""

    def inbound_443(name: str, source: str, priority: int) -> dict[str, Any]:
        return {
            "name": name,
            "protocol": "Tcp",
            "sourceAddressPrefix": source,
            "sourcePortRange": "*",
            "destinationAddressPrefix": "VirtualNetwork",
            "destinationPortRange": "443",
            "access": "Allow",
            "priority": priority,
            "direction": "Inbound",
        }

    return [
        inbound_443("AllowHDInsightManagement", "HDInsight", 300),
        inbound_443("AllowConsoleToGateway", console_source, 310),
    ]


@dataclass(frozen=True)
class ResourceIds:
    """The ARM ids the plan's resources have (and point at each other with)."""

    resource_group: str
    kafka_public_ip: str
    kafka_nat_gateway: str
    kafka_nsg: str
    kafka_vnet: str
    kafka_subnet: str
    storage_account: str
    hdinsight_cluster: str
    workspace: str
    managed_resource_group: str

    @classmethod
    def of(cls, config: PlanConfig, names: ResourceNames) -> ResourceIds:
        sub = config.subscription_id
        rg_id = f"/subscriptions/{sub}/resourceGroups/{names.resource_group}"
        vnet_id = f"{rg_id}/providers/Microsoft.Network/virtualNetworks/{names.kafka_vnet}"
        managed_rg_id = f"/subscriptions/{sub}/resourceGroups/{names.databricks_managed_resource_group}"
        network = f"{rg_id}/providers/Microsoft.Network"
        return cls(
            resource_group=rg_id,
            kafka_public_ip=f"{network}/publicIPAddresses/{names.kafka_public_ip}",
            kafka_nat_gateway=f"{network}/natGateways/{names.kafka_nat_gateway}",
            kafka_nsg=f"{network}/networkSecurityGroups/{names.kafka_nsg}",
            kafka_vnet=vnet_id,
            kafka_subnet=f"{vnet_id}/subnets/{names.kafka_subnet}",
            storage_account=f"{rg_id}/providers/Microsoft.Storage/storageAccounts/{names.storage_account}",
            hdinsight_cluster=f"{rg_id}/providers/Microsoft.HDInsight/clusters/{names.hdinsight_cluster}",
            workspace=f"{rg_id}/providers/Microsoft.Databricks/workspaces/{names.databricks_workspace}",
            managed_resource_group=managed_rg_id,
        )


def planned_resources(
    config: PlanConfig, names: ResourceNames, runtime: str, spark: ProjectSpark, unit: UnitPrices
) -> tuple[PlannedResource, ...]:
    """The plan's resources, numbered in the order they are made."""
    ids = ResourceIds.of(config, names)
    tags = {TAG_KEY: config.tag_value}
    steps = [
        *_network_and_storage(config, names, ids, tags, unit),
        _hdinsight_cluster(config, names, ids, tags, unit),
        *_databricks(config, names, ids, tags, unit, runtime, spark),
        _volume(config, names),
        *_peerings(names, ids),
        *_topic_and_warehouse(config, names, unit),
    ]
    resources = []
    for number, step in enumerate(steps, start=1):
        api_version, api = step.pop("api")
        resources.append(PlannedResource(step=number, api_version=api_version, api=api, **step))
    return tuple(resources)


def _arm(api_type: str, long_running: bool = True) -> tuple[str, str]:
    how = "ARM PUT, long-running (polled until provisioningState is final)" if long_running else "ARM PUT"
    return API_VERSIONS[api_type], how


def _network_and_storage(
    config: PlanConfig, names: ResourceNames, ids: ResourceIds, tags: dict[str, str], unit: UnitPrices
) -> list[Step]:
    group = ("Microsoft.Resources/resourceGroups",)
    return [
        dict(
            type="Microsoft.Resources/resourceGroups",
            name=names.resource_group,
            resource_id=ids.resource_group,
            api=_arm("Microsoft.Resources/resourceGroups", long_running=False),
            properties={"location": config.region, "tags": tags},
            notes=("No charge of its own.",),
        ),
        *_outbound_and_nsg(config, names, ids, tags, unit),
        dict(
            type="Microsoft.Network/virtualNetworks",
            name=names.kafka_vnet,
            resource_id=ids.kafka_vnet,
            api=_arm("Microsoft.Network/virtualNetworks"),
            depends_on=group,
            properties={"location": config.region, "addressSpace": [config.network.address_space], "tags": tags},
            notes=("Kafka's network, as in the article. No charge of its own.",),
        ),
        dict(
            type="Microsoft.Network/virtualNetworks/subnets",
            name=names.kafka_subnet,
            resource_id=ids.kafka_subnet,
            api=_arm("Microsoft.Network/virtualNetworks/subnets"),
            depends_on=(
                "Microsoft.Network/virtualNetworks",
                "Microsoft.Network/natGateways",
                "Microsoft.Network/networkSecurityGroups",
            ),
            properties={
                "addressPrefix": config.network.subnet,
                "natGateway": ids.kafka_nat_gateway,
                "networkSecurityGroup": ids.kafka_nsg,
                "defaultOutboundAccess": False,
            },
            notes=(
                "Every node of the HDInsight cluster gets an address here. No charge of its own.",
                "Private (defaultOutboundAccess false, the default for new subnets since api-version 2025-07-01): "
                "its outbound path is the NAT gateway.",
            ),
        ),
        dict(
            type="Microsoft.Storage/storageAccounts",
            name=names.storage_account,
            resource_id=ids.storage_account,
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
    ]


def _outbound_and_nsg(
    config: PlanConfig, names: ResourceNames, ids: ResourceIds, tags: dict[str, str], unit: UnitPrices
) -> list[Step]:
    """The Kafka subnet's outbound path (a NAT gateway with a Standard public IP) and its NSG, which HDInsight
    needs in a network of one's own since it moved to Standard Load Balancers (its migration guideline,
    "New cluster creation")."""
    group = ("Microsoft.Resources/resourceGroups",)
    return [
        dict(
            type="Microsoft.Network/publicIPAddresses",
            name=names.kafka_public_ip,
            resource_id=ids.kafka_public_ip,
            api=_arm("Microsoft.Network/publicIPAddresses"),
            depends_on=group,
            cost=(CostLine("Standard static public IPv4 address", Decimal(1), "address", unit.public_ip),),
            properties={
                "location": config.region,
                "sku": {"name": "Standard", "tier": "Regional"},
                "publicIPAllocationMethod": "Static",
                "publicIPAddressVersion": "IPv4",
                "tags": tags,
            },
            notes=("The NAT gateway's outbound address. Billed per hour from creation to deletion.",),
        ),
        dict(
            type="Microsoft.Network/natGateways",
            name=names.kafka_nat_gateway,
            resource_id=ids.kafka_nat_gateway,
            api=_arm("Microsoft.Network/natGateways"),
            depends_on=("Microsoft.Network/publicIPAddresses",),
            cost=(CostLine("NAT gateway", Decimal(1), "gateway", unit.nat_gateway),),
            properties={
                "location": config.region,
                "sku": {"name": "Standard"},
                "publicIpAddresses": [ids.kafka_public_ip],
                "tags": tags,
            },
            notes=(
                "The Kafka subnet's outbound path, which HDInsight needs on Standard Load Balancers. Billed per "
                "hour from creation to deletion, plus per GB it carries (not counted here).",
            ),
        ),
        dict(
            type="Microsoft.Network/networkSecurityGroups",
            name=names.kafka_nsg,
            resource_id=ids.kafka_nsg,
            api=_arm("Microsoft.Network/networkSecurityGroups"),
            depends_on=group,
            properties={
                "location": config.region,
                "securityRules": kafka_nsg_rules(config.network.console_source),
                "tags": tags,
            },
            notes=(
                "Required on the subnet by HDInsight's Standard Load Balancer: HDInsight's management traffic "
                f"(service tag HDInsight) and the console ({config.network.console_source}) in on 443. "
                "No charge of its own.",
            ),
        ),
    ]


def _hdinsight_cluster(
    config: PlanConfig, names: ResourceNames, ids: ResourceIds, tags: dict[str, str], unit: UnitPrices
) -> Step:
    hdi = config.hdinsight
    disks = hdi.worker_count * hdi.disks_per_worker
    return dict(
        type="Microsoft.HDInsight/clusters",
        name=names.hdinsight_cluster,
        resource_id=ids.hdinsight_cluster,
        api=_arm("Microsoft.HDInsight/clusters"),
        depends_on=("Microsoft.Network/virtualNetworks/subnets", "Microsoft.Storage/storageAccounts"),
        cost=(
            CostLine("head nodes", Decimal(HEAD_NODES), f"{hdi.head_node_size} node", unit.head_node),
            CostLine(
                "worker nodes (Kafka brokers)",
                Decimal(hdi.worker_count),
                f"{hdi.worker_node_size} node",
                unit.worker_node,
            ),
            CostLine(
                "ZooKeeper nodes", Decimal(ZOOKEEPER_NODES), f"{hdi.zookeeper_node_size} node", unit.zookeeper_node
            ),
            CostLine(
                f"data disks ({hdi.disks_per_worker} per worker)",
                Decimal(disks),
                f"Standard HDD S30 disk (USD {unit.disk_month}/month / {unit.hours_per_month} h)",
                unit.disk_month / Decimal(unit.hours_per_month),
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
            "subnet": ids.kafka_subnet,
            "defaultStorage": {"account": ids.storage_account, "container": names.storage_container},
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
    )


def _databricks(
    config: PlanConfig,
    names: ResourceNames,
    ids: ResourceIds,
    tags: dict[str, str],
    unit: UnitPrices,
    runtime: str,
    spark: ProjectSpark,
) -> list[Step]:
    dbx = config.databricks
    dbx_nodes = Decimal(dbx.workers + 1)
    return [
        dict(
            type="Microsoft.Databricks/workspaces",
            name=names.databricks_workspace,
            resource_id=ids.workspace,
            api=_arm("Microsoft.Databricks/workspaces"),
            depends_on=("Microsoft.Resources/resourceGroups",),
            cost=(
                CostLine("NAT gateway (managed resource group)", Decimal(1), "gateway", unit.nat_gateway),
                CostLine("its public IP address", Decimal(1), "address", unit.public_ip),
            ),
            properties={
                "location": config.region,
                "sku": DATABRICKS_SKU,
                "computeMode": "Hybrid",  # required on create from api-version 2026-01-01
                "managedResourceGroupId": ids.managed_resource_group,
                "parameters": {"enableNoPublicIp": True, "vnetAddressPrefix": dbx.managed_vnet_prefix},
                "tags": tags,
            },
            notes=(
                f"Azure Databricks makes the managed resource group {names.databricks_managed_resource_group} "
                f"and its network ({dbx.managed_vnet_prefix}.0.0/16) in it; that network's name is Azure's to "
                "choose, and is read from the workspace side of the peering.",
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
                CostLine("driver and worker VMs", dbx_nodes, f"{dbx.node_type} VM", unit.databricks_vm),
                CostLine(
                    "DBUs, Premium All-Purpose Compute",
                    dbx_nodes * unit.dbu_per_node,
                    f"DBU ({unit.dbu_per_node} per {dbx.node_type} node-hour)",
                    unit.dbu_rate,
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
                "data_security_mode": "SINGLE_USER",
            },
            notes=(
                f"Its Spark ({spark.spark_version}) is the one our consumer job is built for; it reads Kafka with "
                "the runtime's own Kafka source (no second copy from Apache's connector as a library).",
                "Its libraries: every third-party Python package the jobs import, at requirements.txt's pins.",
                f"Billed only while it runs; it stops after {dbx.autotermination_minutes} idle minutes.",
            ),
        ),
    ]


DEFAULT_CATALOG = "<default catalog>"  # read from the workspace's metastore assignment when the build runs


def volume_path(catalog: str, names: ResourceNames) -> str:
    """The Unity Catalog volume's path as Spark and the jobs use it."""
    return f"/Volumes/{catalog}/{names.uc_schema}/{names.uc_volume}"


def _volume(config: PlanConfig, names: ResourceNames) -> Step:
    catalog = names.uc_catalog or DEFAULT_CATALOG
    root = f"{volume_path(catalog, names)}/{config.tag_value}"
    return dict(
        type="databricks.volume",
        name=f"{catalog}.{names.uc_schema}.{names.uc_volume}",
        resource_id=None,
        api=(
            "2.1",
            "Unity Catalog REST: POST /api/2.1/unity-catalog/schemas (if missing), "
            "then POST /api/2.1/unity-catalog/volumes (MANAGED)",
        ),
        depends_on=("Microsoft.Databricks/workspaces",),
        properties={
            "catalog": catalog,
            "schema": names.uc_schema,
            "volume": names.uc_volume,
            "volume_type": "MANAGED",
            "checkpoint": f"{root}/checkpoint",
            "archive": f"{root}/archive",
        },
        notes=(
            "The consumer's checkpoint and archive: storage every node shares that outlives the cluster. Not the "
            "DBFS root, which is deprecated and absent from new workspaces.",
            "Billed per GB stored in the workspace's storage, not per hour: 0 here.",
        ),
    )


def _peerings(names: ResourceNames, ids: ResourceIds) -> list[Step]:
    return [
        dict(
            type="Microsoft.Databricks/workspaces/virtualNetworkPeerings",
            name=names.databricks_peering,
            resource_id=f"{ids.workspace}/virtualNetworkPeerings/{names.databricks_peering}",
            api=_arm("Microsoft.Databricks/workspaces/virtualNetworkPeerings"),
            depends_on=("Microsoft.Databricks/workspaces", "Microsoft.Network/virtualNetworks"),
            properties={
                "remoteVirtualNetwork": ids.kafka_vnet,
                "allowVirtualNetworkAccess": True,
                "allowForwardedTraffic": True,
            },
            notes=("The workspace side. Billed per GB that crosses it, not per hour: 0 here.",),
        ),
        dict(
            type="Microsoft.Network/virtualNetworks/virtualNetworkPeerings",
            name=names.kafka_peering,
            resource_id=f"{ids.kafka_vnet}/virtualNetworkPeerings/{names.kafka_peering}",
            api=_arm("Microsoft.Network/virtualNetworks/virtualNetworkPeerings"),
            depends_on=("Microsoft.Databricks/workspaces/virtualNetworkPeerings",),
            properties={
                "remoteVirtualNetwork": MANAGED_VNET_FROM_WORKSPACE,
                "allowVirtualNetworkAccess": True,
                "allowForwardedTraffic": True,
            },
            notes=(
                "The Kafka side, towards the workspace's managed network (its id is read from the workspace "
                "side's databricksVirtualNetwork once that exists). Both sides must then say Connected.",
                "Billed per GB that crosses it, not per hour: 0 here.",
            ),
        ),
    ]


def _topic_and_warehouse(config: PlanConfig, names: ResourceNames, unit: UnitPrices) -> list[Step]:
    dbx = config.databricks
    return [
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
                    unit.warehouse_dbu,
                    f"DBU ({unit.warehouse_dbu} per {dbx.warehouse_size} warehouse-hour)",
                    unit.sql_dbu_rate,
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

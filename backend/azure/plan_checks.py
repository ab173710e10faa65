"""Checking a plan config before it is priced: names, versions, SKU, network and the Databricks
runtime that runs our Spark. Pure logic: no network call, no Azure SDK."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from backend.aggregates.interfaces import TABLE_PREFIX, TABLE_PREFIX_RULE
from backend.azure import naming
from backend.azure.plan_config import (
    AZURE_RESERVED_ADDRESSES,
    DATABRICKS_NODE_TYPES,
    DATABRICKS_RETIRED_SKUS,
    DATABRICKS_RUNTIMES,
    DATABRICKS_SKU,
    GATEWAY_NODES,
    HDINSIGHT_RETIRED,
    HDINSIGHT_SIZES,
    HDINSIGHT_VERSION,
    HEAD_NODES,
    REGION_NAME,
    ZOOKEEPER_NODES,
    PlanConfig,
)

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_TWO_OCTETS = re.compile(r"(\d{1,3})\.(\d{1,3})")
_SERVICE_TAG = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)?")  # Internet, AzureCloud.eastus...

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
    kafka_public_ip: str = ""  # the NAT gateway's address: the Kafka subnet's outbound path
    kafka_nat_gateway: str = ""
    kafka_nsg: str = ""
    uc_catalog: str = ""  # "": the workspace's default catalog, read when the volume is made
    uc_schema: str = ""
    uc_volume: str = ""


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
    fields: dict[str, str] = {
        "resource_group": "resource_group",
        "topic": "kafka.topic",
        "uc_catalog": "databricks.catalog",
        "uc_schema": "databricks.schema_name",
    }

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
        kafka_public_ip=pick("kafka_public_ip", f"{prefix}-kafka-nat-ip"),
        kafka_nat_gateway=pick("kafka_nat_gateway", f"{prefix}-kafka-nat"),
        kafka_nsg=pick("kafka_nsg", f"{prefix}-kafka-nsg"),
        uc_catalog=config.databricks.catalog or "",
        uc_schema=config.databricks.schema_name or prefix.replace("-", "_"),
        uc_volume=pick("volume", "streaming_state"),
    )
    fields["uc_volume"] = fields["volume"]
    return names, fields


_NAME_RULES: Mapping[str, naming.NameRule] = {
    "resource_group": naming.RESOURCE_GROUP,
    "kafka_vnet": naming.VIRTUAL_NETWORK,
    "kafka_subnet": naming.SUBNET,
    "kafka_public_ip": naming.PUBLIC_IP,
    "kafka_nat_gateway": naming.NAT_GATEWAY,
    "kafka_nsg": naming.NETWORK_SECURITY_GROUP,
    "storage_account": naming.STORAGE_ACCOUNT,
    "storage_container": naming.BLOB_CONTAINER,
    "hdinsight_cluster": naming.HDINSIGHT_CLUSTER,
    "databricks_workspace": naming.DATABRICKS_WORKSPACE,
    "databricks_managed_resource_group": naming.RESOURCE_GROUP,
    "databricks_peering": naming.DATABRICKS_PEERING,
    "kafka_peering": naming.VIRTUAL_NETWORK_PEERING,
    "topic": naming.KAFKA_TOPIC,
    "databricks_warehouse": naming.SQL_WAREHOUSE,
    "uc_schema": naming.UNITY_CATALOG,
    "uc_volume": naming.UNITY_CATALOG,
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
    source = net.console_source
    if not _SERVICE_TAG.fullmatch(source):
        try:
            ipaddress.IPv4Network(source, strict=True)
        except ValueError:
            problems.append(
                f"network.console_source = {source!r} is neither an IPv4 network like 203.0.113.7/32 nor a service "
                "tag like Internet"
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


def runtime_for(config: PlanConfig, spark: ProjectSpark) -> tuple[str | None, list[str]]:
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
    if not REGION_NAME.fullmatch(config.region):
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
        if names.uc_catalog:  # "" is the workspace's default catalog, read at build time
            message = naming.UNITY_CATALOG.check(fields["uc_catalog"], names.uc_catalog)
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

"""The Azure plan (issue 6, step 2): naming rules, config checks, the ordered resources, costs, CLI."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from backend.azure import naming
from backend.azure.__main__ import main
from backend.azure.plan import build_plan
from backend.azure.plan_checks import ProjectSpark, derive_names
from backend.azure.plan_config import (
    API_VERSIONS,
    DATABRICKS_NODE_TYPES,
    HDINSIGHT_SIZES,
    TAG_KEY,
    ConfigError,
    load_config,
    parse_config,
)
from backend.azure.prices import PRICES_FILE, load_prices
from backend.settings import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "backend" / "azure" / "example-plan.toml"
SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
SPARK = ProjectSpark("4.2.0", "2.13")

# A price table with round numbers, so the sums below can be done by hand.
ROUND_PRICES = """
as_of = 2026-11-30
status = "test"
currency = "USD"
source = "made up for tests"
hours_per_month = 730

[dbu_per_node_hour]
Standard_DS3_v2 = 1.0

[sql_warehouse_dbu_per_hour]
"2X-Small" = 2

[regions.testregion]
hdinsight_node = { Standard_D3_v2 = 1.00, Standard_D12_v2 = 2.00, Standard_A4_v2 = 0.50 }
vm = { Standard_DS3_v2 = 0.25 }
dbu = { premium_all_purpose = 0.50, premium_jobs = 0.25, premium_serverless_sql = 0.75 }
managed_disk_per_month = { standard_hdd_s30 = 73.00 }
nat_gateway = 0.04
public_ip = 0.01
"""


def config_data(**top) -> dict:
    data = {
        "subscription_id": SUBSCRIPTION,
        "region": "eastus",
        "resource_group": "tweetstream-rg",
        "name_prefix": "tweetstream",
    }
    data.update(top)
    return data


def problems_of(data: dict, prices=None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        build_plan(parse_config(data), prices=prices, spark=SPARK)
    return caught.value.problems


@pytest.fixture
def round_prices(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(ROUND_PRICES)
    return load_prices(path)


# --- naming rules ---------------------------------------------------------------------------------

RULE_EXAMPLES = [
    (
        naming.RESOURCE_GROUP,
        ["tweetstream-rg", "rg_(test).1", "Grüppe-ÄÖ", "a" * 90],
        ["", "a" * 91, "rg.", "rg/1", "rg#1", "rg name"],
    ),
    (naming.VIRTUAL_NETWORK, ["ab", "vnet-1.a_", "V" * 64], ["a", "-vnet", "vnet-", "vnet.", "v" * 65, "vnet!"]),
    (naming.SUBNET, ["a", "sub_", "kafka.subnet-1"], ["", "_sub", "sub-", "s" * 81]),
    (naming.VIRTUAL_NETWORK_PEERING, ["kafka-to-databricks", "p_"], ["peer.", ".peer", "p" * 81]),
    (naming.DATABRICKS_PEERING, ["databricks-to-kafka"], ["peer-", "peer ing", "p" * 81]),
    (naming.STORAGE_ACCOUNT, ["abc", "tweetstream0123456789abc"], ["ab", "Tweet", "tweet-store", "a" * 25]),
    (naming.BLOB_CONTAINER, ["abc", "a-b-c"], ["ab", "a--b", "-abc", "abc-", "ABC"]),
    (naming.HDINSIGHT_CLUSTER, ["abc", "Kafka-1", "a" * 59], ["ab", "-kafka", "kafka-", "kafka_1", "a" * 60]),
    (naming.DATABRICKS_WORKSPACE, ["abc", "ws_1-x", "-ws-"], ["ab", "ws.1", "ws 1", "a" * 65]),
    (naming.KAFKA_TOPIC, ["tweets", "a.b_c-D"], ["", ".", "..", "tw eets", "t" * 250]),
    (naming.NAME_PREFIX, ["tweetstream", "ts-1"], ["t", "1abc", "Tweets", "ts-", "ts--x", "a" * 21]),
]


@pytest.mark.parametrize(
    ("rule", "value"),
    [(rule, value) for rule, valid, _ in RULE_EXAMPLES for value in valid],
    ids=lambda x: x.what if isinstance(x, naming.NameRule) else repr(x)[:20],
)
def test_names_that_comply_pass(rule, value):
    assert rule.problem(value) is None


@pytest.mark.parametrize(
    ("rule", "value"),
    [(rule, value) for rule, _, invalid in RULE_EXAMPLES for value in invalid],
    ids=lambda x: x.what if isinstance(x, naming.NameRule) else repr(x)[:20],
)
def test_names_that_break_the_rule_are_refused_naming_field_value_and_rule(rule, value):
    message = rule.check("some.field", value)
    assert message is not None
    assert message.startswith(f"some.field = {value!r} ")
    assert f"{rule.what} names must be: {rule.text}" in message


def test_globally_unique_names_say_so():
    assert "unique across all of Azure" in naming.STORAGE_ACCOUNT.check("names.storage_account", "Bad-Name")
    assert "unique across all of Azure" in naming.HDINSIGHT_CLUSTER.check("names.hdinsight_cluster", "-bad")
    assert "unique across all of Azure" not in naming.VIRTUAL_NETWORK.check("names.kafka_vnet", "-bad")
    assert "3-24 characters; lowercase letters and digits only" in naming.STORAGE_ACCOUNT.text


def test_the_message_says_what_is_wrong():
    assert "is 25 characters long" in naming.STORAGE_ACCOUNT.check("f", "a" * 25)
    assert "has '-', 'T' (not allowed)" in naming.STORAGE_ACCOUNT.check("f", "Tweet-store")
    assert "ends with '-'" in naming.HDINSIGHT_CLUSTER.check("f", "kafka-")
    assert "is a reserved name" in naming.KAFKA_TOPIC.check("f", "..")


# --- the config -----------------------------------------------------------------------------------


def test_a_name_override_breaking_a_rule_names_its_field():
    problems = problems_of(config_data(names={"storage_account": "Tweet-Store"}))
    assert len(problems) == 1
    assert problems[0].startswith("names.storage_account = 'Tweet-Store' has '-', 'S', 'T' (not allowed)")
    assert "storage account names must be: 3-24 characters; lowercase letters and digits only" in problems[0]
    assert "unique across all of Azure" in problems[0]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"resource_group": "rg."}, "resource_group = 'rg.'"),
        ({"names": {"kafka_vnet": "-vnet"}}, "names.kafka_vnet = '-vnet'"),
        ({"names": {"kafka_subnet": "subnet-"}}, "names.kafka_subnet = 'subnet-'"),
        ({"names": {"hdinsight_cluster": "kafka_cluster"}}, "names.hdinsight_cluster = 'kafka_cluster'"),
        ({"names": {"databricks_workspace": "ws.1"}}, "names.databricks_workspace = 'ws.1'"),
        ({"names": {"databricks_peering": "to-kafka."}}, "names.databricks_peering = 'to-kafka.'"),
        ({"names": {"kafka_peering": "p" * 81}}, "names.kafka_peering = 'ppp"),
        ({"names": {"databricks_managed_resource_group": "mrg."}}, "names.databricks_managed_resource_group"),
        ({"kafka": {"topic": ".."}}, "kafka.topic = '..'"),
        ({"name_prefix": "Tweets"}, "name_prefix = 'Tweets'"),
        ({"names": {"databricks_managed_resource_group": "Tweetstream-RG"}}, "names.databricks_managed_resource_group"),
    ],
)
def test_every_name_is_checked(override, field):
    problems = problems_of(config_data(**override))
    assert any(problem.startswith(field) for problem in problems), problems


def test_an_uppercase_or_double_hyphen_cluster_name_is_checked_as_its_container_too():
    problems = problems_of(config_data(names={"hdinsight_cluster": "Kafka--1"}))
    assert len(problems) == 1
    assert "the default container of the HDInsight cluster" in problems[0]
    assert "'kafka--1' has two hyphens in a row" in problems[0]


def test_derived_names_follow_every_rule_are_stable_and_differ_between_subscriptions():
    config = parse_config(config_data())
    names, fields = derive_names(config)
    assert names == derive_names(config)[0]
    assert re.fullmatch(r"tweetstream[0-9a-f]{6}", names.storage_account)
    assert re.fullmatch(r"tweetstream-kafka-[0-9a-f]{6}", names.hdinsight_cluster)
    assert names.storage_account[-6:] == names.hdinsight_cluster[-6:]
    assert "derived from name_prefix 'tweetstream'" in fields["storage_account"]
    other = derive_names(parse_config(config_data(subscription_id="11111111-2222-3333-4444-555555555555")))[0]
    assert other.storage_account != names.storage_account
    longest = derive_names(parse_config(config_data(name_prefix="a" * 20)))[0]
    assert len(longest.storage_account) == 24
    build_plan(parse_config(config_data(name_prefix="a-" * 9 + "zz")), spark=SPARK)  # every derived name passes


@pytest.mark.parametrize("version", ["3.6", "4.0", "5.0", 4.0, 5.0, 3.6])
def test_retired_hdinsight_versions_are_refused(version):
    problems = problems_of(config_data(hdinsight={"version": version}))
    assert problems == [
        f"hdinsight.version = {str(version)!r} is retired (HDInsight 3.6, 4.0, 5.0 are); only 5.1 is offered"
    ]


def test_hdinsight_51_written_as_a_toml_number_is_accepted_and_other_versions_are_not(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text(EXAMPLE.read_text().replace('version = "5.1"', "version = 5.1"))
    assert load_config(path).hdinsight.version == "5.1"
    assert problems_of(config_data(hdinsight={"version": "6.0"})) == [
        "hdinsight.version = '6.0' is not an HDInsight version offered here: only 5.1"
    ]


def test_the_retired_databricks_standard_tier_is_refused():
    (problem,) = problems_of(config_data(databricks={"sku": "standard"}))
    assert problem.startswith("databricks.sku = 'standard' is retired")


def test_structural_faults_name_their_field():
    problems = problems_of(
        {
            "subscription_id": SUBSCRIPTION,
            "region": "eastus",
            "name_prefix": "tweetstream",
            "hdinsight": {"workr_count": 3, "disks_per_worker": 17},
        }
    )
    assert "resource_group: field required" in problems
    assert "hdinsight.workr_count: extra inputs are not permitted" in problems
    assert "hdinsight.disks_per_worker = 17: Input should be less than or equal to 16" in problems


def test_every_fault_is_reported_at_once():
    problems = problems_of(
        config_data(
            subscription_id="not-a-guid",
            region="East US",
            hdinsight={"version": "4.0", "worker_count": 2},
            kafka={"replication": 3},
            network={"address_space": "10.139.0.0/16", "subnet": "10.140.0.0/24"},
        )
    )
    assert [p.split(" ", 1)[0] for p in problems] == [
        "subscription_id",
        "region",
        "hdinsight.version",
        "kafka.replication",
        "network.subnet",
        "network.address_space",
    ]
    assert "kafka.replication = 3 needs as many brokers, but hdinsight.worker_count = 2" in problems


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ({"address_space": "10.0.0.0/33"}, "network.address_space = '10.0.0.0/33' is not an IPv4 network"),
        ({"address_space": "10.0.0.1/16"}, "network.address_space = '10.0.0.1/16' is not an IPv4 network"),
        ({"subnet": "10.1.0.0/24"}, "network.subnet = '10.1.0.0/24' is not inside network.address_space"),
        ({"subnet": "10.0.0.0/30"}, "smaller than /29"),
        ({"subnet": "10.0.0.0/29"}, "has 3 usable addresses but the HDInsight cluster needs 10"),
        ({"address_space": "10.128.0.0/9", "subnet": "10.128.0.0/24"}, "overlaps the Databricks workspace's"),
    ],
)
def test_network_faults(network, expected):
    problems = problems_of(config_data(network=network))
    assert any(expected in problem for problem in problems), problems


def test_the_managed_network_prefix_is_checked_and_moves_the_overlap_check():
    assert any(
        "databricks.managed_vnet_prefix = '10.300'" in p
        for p in problems_of(config_data(databricks={"managed_vnet_prefix": "10.300"}))
    )
    plan = build_plan(
        parse_config(
            config_data(
                network={"address_space": "10.139.0.0/16", "subnet": "10.139.0.0/24"},
                databricks={"managed_vnet_prefix": "10.200"},
            )
        ),
        spark=SPARK,
    )
    workspace = next(r for r in plan.resources if r.type == "Microsoft.Databricks/workspaces")
    assert workspace.properties["parameters"]["vnetAddressPrefix"] == "10.200"


def test_a_runtime_whose_spark_is_not_ours_is_refused():
    (problem,) = problems_of(config_data(databricks={"runtime": "17.3.x-scala2.13"}))
    assert "runs Spark 4.0.0, but our consumer job is built for Spark 4.2.0" in problem
    (problem,) = problems_of(config_data(databricks={"runtime": "99.9.x-scala2.13"}))
    assert "databricks.runtime = '99.9.x-scala2.13' is not a runtime this plan knows" in problem
    with pytest.raises(ConfigError, match=r"no Databricks runtime known here has our Spark 9\.9\.9"):
        build_plan(parse_config(config_data()), spark=ProjectSpark("9.9.9", "2.13"))


# --- the plan -------------------------------------------------------------------------------------


def test_the_plan_lists_the_articles_resources_in_order_with_ids_and_api_versions():
    plan = build_plan(load_config(EXAMPLE))
    names = plan.names
    rg = f"/subscriptions/{plan.config.subscription_id}/resourceGroups/tweetstream-rg"
    vnet = f"{rg}/providers/Microsoft.Network/virtualNetworks/tweetstream-kafka-vnet"
    workspace = f"{rg}/providers/Microsoft.Databricks/workspaces/tweetstream-databricks"
    network = f"{rg}/providers/Microsoft.Network"
    steps = [(r.step, r.type, r.name, r.resource_id) for r in plan.resources]
    # The Kafka subnet's outbound path and NSG come first (HDInsight on Standard Load Balancers).
    assert steps[:4] == [
        (1, "Microsoft.Resources/resourceGroups", "tweetstream-rg", rg),
        (
            2,
            "Microsoft.Network/publicIPAddresses",
            "tweetstream-kafka-nat-ip",
            f"{network}/publicIPAddresses/tweetstream-kafka-nat-ip",
        ),
        (3, "Microsoft.Network/natGateways", "tweetstream-kafka-nat", f"{network}/natGateways/tweetstream-kafka-nat"),
        (
            4,
            "Microsoft.Network/networkSecurityGroups",
            "tweetstream-kafka-nsg",
            f"{network}/networkSecurityGroups/tweetstream-kafka-nsg",
        ),
    ]
    # The Unity Catalog volume for the consumer's checkpoint and archive, after the Databricks cluster.
    assert steps[10] == (11, "databricks.volume", "<default catalog>.tweetstream.streaming_state", None)
    volume = plan.resources[10].properties
    assert volume["checkpoint"] == "/Volumes/<default catalog>/tweetstream/streaming_state/tweetstream/checkpoint"
    assert volume["archive"] == "/Volumes/<default catalog>/tweetstream/streaming_state/tweetstream/archive"
    assert "dbfs:" not in json.dumps(plan.to_dict())
    del steps[10]
    assert [(step - 3 - (step > 11), *rest) for step, *rest in steps[4:]] == [
        (2, "Microsoft.Network/virtualNetworks", "tweetstream-kafka-vnet", vnet),
        (
            3,
            "Microsoft.Network/virtualNetworks/subnets",
            "tweetstream-kafka-subnet",
            f"{vnet}/subnets/tweetstream-kafka-subnet",
        ),
        (
            4,
            "Microsoft.Storage/storageAccounts",
            names.storage_account,
            f"{rg}/providers/Microsoft.Storage/storageAccounts/{names.storage_account}",
        ),
        (
            5,
            "Microsoft.HDInsight/clusters",
            names.hdinsight_cluster,
            f"{rg}/providers/Microsoft.HDInsight/clusters/{names.hdinsight_cluster}",
        ),
        (6, "Microsoft.Databricks/workspaces", "tweetstream-databricks", workspace),
        (7, "databricks.cluster", "tweetstream-spark", None),
        (
            8,
            "Microsoft.Databricks/workspaces/virtualNetworkPeerings",
            "tweetstream-databricks-to-kafka",
            f"{workspace}/virtualNetworkPeerings/tweetstream-databricks-to-kafka",
        ),
        (
            9,
            "Microsoft.Network/virtualNetworks/virtualNetworkPeerings",
            "tweetstream-kafka-to-databricks",
            f"{vnet}/virtualNetworkPeerings/tweetstream-kafka-to-databricks",
        ),
        (10, "kafka.topic", "tweets", None),
        (11, "databricks.sql_warehouse", "tweetstream-sql", None),
    ]
    for resource in plan.resources:
        if resource.resource_id is not None:
            assert resource.api_version == API_VERSIONS[resource.type]
        for dependency in resource.depends_on:  # every dependency comes earlier
            assert dependency in [r.type for r in plan.resources[: resource.step - 1]]
        if "tags" in resource.properties:
            assert resource.properties["tags"] == {TAG_KEY: "tweetstream"}
    assert API_VERSIONS["Microsoft.HDInsight/clusters"] == "2021-06-01"
    assert plan.resources[9].api_version == "2.1"  # the Databricks cluster


def test_the_kafka_cluster_and_the_peerings_carry_what_the_article_set_by_hand():
    plan = build_plan(load_config(EXAMPLE))
    by_type = {r.type: r for r in plan.resources}
    kafka = by_type["Microsoft.HDInsight/clusters"].properties
    assert kafka["clusterVersion"] == "5.1"
    assert kafka["kind"] == "kafka"
    assert kafka["roles"] == {
        "headnode": {"count": 2, "vmSize": "Standard_D3_v2"},
        "workernode": {"count": 3, "vmSize": "Standard_D12_v2", "disksPerNode": 2},
        "zookeepernode": {"count": 3, "vmSize": "Standard_A4_v2"},
    }
    assert kafka["subnet"] == by_type["Microsoft.Network/virtualNetworks/subnets"].resource_id
    assert kafka["defaultStorage"]["account"] == by_type["Microsoft.Storage/storageAccounts"].resource_id
    workspace_side = by_type["Microsoft.Databricks/workspaces/virtualNetworkPeerings"].properties
    assert workspace_side["remoteVirtualNetwork"] == by_type["Microsoft.Network/virtualNetworks"].resource_id
    kafka_side = by_type["Microsoft.Network/virtualNetworks/virtualNetworkPeerings"].properties
    managed_rg = by_type["Microsoft.Databricks/workspaces"].properties["managedResourceGroupId"]
    assert managed_rg.endswith("/resourceGroups/databricks-rg-tweetstream-databricks")
    # Azure names the managed network: the plan does not guess it, the build reads it from the workspace side.
    assert kafka_side["remoteVirtualNetwork"] == "(the workspace side's databricksVirtualNetwork.id)"
    assert "workers-vnet" not in json.dumps(plan.to_dict())
    assert by_type["kafka.topic"].properties == {"partitions": 4, "replication_factor": 3}


def test_the_databricks_cluster_runs_our_spark_with_the_runtimes_own_kafka_source():
    pom = (PROJECT_ROOT / "jvm" / "pom.xml").read_text()
    spark_version = re.search(r"<spark.version>([^<]+)<", pom).group(1)
    scala = re.search(r"<scala.binary.version>([^<]+)<", pom).group(1)
    pins = (PROJECT_ROOT / "requirements.txt").read_text()
    assert re.search(rf"^pyspark=={re.escape(spark_version)}$", pins, re.MULTILINE)
    plan = build_plan(load_config(EXAMPLE))  # the real repository's Spark
    cluster = next(r for r in plan.resources if r.type == "databricks.cluster").properties
    # Databricks Runtime ships its own Kafka source: Apache's connector beside it would be a second copy.
    assert "libraries" not in cluster and "spark-sql-kafka" not in json.dumps(plan.to_dict())
    assert cluster["data_security_mode"] == "SINGLE_USER"
    assert cluster["apache_spark"] == spark_version
    assert cluster["spark_version"].endswith(f"-scala{scala}")
    assert (cluster["num_workers"], cluster["node_type_id"]) == (2, "Standard_DS3_v2")


def test_costs_are_priced_per_node_and_summed(round_prices):
    plan = build_plan(
        parse_config(config_data(region="testregion", hdinsight={"worker_count": 4, "disks_per_worker": 2})),
        prices=round_prices,
        spark=SPARK,
    )
    hourly = {r.type: r.hourly_usd for r in plan.resources}
    # 2 head x 1.00 + 4 workers x 2.00 + 3 ZooKeeper x 0.50 + 8 disks x 73.00/730
    assert hourly["Microsoft.HDInsight/clusters"] == Decimal("12.3000")
    # 3 nodes (driver + 2 workers) x (0.25 VM + 1.0 DBU x 0.50)
    assert hourly["databricks.cluster"] == Decimal("2.2500")
    assert hourly["Microsoft.Databricks/workspaces"] == Decimal("0.0500")  # NAT gateway + its IP
    # a 2X-Small SQL warehouse: 2 DBU per hour x 0.75 (serverless SQL)
    assert hourly["databricks.sql_warehouse"] == Decimal("1.5000")
    for free in ("Microsoft.Resources/resourceGroups", "Microsoft.Storage/storageAccounts", "kafka.topic"):
        assert hourly[free] == 0
    # The Kafka subnet's NAT gateway and its Standard public IP, billed per hour; its NSG costs nothing.
    assert hourly["Microsoft.Network/natGateways"] == Decimal("0.0400")
    assert hourly["Microsoft.Network/publicIPAddresses"] == Decimal("0.0100")
    assert hourly["Microsoft.Network/networkSecurityGroups"] == 0
    assert plan.total_hourly_usd == Decimal("16.1500") == sum(hourly.values())
    data = plan.to_dict()
    assert data["total_hourly_usd"] == 16.15
    assert data["total_monthly_usd"] == 11789.5  # 16.15 x 730 h
    assert data["prices"] == {
        "file": "backend/azure/prices.toml",
        "as_of": "2026-11-30",
        "status": "test",
        "source": "made up for tests",
        "currency": "USD",
    }


def test_a_size_not_in_the_price_table_is_an_error_not_a_zero(round_prices):
    # Standard_D4_v2 is offered for head nodes but this table does not price it.
    problems = problems_of(
        config_data(region="testregion", hdinsight={"head_node_size": "Standard_D4_v2"}), round_prices
    )
    assert problems == [
        "hdinsight.head_node_size = 'Standard_D4_v2': no price for it in region 'testregion' in prices.toml "
        "(test, as of 2026-11-30); priced there: Standard_A4_v2, Standard_D12_v2, Standard_D3_v2"
    ]
    (problem,) = problems_of(
        config_data(region="testregion", databricks={"node_type": "Standard_DS4_v2"}), round_prices
    )
    assert problem.startswith("databricks.node_type = 'Standard_DS4_v2': no price for it")


def test_an_unknown_size_or_region_is_refused():
    (problem,) = problems_of(config_data(hdinsight={"worker_node_size": "Standard_D99_v9"}))
    assert problem.startswith(
        "hdinsight.worker_node_size = 'Standard_D99_v9' is not a size offered for HDInsight Kafka"
    )
    (problem,) = problems_of(config_data(region="antarctica"))
    assert problem.startswith("region = 'antarctica' has no prices in prices.toml (estimate, as of 2026-11-30)")


def test_the_repository_price_table_is_dated_and_prices_every_size_offered_in_every_region():
    prices = load_prices(PRICES_FILE)
    assert isinstance(prices.as_of, datetime.date)
    assert prices.status == "estimate"
    assert "not looked up" in prices.source
    assert {"eastus", "westeurope"} <= set(prices.regions)
    for region in prices.regions.values():
        for sizes in HDINSIGHT_SIZES.values():
            assert set(sizes) <= set(region.hdinsight_node)
        assert set(DATABRICKS_NODE_TYPES) <= set(region.vm)
        assert region.dbu["premium_all_purpose"] > 0
        assert region.dbu["premium_serverless_sql"] > 0
        assert all(price > 0 for price in region.hdinsight_node.values())
    assert set(DATABRICKS_NODE_TYPES) <= set(prices.dbu_per_node_hour)


# --- the command line -----------------------------------------------------------------------------


def test_cli_prints_the_plan_as_json(capsys):
    assert main(["plan", "--config", str(EXAMPLE)]) == 0
    data = json.loads(capsys.readouterr().out)
    entries = data["resources"]
    assert len(entries) == 15
    for entry in entries:
        assert {"type", "name", "hourly_usd", "id", "api_version"} <= set(entry)
    assert data["total_hourly_usd"] == pytest.approx(sum(entry["hourly_usd"] for entry in entries), abs=1e-9)
    assert data["total_hourly_usd"] > 0
    assert data["prices"]["status"] == "estimate"


def test_cli_reads_a_json_config_too(tmp_path, capsys):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(config_data(region="westeurope")))
    assert main(["plan", "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["region"] == "westeurope"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("plan.toml", None, "cannot read it"),
        ("plan.toml", "subscription_id = [", "not valid TOML"),
        ("plan.json", "{", "not valid JSON"),
        ("plan.json", "[]", "the config must be a table"),
        ("plan.yaml", "a: 1", "a plan config is a .toml or .json file"),
        ("plan.toml", EXAMPLE.read_text().replace('"tweetstream-rg"', '"rg."'), "resource_group = 'rg.' ends with '.'"),
    ],
)
def test_cli_exits_2_with_a_clear_message_on_a_bad_config(tmp_path, capsys, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert main(["plan", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {path} cannot be planned:\n  - ")
    assert expected in captured.err


def test_python_dash_m_backend_azure_plan(tmp_path):
    run = [sys.executable, "-m", "backend.azure", "plan", "--config"]
    done = subprocess.run([*run, str(EXAMPLE)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["resources"][7]["type"] == "Microsoft.HDInsight/clusters"
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('version = "5.1"', 'version = "3.6"'))
    done = subprocess.run([*run, str(bad)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "hdinsight.version = '3.6' is retired" in done.stderr
    assert done.stdout == ""


def test_the_example_config_is_the_one_docs_azure_shows():
    readme = (PROJECT_ROOT / "docs" / "azure.md").read_text()
    assert "python -m backend.azure plan --config backend/azure/example-plan.toml" in readme
    assert Path(EXAMPLE).exists()


@pytest.mark.parametrize("prefix", ["main.", "a..b_", "a.b.c.d_", "tweet-stream_"])
def test_a_table_prefix_the_consumer_would_refuse_is_refused_in_the_plan(prefix):
    with pytest.raises(ConfigError) as refused:
        build_plan(parse_config(config_data(names={"table_prefix": prefix})))
    assert any(f"names.table_prefix = {prefix!r}: a table prefix is" in p for p in refused.value.problems)


def test_the_volume_and_the_nsg_source_come_from_the_plan_and_bad_ones_are_refused():
    plan = build_plan(
        parse_config(
            config_data(
                databricks={"catalog": "analytics", "schema_name": "streams"},
                names={"volume": "state"},
                network={"console_source": "203.0.113.7/32"},
            )
        ),
        spark=SPARK,
    )
    by_type = {r.type: r for r in plan.resources}
    assert by_type["databricks.volume"].name == "analytics.streams.state"
    assert by_type["databricks.volume"].properties["checkpoint"].startswith("/Volumes/analytics/streams/state/")
    rules = by_type["Microsoft.Network/networkSecurityGroups"].properties["securityRules"]
    assert [(r["sourceAddressPrefix"], r["destinationPortRange"]) for r in rules] == [
        ("HDInsight", "443"),
        ("203.0.113.7/32", "443"),
    ]

    with pytest.raises(ConfigError) as caught:
        build_plan(
            parse_config(
                config_data(
                    databricks={"catalog": "Main-Catalog", "schema_name": "my schema"},
                    network={"console_source": "my laptop"},
                )
            ),
            spark=SPARK,
        )
    problems = "\n".join(caught.value.problems)
    assert "databricks.catalog = 'Main-Catalog'" in problems
    assert "databricks.schema_name = 'my schema'" in problems
    assert "network.console_source = 'my laptop' is neither an IPv4 network" in problems

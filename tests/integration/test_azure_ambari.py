"""Kafka on HDInsight through Ambari (backend/azure/ambari.py) against the Ambari stand-in over HTTPS.

The stand-in (tests/standins/ambari.py) serves one HDInsight Kafka cluster's Ambari with a
certificate made at start; requests take 3 polls; the client polls without waiting (poll_s=0).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from backend.azure.ambari import (
    IP_ADVERTISING_LINES,
    LISTENERS,
    LOGIN_REFUSED,
    Ambari,
    AmbariError,
    setup_kafka,
)
from backend.azure.arm import StepResult
from backend.azure.plan import build_plan
from backend.azure.plan_config import load_config
from tests.standins.ambari import KAFKA_ENV_CONTENT, AmbariStandIn
from tests.support import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "backend" / "azure" / "example-plan.toml"
CLUSTER = build_plan(load_config(EXAMPLE)).names.hdinsight_cluster
PASSWORD = "Gateway-Pa55word!"  # a test value

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def standin() -> Iterator[AmbariStandIn]:
    with AmbariStandIn(CLUSTER, PASSWORD, polls=3) as server:
        yield server


def client(standin: AmbariStandIn, password: str = PASSWORD) -> Ambari:
    return Ambari(standin.base_url, CLUSTER, "admin", SecretStr(password), verify=str(standin.ca_path))


def test_hosts_ips_bootstrap_servers_and_zookeeper(standin: AmbariStandIn) -> None:
    ambari = client(standin)
    brokers = ambari.broker_hosts()
    assert brokers == sorted(standin.brokers)
    assert all(
        host.startswith(("wn0-", "wn1-", "wn2-")) and host.endswith(".internal.cloudapp.net") for host in brokers
    )
    assert ambari.zookeeper_hosts() == sorted(standin.zookeepers)
    assert ambari.host_ips(brokers) == standin.brokers
    assert ambari.bootstrap_servers() == "10.0.0.12:9092,10.0.0.13:9092,10.0.0.14:9092"
    assert ambari.zookeeper_connect() == "10.0.0.4:2181,10.0.0.5:2181,10.0.0.6:2181"
    assert standin.writes() == []
    assert [c.path for c in standin.calls[:2]] == [
        "/services/KAFKA/components/KAFKA_BROKER",
        "/services/ZOOKEEPER/components/ZOOKEEPER_SERVER",
    ]


def test_configure_ip_advertising_changes_exactly_the_documented_lines(standin: AmbariStandIn) -> None:
    ambari = client(standin)
    env_before = dict(standin.properties("kafka-env"))
    broker_before = dict(standin.properties("kafka-broker"))
    assert ambari.ip_advertising_configured() is False

    assert ambari.configure_ip_advertising() is True

    puts = standin.writes()
    assert [(c.method, c.path) for c in puts] == [("PUT", ""), ("PUT", "")]
    env_put, broker_put = (c.body["Clusters"]["desired_config"] for c in puts)
    assert env_put["type"] == "kafka-env" and broker_put["type"] == "kafka-broker"
    for put in (env_put, broker_put):
        assert put["tag"].startswith("version") and put["tag"] != "TOPOLOGY_RESOLVED"
        assert put["service_config_version_note"]
    # kafka-env: the template gets the documented lines at its bottom; nothing else changes.
    assert env_put["properties"]["content"] == KAFKA_ENV_CONTENT + "\n".join(IP_ADVERTISING_LINES) + "\n"
    assert {k: v for k, v in env_put["properties"].items() if k != "content"} == {
        k: v for k, v in env_before.items() if k != "content"
    }
    # kafka-broker: only listeners changes.
    assert broker_put["properties"] == {**broker_before, "listeners": "PLAINTEXT://0.0.0.0:9092"}
    assert broker_before["listeners"] == "PLAINTEXT://localhost:9092"
    # Ambari now has them as the desired configurations; brokers need a restart.
    assert standin.desired["kafka-env"] == env_put["tag"]
    assert standin.properties("kafka-broker")["listeners"] == LISTENERS
    assert ambari.ip_advertising_configured() is True
    assert ambari.stale_configs() is True


def test_second_run_is_configured_and_writes_nothing(standin: AmbariStandIn) -> None:
    ambari = client(standin)
    assert ambari.configure_ip_advertising() is True
    writes = len(standin.writes())

    assert ambari.configure_ip_advertising() is False
    assert len(standin.writes()) == writes


def test_restart_reports_progress_and_ends_started(standin: AmbariStandIn) -> None:
    ambari = client(standin)
    ambari.configure_ip_advertising()
    lines: list[str] = []

    ambari.restart_kafka(lines.append, poll_s=0)

    assert any(line.startswith("Stop Kafka: IN_PROGRESS") for line in lines)
    assert "Stop Kafka: COMPLETED 100%" in lines
    assert any(line.startswith("Start Kafka: IN_PROGRESS") for line in lines)
    assert "Start Kafka: COMPLETED 100%" in lines
    assert lines[-1] == "Kafka: STARTED"
    assert ambari.kafka_state() == "STARTED"
    assert ambari.stale_configs() is False
    assert standin.maintenance_state == "OFF"
    bodies = [c.body["Body"]["ServiceInfo"] for c in standin.writes() if c.path == "/services/KAFKA"]
    assert bodies == [
        {"maintenance_state": "ON"},
        {"state": "INSTALLED"},
        {"state": "STARTED"},
        {"maintenance_state": "OFF"},
    ]


def test_setup_kafka_first_run_then_rerun(standin: AmbariStandIn) -> None:
    ambari = client(standin)
    seen: list[StepResult] = []

    results, bootstrap = setup_kafka(ambari, seen.append, poll_s=0)

    assert bootstrap == "10.0.0.12:9092,10.0.0.13:9092,10.0.0.14:9092"
    assert [(r.type, r.status) for r in results] == [
        ("ambari.kafka-hosts", "exists"),
        ("ambari.ip-advertising", "created"),
        ("ambari.kafka-restart", "created"),
    ]
    assert "3 Kafka brokers 10.0.0.12:9092" in results[0].detail
    assert "3 ZooKeeper servers 10.0.0.4:2181" in results[0].detail
    assert any(r.status == "creating" and r.detail == "Start Kafka: COMPLETED 100%" for r in seen)
    assert standin.kafka_state == "STARTED" and not standin.stale

    writes = len(standin.writes())
    results, bootstrap = setup_kafka(ambari, poll_s=0)

    assert bootstrap == "10.0.0.12:9092,10.0.0.13:9092,10.0.0.14:9092"
    assert [(r.type, r.status) for r in results] == [
        ("ambari.kafka-hosts", "exists"),
        ("ambari.ip-advertising", "exists"),
        ("ambari.kafka-restart", "exists"),
    ]
    assert len(standin.writes()) == writes


def test_wrong_password_gives_the_login_message_without_the_password(standin: AmbariStandIn) -> None:
    wrong = "Wr0ng-Secret-Value"
    ambari = client(standin, wrong)

    with pytest.raises(AmbariError) as caught:
        ambari.broker_hosts()
    assert caught.value.status == 401
    assert str(caught.value) == LOGIN_REFUSED
    assert wrong not in repr(ambari) and wrong not in repr(caught.value)

    results, bootstrap = setup_kafka(ambari, poll_s=0)
    assert bootstrap is None
    assert [(r.type, r.status, r.error_code) for r in results] == [("ambari.kafka-hosts", "failed", "HTTP 401")]
    assert "refused the login" in results[0].detail
    assert wrong not in results[0].line


def test_failed_restart_names_the_host_and_a_rerun_retries(standin: AmbariStandIn) -> None:
    ambari = client(standin)
    broken = sorted(standin.brokers)[1]
    standin.fail_request("STARTED", broken)

    results, bootstrap = setup_kafka(ambari, poll_s=0)

    assert bootstrap is None
    assert [(r.type, r.status) for r in results] == [
        ("ambari.kafka-hosts", "exists"),
        ("ambari.ip-advertising", "created"),
        ("ambari.kafka-restart", "failed"),
    ]
    failed = results[-1]
    assert broken in failed.detail and "KAFKA_BROKER failed" in failed.detail and "FAILED" in failed.detail
    assert broken in (failed.advice or "")
    assert standin.maintenance_state == "OFF"  # turned off again although the restart failed

    results, bootstrap = setup_kafka(ambari, poll_s=0)  # the configuration is kept; only the restart runs again

    assert [(r.type, r.status) for r in results] == [
        ("ambari.kafka-hosts", "exists"),
        ("ambari.ip-advertising", "exists"),
        ("ambari.kafka-restart", "created"),
    ]
    assert bootstrap == "10.0.0.12:9092,10.0.0.13:9092,10.0.0.14:9092"


def test_a_restart_that_does_not_finish_in_time_is_an_error() -> None:
    with AmbariStandIn(CLUSTER, PASSWORD, polls=10_000) as slow:
        ambari = client(slow)
        lines: list[str] = []
        with pytest.raises(
            AmbariError, match=r"Stop Kafka did not finish in time: Ambari request \d+ is still IN_PROGRESS"
        ):
            ambari.restart_kafka(lines.append, timeout_s=0.3, poll_s=0)
        assert lines and lines[-1].startswith("Stop Kafka: IN_PROGRESS")
        assert slow.maintenance_state == "OFF"


def test_writes_without_x_requested_by_are_refused_as_ambari_does(standin: AmbariStandIn) -> None:
    import requests

    answer = requests.put(
        f"{standin.base_url}/api/v1/clusters/{CLUSTER}/services/KAFKA",
        json={"Body": {"ServiceInfo": {"maintenance_state": "ON"}}},
        auth=("admin", PASSWORD),
        verify=str(standin.ca_path),
        timeout=10,
    )
    assert answer.status_code == 400
    assert "X-Requested-By" in answer.json()["message"]
    assert standin.maintenance_state == "OFF"


def test_a_wrong_cluster_name_says_so(standin: AmbariStandIn) -> None:
    ambari = Ambari(standin.base_url, "no-such-cluster", "admin", SecretStr(PASSWORD), verify=str(standin.ca_path))

    with pytest.raises(AmbariError) as caught:
        ambari.broker_hosts()

    assert caught.value.status == 404
    assert str(caught.value).startswith(f"the cluster 'no-such-cluster' was not found at {standin.base_url}")


def test_unreachable_gateway_gives_a_clear_message_quickly() -> None:
    port = free_port()  # nothing listens there
    ambari = Ambari(f"https://127.0.0.1:{port}", CLUSTER, "admin", SecretStr(PASSWORD), timeout_s=5)
    started = time.monotonic()

    results, bootstrap = setup_kafka(ambari, poll_s=0)

    assert time.monotonic() - started < 5
    assert bootstrap is None
    [failed] = results
    assert failed.status == "failed"
    assert f"could not reach the cluster's gateway https://127.0.0.1:{port}" in failed.detail
    assert "finished provisioning" in failed.detail
    assert failed.advice == "Wait until the HDInsight cluster's provisioning has finished, then run again."
    assert PASSWORD not in failed.line

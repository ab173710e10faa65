"""Kafka metrics of HDInsight from Ambari's REST API (backend/azure/ambari_metrics.py): the real
``requests`` client over HTTPS against the Ambari stand-in (tests/standins/ambari.py), and a Monitor
fed by it, as the console on a laptop would read a cluster whose brokers it cannot reach."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from pydantic import SecretStr

from backend.aggregates.records import Progress
from backend.azure.ambari import Ambari
from backend.azure.ambari_metrics import BYTES_IN, MESSAGES_IN, AmbariKafkaMetrics
from backend.console import views
from backend.console.monitor import ALL_BYTES, ALL_MESSAGES, Monitor
from backend.settings import Settings
from tests.standins.ambari import SINK_PERIOD_S, AmbariStandIn
from tests.support import free_port

CLUSTER = "tweetstream-kafka-c093d2"
PASSWORD = "Gateway-Pa55word!x7"


@pytest.fixture
def ambari() -> Iterator[AmbariStandIn]:
    with AmbariStandIn(CLUSTER, PASSWORD) as standin:
        yield standin


def _metrics(standin: AmbariStandIn, password: str = PASSWORD, **options) -> AmbariKafkaMetrics:
    return AmbariKafkaMetrics(
        standin.base_url, CLUSTER, "admin", SecretStr(password), verify=str(standin.ca_path), refresh_s=0, **options
    )


def test_the_wizards_ambari_client_gives_its_gateway_and_login(ambari):
    client = Ambari(ambari.base_url, CLUSTER, "admin", SecretStr(PASSWORD), verify=str(ambari.ca_path), timeout_s=30)
    ambari.set_topic_rate("tweets", 12.0, 24_000.0)
    sample = AmbariKafkaMetrics(client, refresh_s=0).sample()
    assert sample.reachable and sample.all_messages_in_per_s == pytest.approx(12.0)


def test_the_clusters_rates_and_each_brokers_state_come_from_one_ambari_request(ambari):
    wn0, wn1, wn2 = sorted(ambari.brokers)
    ambari.set_topic_rate("tweets", 90.0, 180_000.0)  # spread over the three brokers
    ambari.set_topic_rate("tweets-dead-letters", 2.5, 1_000.0, broker=wn1)
    ambari.broker_states[wn2] = "INSTALLED"  # one broker stopped
    metrics = _metrics(ambari)
    before = time.time()

    sample = metrics.sample()

    assert sample.reachable and sample.error is None
    assert sample.all_messages_in_per_s == pytest.approx(92.5)  # messages/s, all topics, all brokers
    assert sample.all_bytes_in_per_s == pytest.approx(181_000.0)  # bytes/s
    # The figure is the Ambari Metrics sink's last report (once a minute), timed by it.
    assert sample.rates_at is not None and before - SINK_PERIOD_S - 1 <= sample.rates_at <= before + 1
    assert sample.brokers == {wn0: "STARTED", wn1: "STARTED", wn2: "INSTALLED"}
    # Ambari's REST metrics have no per-topic figures, and without an offsets source no topics.
    assert sample.messages_in_per_s is None and sample.bytes_in_per_s is None
    assert sample.topics == {}
    assert sample.offsets_note is not None and "lag" in sample.offsets_note
    assert metrics.describe() == f"Ambari metrics of HDInsight cluster {CLUSTER}"
    [call] = ambari.metric_calls()
    assert call.path == "/services/KAFKA/components/KAFKA_BROKER"
    assert f"{MESSAGES_IN}[" in call.query["fields"] and f"{BYTES_IN}[" in call.query["fields"]
    metrics.close()


def test_ambari_refuses_a_per_topic_metric_path_it_does_not_define(ambari):
    # Why AmbariKafkaMetrics asks for all topics only: Ambari's KAFKA metrics.json defines no per-topic path.
    path = "metrics/kafka/server/BrokerTopicMetrics/MessagesInPerSec/topic/tweets/1MinuteRate"
    response = requests.get(
        f"{ambari.base_url}/api/v1/clusters/{CLUSTER}/services/KAFKA/components/KAFKA_BROKER",
        params={"fields": path},
        auth=("admin", PASSWORD),
        verify=str(ambari.ca_path),
        timeout=5,
    )
    assert response.status_code == 400
    assert "not supported" in response.json()["message"]


def test_no_data_in_ambari_metrics_is_an_unknown_rate_not_zero(ambari):
    ambari.set_topic_rate("tweets", 90.0, 180_000.0)
    ambari.metrics_available = False  # the Ambari Metrics collector holds nothing for the window
    sample = _metrics(ambari).sample()
    assert sample.reachable
    assert sample.all_messages_in_per_s is None and sample.all_bytes_in_per_s is None and sample.rates_at is None
    assert set(sample.brokers.values()) == {"STARTED"}


def test_a_wrong_cluster_password_is_a_401_that_names_the_cluster_login(ambari):
    sample = _metrics(ambari, password="not-the-password").sample()
    assert not sample.reachable
    assert sample.error is not None
    assert "HTTP 401" in sample.error and "cluster login (admin)" in sample.error
    assert "not-the-password" not in sample.error


def test_a_wrong_cluster_name_is_a_404_that_says_so(ambari):
    metrics = AmbariKafkaMetrics(
        ambari.base_url, "tweetstream-kafka-typo", "admin", SecretStr(PASSWORD), verify=str(ambari.ca_path)
    )
    sample = metrics.sample()
    assert not sample.reachable
    assert sample.error == (
        f"the cluster 'tweetstream-kafka-typo' was not found at {ambari.base_url} (HTTP 404): check the cluster name"
    )


def test_a_gateway_that_never_answers_gives_a_reason_within_the_timeout(silent_listener):
    # It accepts TCP connections and never speaks TLS.
    metrics = AmbariKafkaMetrics(f"https://{silent_listener}", CLUSTER, "admin", SecretStr(PASSWORD), timeout_s=1.0)
    began = time.monotonic()
    sample = metrics.sample()
    elapsed = time.monotonic() - began
    assert elapsed < 3.0, f"a sample waited {elapsed:.1f} s on a silent gateway"
    assert not sample.reachable
    assert sample.error is not None and sample.error.startswith(
        f"the cluster's gateway https://{silent_listener} accepted the connection but did not answer within 1 s"
    )


def test_an_ambari_that_takes_the_request_and_never_answers_is_bounded_too(ambari):
    ambari.hang_s = 10.0
    began = time.monotonic()
    sample = _metrics(ambari, timeout_s=1.0).sample()
    elapsed = time.monotonic() - began
    assert elapsed < 3.0, f"a sample waited {elapsed:.1f} s on a stuck Ambari"
    assert not sample.reachable
    assert sample.error == (
        f"the cluster's gateway {ambari.base_url} accepted the connection but did not answer within 1 s "
        "(ReadTimeout): Ambari may be restarting or overloaded, or this is not the cluster's gateway; the next "
        "sample tries again"
    )
    ambari.hang_s = 0.0


def test_a_closed_gateway_port_gives_a_reason_at_once():
    gateway = f"https://127.0.0.1:{free_port()}"
    began = time.monotonic()
    sample = AmbariKafkaMetrics(gateway, CLUSTER, "admin", SecretStr(PASSWORD), timeout_s=1.0).sample()
    assert time.monotonic() - began < 2.0
    assert not sample.reachable and sample.error is not None and "could not reach" in sample.error


def test_a_monitor_fed_by_ambari_shows_topic_rates_and_lag_from_the_offsets_source(ambari, tmp_path):
    ambari.set_topic_rate("tweets", 40.0, 80_000.0)
    # What the Spark job's Delta table holds: (when it sampled, topic -> partition -> (first, next offset)).
    table: dict[str, object] = {"at": 1000.0, "offsets": {"tweets": {0: (0, 100), 1: (0, 50)}}}

    def offsets() -> tuple[float | None, dict[str, dict[int, tuple[int, int]]]]:
        return table["at"], table["offsets"]  # type: ignore[return-value]

    progress = Progress("q", 7, 120, 40.0, 45.0, 900, {}, {"0": 300, "1": 200})
    settings = Settings(state_dir=tmp_path, bootstrap_servers="10.0.0.12:9092")
    monitor = Monitor(settings, metrics=_metrics(ambari, offsets=offsets), progress=lambda: progress)

    monitor.refresh()
    table.update(at=1010.0, offsets={"tweets": {0: (0, 400), 1: (0, 250)}})  # 500 more records in 10 s
    snapshot = monitor.refresh()

    assert snapshot.source == f"Ambari metrics of HDInsight cluster {CLUSTER}"
    assert snapshot.kafka.reachable and snapshot.kafka.offsets_at == 1010.0
    assert [(p.at, p.per_second) for p in monitor.topic_rates()["tweets"]] == [(1010.0, 50.0)]  # messages/s
    assert [p.per_second for p in monitor.partition_rates("tweets")[1]] == [20.0]
    assert [p.per_second for p in monitor.all_topics_rates()[ALL_MESSAGES]] == [pytest.approx(40.0)]
    assert [p.per_second for p in monitor.all_topics_rates()[ALL_BYTES]] == [pytest.approx(80_000.0)]
    # What the Consumer page's lag table shows: end offset minus the job's processed offset.
    frame = views.lag_frame(snapshot.kafka, "tweets", snapshot.latest_progress)
    assert frame.to_dict("records") == [
        {"partition": 0, "end offset": 400, "processed up to": 300, "lag (records)": 100},
        {"partition": 1, "end offset": 250, "processed up to": 200, "lag (records)": 50},
    ]
    monitor.close()


def test_an_offsets_source_that_fails_leaves_the_rates_and_says_lag_is_unknown(ambari, tmp_path):
    ambari.set_topic_rate("tweets", 40.0, 80_000.0)

    def offsets() -> tuple[float | None, dict[str, dict[int, tuple[int, int]]]]:
        raise RuntimeError("the SQL warehouse is stopped")

    sample = _metrics(ambari, offsets=offsets).sample()
    assert sample.reachable and sample.all_messages_in_per_s == pytest.approx(40.0)
    assert sample.topics == {}
    assert sample.offsets_note == (
        "end offsets could not be read (RuntimeError: the SQL warehouse is stopped): lag unknown"
    )

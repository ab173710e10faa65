"""Kafka metrics without services: Ambari's metrics JSON as the Ambari API documents it, and the
Monitor's rates from whatever a KafkaMetrics source says (offsets, or the source's own rates)."""

from __future__ import annotations

import time
from pathlib import Path

from backend.azure.ambari_metrics import (
    BROKER_STATE,
    BYTES_IN,
    MESSAGES_IN,
    broker_states,
    component_fields,
    metric_value,
    offsets_topics,
)
from backend.console.monitor import ALL_BYTES, ALL_MESSAGES, Monitor, RateHistory
from backend.kafka.metrics import KafkaSample, PartitionOffsets
from backend.settings import Settings

# GET .../services/KAFKA/components/KAFKA_BROKER?fields=<both rates>[start,end,15],host_components/HostRoles/state
# in the shape of Ambari's answers (index.md "Partial Response", "Temporal Metrics").
TEMPORAL = {
    "href": "http://10.0.0.21:8080/api/v1/clusters/c1/services/KAFKA/components/KAFKA_BROKER?fields=...",
    "ServiceComponentInfo": {"cluster_name": "c1", "component_name": "KAFKA_BROKER", "service_name": "KAFKA"},
    "metrics": {
        "kafka": {
            "server": {
                "BrokerTopicMetrics": {
                    "AllTopicsMessagesInPerSec": {"1MinuteRate": [[118.5, 1764520800], [121.25, 1764520860]]},
                    "AllTopicsBytesInPerSec": {"1MinuteRate": [[240000.0, 1764520800], [None, 1764520860]]},
                }
            }
        }
    },
    "host_components": [
        {"HostRoles": {"component_name": "KAFKA_BROKER", "host_name": "wn1", "state": "INSTALLED"}},
        {"HostRoles": {"component_name": "KAFKA_BROKER", "host_name": "wn0", "state": "STARTED"}},
    ],
}  # fmt: skip


def test_the_newest_non_null_point_of_a_temporal_metric_is_the_figure_with_its_time():
    assert metric_value(TEMPORAL, MESSAGES_IN) == (121.25, 1764520860.0)
    # Ambari pads a minute without a report with null: the one before counts.
    assert metric_value(TEMPORAL, BYTES_IN) == (240000.0, 1764520800.0)


def test_a_point_in_time_metric_is_a_number_without_a_time():
    answer = {
        "metrics": {"kafka": {"server": {"BrokerTopicMetrics": {"AllTopicsMessagesInPerSec": {"1MinuteRate": 7}}}}}
    }
    assert metric_value(answer, MESSAGES_IN) == (7.0, None)


def test_metrics_as_a_list_of_objects_like_the_documents_temporal_example_are_read_too():
    answer = {
        "metrics": [
            {"kafka": {"server": {"BrokerTopicMetrics": {"AllTopicsBytesInPerSec": {"1MinuteRate": [[5, 10]]}}}}}
        ]
    }
    assert metric_value(answer, BYTES_IN) == (5.0, 10.0)


def test_a_missing_metric_is_unknown_not_zero():
    no_metrics = {key: value for key, value in TEMPORAL.items() if key != "metrics"}  # Ambari Metrics has no data
    assert metric_value(no_metrics, MESSAGES_IN) == (None, None)
    only_messages = {"metrics": {"kafka": {"server": {"BrokerTopicMetrics": {"AllTopicsMessagesInPerSec": {}}}}}}
    assert metric_value(only_messages, BYTES_IN) == (None, None)
    all_null = {
        "metrics": {
            "kafka": {"server": {"BrokerTopicMetrics": {"AllTopicsBytesInPerSec": {"1MinuteRate": [[None, 1]]}}}}
        }
    }
    assert metric_value(all_null, BYTES_IN) == (None, None)
    assert metric_value({"metrics": {"kafka": "n/a"}}, MESSAGES_IN) == (None, None)


def test_each_brokers_state_comes_from_its_host_component():
    assert broker_states(TEMPORAL) == {"wn0": "STARTED", "wn1": "INSTALLED"}
    assert broker_states({"host_components": [{"HostRoles": {"host_name": "wn2"}}]}) == {"wn2": "UNKNOWN"}
    assert broker_states({}) == {}


def test_one_request_asks_for_both_rates_over_five_minutes_and_the_brokers_states():
    fields = component_fields(1764520900.7)
    assert fields == (f"{MESSAGES_IN}[1764520600,1764520900,15],{BYTES_IN}[1764520600,1764520900,15],{BROKER_STATE}")


def test_offsets_from_the_jobs_table_become_partition_offsets_without_internal_topics():
    found = {"tweets": {1: (5, 80), 0: (0, 120)}, "__consumer_offsets": {0: (0, 3)}}
    assert offsets_topics(found) == {"tweets": {1: PartitionOffsets(5, 80), 0: PartitionOffsets(0, 120)}}


def test_measured_rates_are_kept_as_they_are_once_per_measurement_within_the_window():
    history = RateHistory(window_s=600)
    history.add_rate(60.0, 10.0)
    history.add_rate(60.0, 11.0)  # the same measurement read again
    history.add_rate(120.0, -1.0)  # never a negative rate
    assert [(p.at, p.per_second) for p in history.points()] == [(60.0, 10.0), (120.0, 0.0)]
    history.add_rate(700.0, 4.0)
    assert [(p.at, p.per_second) for p in history.points()] == [(120.0, 0.0), (700.0, 4.0)]


class ScriptedMetrics:
    """A KafkaMetrics that answers the sample a test points at (the Monitor's input, not a service).

    The Monitor's own thread may sample too: it gets the same sample, which adds nothing new."""

    def __init__(self, samples: list[KafkaSample]) -> None:
        self.samples = samples
        self.index = 0
        self.closed = False

    def describe(self) -> str:
        return "Ambari metrics of HDInsight cluster c1"

    def sample(self) -> KafkaSample:
        return self.samples[self.index]

    def close(self) -> None:
        self.closed = True


def _monitor(tmp_path: Path, samples: list[KafkaSample]) -> tuple[Monitor, ScriptedMetrics]:
    settings = Settings(state_dir=tmp_path, bootstrap_servers="10.0.0.12:9092")
    source = ScriptedMetrics(samples)
    return Monitor(settings, metrics=source, progress=lambda: None), source


def test_topic_rates_come_from_offset_deltas_timed_by_when_the_offsets_were_sampled(tmp_path):
    samples = [
        KafkaSample(True, 1000.0, {"tweets": {0: PartitionOffsets(0, 100)}}, offsets_at=990.0),
        KafkaSample(True, 1001.0, {"tweets": {0: PartitionOffsets(0, 100)}}, offsets_at=990.0),  # same offsets
        KafkaSample(True, 1010.0, {"tweets": {0: PartitionOffsets(0, 300)}}, offsets_at=1000.0),
    ]
    monitor, source = _monitor(tmp_path, samples)
    for index in range(len(samples)):
        source.index = index
        monitor.refresh()
    # 200 records in the 10 s between the job's two samples: 20/s, not a 0/s then 200/s.
    assert [(p.at, p.per_second) for p in monitor.topic_rates()["tweets"]] == [(1000.0, 20.0)]
    assert [(p.at, p.per_second) for p in monitor.partition_rates("tweets")[0]] == [(1000.0, 20.0)]
    assert monitor.snapshot().source == "Ambari metrics of HDInsight cluster c1"
    monitor.close()
    assert monitor.closed


def test_without_offsets_a_topics_rate_is_the_sources_own_and_all_topics_figures_are_kept(tmp_path):
    samples = [
        KafkaSample(
            True, 1000.0, messages_in_per_s={"tweets": 12.5}, all_messages_in_per_s=12.5, all_bytes_in_per_s=2e4,
            rates_at=960.0, brokers={"wn0": "STARTED"}, offsets_note="end offsets unknown",
        ),
        KafkaSample(
            True, 1001.0, messages_in_per_s={"tweets": 12.5}, all_messages_in_per_s=12.5, all_bytes_in_per_s=2e4,
            rates_at=960.0,
        ),  # the same minute's figure read again
        KafkaSample(
            True, 1061.0, messages_in_per_s={"tweets": 30.0}, all_messages_in_per_s=31.0, all_bytes_in_per_s=5e4,
            rates_at=1020.0,
        ),
    ]  # fmt: skip
    monitor, source = _monitor(tmp_path, samples)
    for index in range(len(samples)):
        source.index = index
        monitor.refresh()
    assert [(p.at, p.per_second) for p in monitor.topic_rates()["tweets"]] == [(960.0, 12.5), (1020.0, 30.0)]
    totals = monitor.all_topics_rates()
    assert [(p.at, p.per_second) for p in totals[ALL_MESSAGES]] == [(960.0, 12.5), (1020.0, 31.0)]
    assert [p.per_second for p in totals[ALL_BYTES]] == [2e4, 5e4]


def test_a_failed_sample_adds_no_rate_and_says_why(tmp_path):
    monitor, _ = _monitor(tmp_path, [KafkaSample(False, 1000.0, error="the gateway refused the login (HTTP 401)")])
    snapshot = monitor.refresh()
    assert snapshot.kafka.error == "the gateway refused the login (HTTP 401)"
    assert monitor.topic_rates() == {}
    assert all(points == [] for points in monitor.all_topics_rates().values())


def test_a_source_that_raises_gives_an_unreachable_sample_not_an_exception(tmp_path):
    class Broken(ScriptedMetrics):
        def sample(self) -> KafkaSample:
            raise RuntimeError("boom")

    settings = Settings(state_dir=tmp_path, bootstrap_servers="10.0.0.12:9092")
    monitor = Monitor(settings, metrics=Broken([]), progress=lambda: None)
    snapshot = monitor.refresh()
    assert not snapshot.kafka.reachable
    assert snapshot.kafka.error == "Ambari metrics of HDInsight cluster c1: the sample failed (RuntimeError)"


def test_with_another_source_the_local_broker_does_not_hide_the_sources_reason(tmp_path):
    # The local profile (no bootstrap servers) with Ambari's metrics: no local broker runs here.
    settings = Settings(state_dir=tmp_path)
    error = "the cluster's gateway refused the login (HTTP 401): check the cluster login (admin)"
    monitor = Monitor(
        settings, metrics=ScriptedMetrics([KafkaSample(False, 1000.0, error=error)]), progress=lambda: None
    )
    snapshot = monitor.refresh()
    assert snapshot.local_broker is None
    assert snapshot.kafka.error == error


def test_a_monitor_of_billed_reads_reads_nothing_at_start_nor_while_no_page_looks(tmp_path: Path) -> None:
    # On Azure the progress is a SQL warehouse statement: none when the monitor is made (the page would wait
    # for a cold warehouse), and none once no page has asked for a snapshot for idle_after_s (so it can stop).
    settings = Settings(state_dir=tmp_path, bootstrap_servers="10.0.0.12:9092")
    reads: list[float] = []

    def progress() -> None:
        reads.append(time.monotonic())
        raise RuntimeError("DEADLINE_EXCEEDED: the warehouse is starting")

    monitor = Monitor(
        settings,
        metrics=ScriptedMetrics([KafkaSample(reachable=True, sampled_at=1.0)]),
        progress=progress,
        interval_s=0.05,
        idle_after_s=0.5,
    )
    try:
        assert reads == []
        monitor.snapshot()  # a page looks: the sampler starts
        deadline = time.monotonic() + 5
        while not reads and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reads, "no read while a page looked"
        # The failed read is kept for the banner, not raised into the page.
        assert monitor.snapshot().progress_error == "DEADLINE_EXCEEDED: the warehouse is starting"
        time.sleep(0.5 + 0.3)  # no page looks any more
        idle_since = len(reads)
        time.sleep(0.5)
        assert len(reads) == idle_since, f"{len(reads) - idle_since} reads while no page looked"
        assert monitor.idle()
    finally:
        monitor.close()

import base64
import socket

import pytest

from backend.kafka import local_broker
from backend.kafka.local_broker import BrokerError, LocalBroker
from backend.runtime import processes
from tests.support import free_port


def properties(broker: LocalBroker) -> dict[str, str]:
    lines = local_broker.render_server_properties(broker).splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_one_kraft_node_on_loopback_with_replication_one(tmp_path):
    broker = LocalBroker(state_dir=tmp_path, port=19092, controller_port=19093)
    config = properties(broker)
    assert config["process.roles"] == "broker,controller"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert config["log.dirs"] == str(tmp_path / "kafka" / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert config[key] == "1", key


def test_files_live_under_the_state_directory(tmp_path):
    broker = LocalBroker(state_dir=tmp_path)
    for path in (broker.data_dir, broker.pid_file, broker.log_file, broker.properties_file):
        assert path.is_relative_to(tmp_path)


def test_command_line_runs_the_broker_class_and_carries_no_environment_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("TWEETSTREAM_KAFKA_SASL_PASSWORD", "canary-password")
    monkeypatch.setenv("X_BEARER_TOKEN", "canary-token")
    broker = LocalBroker(state_dir=tmp_path, heap="512m")
    command = local_broker.broker_command(broker, "/usr/bin/java", "/jars/*")
    assert command[0] == "/usr/bin/java"
    assert "-Xmx512m" in command
    assert command[-2:] == ["kafka.Kafka", str(broker.properties_file)]
    assert not any("canary" in part for part in command)
    env = local_broker._broker_env()
    assert "X_BEARER_TOKEN" not in env and "TWEETSTREAM_KAFKA_SASL_PASSWORD" not in env


def test_cluster_ids_are_kafka_uuids():
    # 2 000 draws: with a leading "-" allowed, one in 64 would start with it (P(none) < 1e-13).
    ids = {local_broker.new_cluster_id() for _ in range(2000)}
    assert not [cluster_id for cluster_id in ids if cluster_id.startswith("-")]
    assert len(ids) == 2000
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_a_taken_port_is_refused_naming_the_port(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        broker = LocalBroker(state_dir=tmp_path, port=taken, controller_port=free_port())
        assert local_broker.port_in_use("127.0.0.1", taken)
        with pytest.raises(BrokerError, match=rf"port {taken} on 127.0.0.1 is already in use .*TWEETSTREAM_KAFKA_PORT"):
            local_broker.check_ports_free(broker)
        controller_taken = LocalBroker(state_dir=tmp_path, port=free_port(), controller_port=taken)
        with pytest.raises(BrokerError, match="TWEETSTREAM_KAFKA_CONTROLLER_PORT"):
            local_broker.check_ports_free(controller_taken)


def test_status_without_a_live_broker_is_down(tmp_path):
    broker = LocalBroker(state_dir=tmp_path, port=19092)
    assert local_broker.status(broker) == local_broker.BrokerStatus(
        running=False, bootstrap="127.0.0.1:19092", pid=None
    )
    # A stale pid file (the process is gone, or its pid went to someone else) is not a running broker.
    processes.write_pid_file(broker.pid_file, processes.ProcessRecord(pid=1, create_time=0.0))
    assert not local_broker.status(broker).running
    assert local_broker.status(broker).to_json() == '{"running": false, "bootstrap": "127.0.0.1:19092", "pid": null}'
    assert local_broker.stop(broker) == "not running"
    assert not broker.pid_file.exists()

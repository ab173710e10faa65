"""Connection profiles tested against a real broker (PLAINTEXT, as the local one is)."""

import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from pydantic import SecretStr

from backend.kafka import topics
from backend.kafka.browser import Latest, read_messages
from backend.kafka.connection import ConnectionProfile, client_config_for, test_connection
from backend.kafka.topics import TopicSpec
from tests.support import free_port

PASSWORD = "pw-canary-5d1a"


def test_the_local_broker_answers(kafka_broker, admin, topic_name):
    topics.create_topic(admin, TopicSpec(topic_name, partitions=1))
    for kind in ("local", "cluster"):
        result = test_connection(ConnectionProfile(kind=kind, bootstrap_servers=kafka_broker.bootstrap), timeout_s=10)
        assert result.ok, result.message
        assert result.brokers == 1
        assert result.topics >= 1
        assert result.message.startswith(f"connected to {kafka_broker.bootstrap}: 1 broker(s)")
        assert result.elapsed_s < 5


def test_a_local_profile_without_an_address_is_the_settings_broker(kafka_broker, monkeypatch):
    monkeypatch.setenv("TWEETSTREAM_KAFKA_HOST", kafka_broker.host)
    monkeypatch.setenv("TWEETSTREAM_KAFKA_PORT", str(kafka_broker.port))
    result = test_connection(ConnectionProfile(kind="local"), timeout_s=10)
    assert result.ok and result.message.startswith(f"connected to {kafka_broker.bootstrap}: 1 broker(s)")


def test_a_profile_config_reads_messages(kafka_broker, admin, topic_name):
    topics.create_topic(admin, TopicSpec(topic_name, partitions=1))
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    producer.produce(topic_name, key=b"1", value=b'{"data": {"id": "1"}}')
    assert producer.flush(15) == 0
    profile = ConnectionProfile(kind="local", bootstrap_servers=kafka_broker.bootstrap)
    result = read_messages(client_config_for(profile), topic_name, None, Latest(5), limit=5)
    assert [m.key for m in result.messages] == ["1"]


def test_a_closed_port_is_reported_quickly():
    bootstrap = f"127.0.0.1:{free_port()}"
    began = time.monotonic()
    result = test_connection(ConnectionProfile(bootstrap_servers=bootstrap), timeout_s=5)
    assert time.monotonic() - began < 5 + 2
    assert not result.ok and (result.brokers, result.topics) == (0, 0)
    assert result.message == (
        f"cannot reach Kafka at {bootstrap}: connection refused (is the broker running? Is the port right?)"
    )


def test_a_silent_endpoint_times_out_on_time(silent_listener):
    began = time.monotonic()
    result = test_connection(ConnectionProfile(bootstrap_servers=silent_listener), timeout_s=3)
    elapsed = time.monotonic() - began
    assert 3 <= elapsed < 3 + 2
    assert not result.ok
    assert result.message.startswith(f"cannot reach Kafka at {silent_listener}: no answer within 3 s")


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_sasl_against_a_plaintext_listener_says_so_without_the_password(kafka_broker, mechanism):
    profile = ConnectionProfile(
        bootstrap_servers=kafka_broker.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username="console",
        sasl_password=SecretStr(PASSWORD),
    )
    began = time.monotonic()
    result = test_connection(profile, timeout_s=10)
    assert time.monotonic() - began < 10 + 2
    assert not result.ok
    assert result.message.startswith(
        f"authentication failed at {kafka_broker.bootstrap}: the listener offers no SASL mechanism: "
        "is it a PLAINTEXT listener? Check the security protocol"
    )
    assert PASSWORD not in result.message


def test_ssl_against_a_plaintext_listener_says_so(kafka_broker):
    profile = ConnectionProfile(bootstrap_servers=kafka_broker.bootstrap, security_protocol="SSL")
    result = test_connection(profile, timeout_s=10)
    assert not result.ok
    assert result.message.startswith(f"SSL handshake with {kafka_broker.bootstrap} failed")
    assert result.elapsed_s < 10


def test_a_missing_ca_file_is_named(kafka_broker, tmp_path: Path):
    profile = ConnectionProfile(
        bootstrap_servers=kafka_broker.bootstrap, security_protocol="SSL", ssl_ca_location=tmp_path / "ca.pem"
    )
    result = test_connection(profile)
    assert not result.ok and result.message == f"the CA certificate file {tmp_path / 'ca.pem'} does not exist"

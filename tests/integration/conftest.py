"""A real Kafka broker (and a real Spark session) shared by the integration tests.

The broker runs from the jars `make setup` resolved, on free ports, with its state in a
temporary folder; it is stopped when the session ends, whatever the tests did.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from backend.kafka import local_broker
from backend.kafka.local_broker import LocalBroker
from tests.support import free_port, unique_name


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = LocalBroker(
        state_dir=tmp_path_factory.mktemp("state"),
        port=free_port(),
        controller_port=free_port(),
        heap="512m",
    )
    local_broker.start(broker, timeout=120)
    try:
        yield broker
    finally:
        local_broker.stop(broker)


@pytest.fixture(scope="session")
def admin(kafka_broker: LocalBroker) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_broker.bootstrap})


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    return unique_name(request.node.name.replace("[", "-").replace("]", "")[:40])


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A port that accepts TCP connections and never answers: a hung broker or a wrong service."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture(scope="session")
def spark():
    from backend.runtime.spark import local_spark_session

    # With Delta Lake: a running JVM cannot add its jars, and the Delta tests share this session.
    session = local_spark_session("tweetstream-tests", master="local[2]", delta=True)
    try:
        yield session
    finally:
        session.stop()

"""The one-off topic job (python -m jobs.create_topic) against the session's real broker, in real Spark.

Spark starts twice in this file at most: once inside the CLI run that creates the topic (the
job starts and stops its own session, as it does on a machine without one), and once for the
session fixture the in-process runs share (as on Databricks, where a session exists already).
The topic is checked with confluent-kafka's admin client, not with the job's own client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.kafka import topics
from backend.kafka.topics import TopicNameError, validate_topic_name
from backend.options.create_topic import CREATE_TOPIC
from backend.settings import PROJECT_ROOT
from jobs import create_topic
from tests.support import free_port, unique_name


def request(servers: str, topic: str, partitions: int, replication: int, *extra: str) -> list[str]:
    return [
        *("--bootstrap-servers", servers, "--topic", topic),
        *("--partitions", str(partitions), "--replication", str(replication)),
        *extra,
    ]


def run_cli(*args: str, timeout: float = 150, first_on_path: Path | None = None) -> tuple[int, dict, str]:
    path = [str(first_on_path)] if first_on_path is not None else []
    done = subprocess.run(
        [sys.executable, "-m", "jobs.create_topic", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(PROJECT_ROOT)])},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    code = create_topic.main(list(args))
    captured = capsys.readouterr()
    return code, json.loads(captured.out.strip().splitlines()[-1]), captured.err


@pytest.fixture(scope="module")
def created_topic(kafka_broker) -> tuple[str, int, dict]:
    """A topic the CLI created with 3 partitions, and what the CLI said."""
    name = unique_name("create-topic-job")
    code, outcome, stderr = run_cli(*request(kafka_broker.bootstrap, name, 3, 1, "--retention-ms", "3600000"))
    assert code == 0, stderr
    return name, code, outcome


@pytest.mark.timeout(180)
def test_the_cli_creates_the_topic_with_its_partitions_and_retention(admin, created_topic) -> None:
    name, _code, outcome = created_topic
    assert outcome == {"outcome": "created", "topic": name, "partitions": 3, "replication": 1}
    info = topics.describe_topic(admin, name)
    assert [p.partition for p in info.partitions] == [0, 1, 2]
    assert all(p.leader is not None for p in info.partitions)
    assert info.retention_ms == 3_600_000


@pytest.mark.timeout(180)
def test_a_second_run_says_exists_and_fewer_partitions_asked_is_fine(spark, kafka_broker, created_topic, capsys):
    name, _code, _outcome = created_topic
    servers = kafka_broker.bootstrap
    code, outcome, _ = run_in_process(capsys, *request(servers, name, 3, 1))
    assert (code, outcome) == (0, {"outcome": "exists", "topic": name, "partitions": 3, "replication": 1})
    # Asked partitions are a minimum: 3 serve a request for 2, and Kafka cannot take any away.
    code, outcome, _ = run_in_process(capsys, *request(servers, name, 2, 1))
    assert (code, outcome) == (0, {"outcome": "exists", "topic": name, "partitions": 3, "replication": 1})


@pytest.mark.timeout(180)
def test_more_partitions_than_the_topic_has_is_refused(spark, kafka_broker, created_topic, capsys):
    name, _code, _outcome = created_topic
    code, outcome, stderr = run_in_process(capsys, *request(kafka_broker.bootstrap, name, 6, 1))
    assert code == 2
    assert (outcome["outcome"], outcome["kind"]) == ("error", "refused")
    assert f"topic '{name}' exists with 3 partition(s), fewer than the 6 asked" in outcome["error"]
    assert "error: " in stderr


@pytest.mark.timeout(180)
def test_replication_above_the_broker_count_is_refused_and_nothing_created(spark, kafka_broker, admin, capsys):
    name = unique_name("create-topic-r3")
    code, outcome, _ = run_in_process(capsys, *request(kafka_broker.bootstrap, name, 3, 3))
    assert code == 2
    assert outcome == {
        "outcome": "error",
        "kind": "refused",
        "topic": name,
        "error": f"replication factor 3 is more than the 1 broker(s) of the cluster at {kafka_broker.bootstrap}: "
        "ask for at most 1, or add brokers",
    }
    assert name not in topics.list_topics(admin)


@pytest.mark.timeout(180)
def test_an_unreachable_cluster_fails_with_exit_1_within_the_timeout(spark, capsys):
    servers = f"127.0.0.1:{free_port()}"
    code, outcome, _ = run_in_process(capsys, *request(servers, "t", 1, 1, "--timeout", "3"))
    assert code == 1
    assert outcome["kind"] == "unreached"
    assert outcome["error"].startswith(f"no answer from the brokers at {servers} within 3 s")


def test_a_session_without_the_jvm_is_a_clear_failure() -> None:
    class ConnectSession:  # what Spark Connect and Databricks' standard access mode answer
        @property
        def sparkContext(self):  # pyspark's name
            raise NotImplementedError("[JVM_ATTRIBUTE_NOT_SUPPORTED] sparkContext is not supported")

    with pytest.raises(create_topic.Failed, match="run the job on a cluster in dedicated access mode"):
        create_topic.jvm_of(ConnectSession())


# -- before Spark: arguments -------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--topic", "bad name", "--partitions", "1"], "topic name 'bad name' contains ' '"),
        (["--topic", "t", "--partitions", "0"], "--partitions must be at least 1 (got 0)"),
        (["--topic", "t", "--partitions", "1", "--retention-ms", "0"], "--retention-ms is a positive number"),
        (["--topic", "t", "--partitions", "1", "--replication", "0"], "--replication must be between 1 and 32767"),
        (["--topic", "t", "--partitions", "1", "--bootstrap-servers", "a:9092,b"], "'b' is not HOST:PORT"),
        (["--topic", "t", "--partitions", "1", "--bootstrap-servers", "a:99999"], "'a:99999' is not HOST:PORT"),
    ],
)
def test_bad_arguments_exit_2_before_spark_starts(args: list[str], message: str, tmp_path: Path) -> None:
    # A pyspark that cannot be imported: the refusal must come before any Spark is needed.
    (tmp_path / "pyspark").mkdir()
    (tmp_path / "pyspark" / "__init__.py").write_text("raise ImportError('pyspark imported before the check')\n")
    code, outcome, stderr = run_cli(
        "--bootstrap-servers", "127.0.0.1:9", "--replication", "1", *args, timeout=50, first_on_path=tmp_path
    )
    assert code == 2, stderr
    assert outcome["outcome"] == "error"
    assert message in outcome["error"]
    assert f"error: {outcome['error']}" in stderr


@pytest.mark.parametrize("name", ["tweets", "a.b_c-9", "", ".", "..", "x" * 249, "x" * 250, "tweets!", "t/x", "é"])
def test_the_name_check_agrees_with_backend_topics(name: str) -> None:
    try:
        validate_topic_name(name)
        expected = None
    except TopicNameError as error:
        expected = str(error)
    values = {**CREATE_TOPIC.defaults(), "bootstrap_servers": "h:9092", "partitions": 1, "replication": 1}
    try:
        create_topic.validate({**values, "topic": name})
        got = None
    except create_topic.Refused as error:
        got = str(error)
    assert got == expected

"""Create the pipeline's Kafka topic from inside the cluster's network: a one-off job the Azure wizard runs.

``python -m jobs.create_topic --bootstrap-servers HOST:9092,... --topic tweets --partitions 8 --replication 3``
prints one JSON line (``outcome``: created, exists or error) and exits 0 created or exists, 1 the cluster failed or
was not reached, 2 a request that cannot be met. Why it uses Kafka's Java AdminClient through py4j and neither
confluent-kafka nor backend.kafka.topics: docs/azure-design.md, "The topic".
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backend.options.contract import OptionsError
from backend.options.create_topic import CREATE_TOPIC, servers

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2

# Where the Java classes live: the connector library's kafka-clients, else the Databricks
# runtime's own shaded copy.
_KAFKA_PACKAGES = ("org.apache.kafka", "kafkashaded.org.apache.kafka")


class Refused(Exception):
    """The request cannot be met as asked (exit 2); the message says why and what to do."""


class Failed(Exception):
    """The cluster failed or could not be reached (exit 1)."""


class Unreached(Failed):
    """No broker answered in time (exit 1): an address or network problem, not Kafka's."""


@dataclass(frozen=True)
class TopicRequest:
    bootstrap_servers: str
    topic: str
    partitions: int
    replication: int
    retention_ms: int | None
    timeout_s: float


def validate(values: Mapping[str, Any]) -> TopicRequest:
    """The request from the parsed options (backend.options.create_topic), checked before any Spark
    starts; raises Refused."""
    try:
        CREATE_TOPIC.check(values)
    except OptionsError as error:
        raise Refused(str(error)) from None
    return TopicRequest(
        bootstrap_servers=",".join(servers(values["bootstrap_servers"])),
        topic=values["topic"],
        partitions=values["partitions"],
        replication=values["replication"],
        retention_ms=values["retention_ms"],
        timeout_s=values["timeout"],
    )


class JavaAdmin:
    """Kafka's Java AdminClient, reached through the SparkSession's py4j gateway."""

    def __init__(self, jvm: Any, bootstrap_servers: str, timeout_s: float) -> None:
        from py4j.java_gateway import JavaClass

        self._jvm = jvm
        self._timeout_ms = int(timeout_s * 1000)
        for package in _KAFKA_PACKAGES:
            admin_class = functools.reduce(getattr, f"{package}.clients.admin.AdminClient".split("."), jvm)
            if isinstance(admin_class, JavaClass):
                self._package = package
                break
        else:
            raise Failed("Kafka's Java client is not on the cluster's classpath: install the spark-sql-kafka library")
        properties = jvm.java.util.Properties()
        properties.setProperty("bootstrap.servers", bootstrap_servers)
        properties.setProperty("client.id", "tweetstream-create-topic")
        properties.setProperty("request.timeout.ms", str(self._timeout_ms))
        properties.setProperty("default.api.timeout.ms", str(self._timeout_ms))
        self._admin = admin_class.create(properties)

    def _class(self, name: str) -> Any:
        return functools.reduce(getattr, f"{self._package}.{name}".split("."), self._jvm)

    def _get(self, future: Any) -> Any:
        return future.get(self._timeout_ms, self._jvm.java.util.concurrent.TimeUnit.MILLISECONDS)

    def broker_count(self) -> int:
        return int(self._get(self._admin.describeCluster().nodes()).size())

    def topic_names(self) -> set[str]:
        return set(self._get(self._admin.listTopics().names()))

    def describe(self, topic: str) -> tuple[int, int, bool]:
        """Partitions, replication factor, and whether every partition has a leader."""
        names = self._jvm.java.util.Collections.singletonList(topic)
        description = self._get(self._admin.describeTopics(names).allTopicNames()).get(topic)
        partitions = list(description.partitions())
        replication = int(partitions[0].replicas().size()) if partitions else 0
        led = all(partition.leader() is not None and not partition.leader().isEmpty() for partition in partitions)
        return len(partitions), replication, led

    def create(self, request: TopicRequest) -> None:
        new_topic = self._class("clients.admin.NewTopic")(request.topic, request.partitions, request.replication)
        if request.retention_ms is not None:
            configs = self._jvm.java.util.HashMap()
            configs.put("retention.ms", str(request.retention_ms))
            new_topic.configs(configs)
        topics = self._jvm.java.util.Collections.singletonList(new_topic)
        self._get(self._admin.createTopics(topics).all())

    def close(self) -> None:
        self._admin.close(self._jvm.java.time.Duration.ofSeconds(5))


def _java_cause(error: Exception) -> tuple[str, str]:
    """The simple class name and message of the Java exception behind a py4j error (the cause
    of an ExecutionException, which is how a KafkaFuture reports a failure)."""
    throwable = getattr(error, "java_exception", None)
    if throwable is None:
        return type(error).__name__, str(error)
    cause = throwable.getCause() if throwable.getClass().getSimpleName() == "ExecutionException" else None
    throwable = cause if cause is not None else throwable
    return str(throwable.getClass().getSimpleName()), str(throwable.getMessage())


def ensure_topic(admin: JavaAdmin, request: TopicRequest) -> dict[str, Any]:
    """Create the topic, or report the one that exists; raises Refused or Failed."""
    from py4j.protocol import Py4JJavaError

    where = request.bootstrap_servers
    try:
        if request.topic not in admin.topic_names():
            brokers = admin.broker_count()
            if request.replication > brokers:
                raise Refused(
                    f"replication factor {request.replication} is more than the {brokers} broker(s) of the "
                    f"cluster at {where}: ask for at most {brokers}, or add brokers"
                )
            try:
                admin.create(request)
                outcome = "created"
            except Py4JJavaError as error:
                if _java_cause(error)[0] != "TopicExistsException":  # else another run created it meanwhile
                    raise
                outcome = "exists"
        else:
            outcome = "exists"
        # A new topic's partitions get their leaders a moment after the controller says created.
        deadline = time.monotonic() + request.timeout_s
        partitions, replication, led = admin.describe(request.topic)
        while not led and time.monotonic() < deadline:
            time.sleep(0.2)
            partitions, replication, led = admin.describe(request.topic)
    except Py4JJavaError as error:
        kind, message = _java_cause(error)
        if kind == "TimeoutException":
            raise Unreached(
                f"no answer from the brokers at {where} within {request.timeout_s:g} s: "
                f"are the addresses right and the networks peered? ({message})"
            ) from None
        if kind in ("InvalidReplicationFactorException", "InvalidPartitionsException", "InvalidConfigurationException"):
            raise Refused(f"the cluster refused topic '{request.topic}': {message}") from None
        raise Failed(f"cannot create topic '{request.topic}' at {where}: {kind}: {message}") from None
    if partitions < request.partitions:
        raise Refused(
            f"topic '{request.topic}' exists with {partitions} partition(s), fewer than the {request.partitions} "
            "asked: add partitions with kafka-topics --alter (this moves keys to other partitions), "
            "or delete the topic and run again"
        )
    if not led:
        raise Failed(f"topic '{request.topic}' has partitions without a leader after {request.timeout_s:g} s")
    return {"outcome": outcome, "topic": request.topic, "partitions": partitions, "replication": replication}


def jvm_of(session: Any) -> Any:
    """The session's py4j view of the driver's JVM; Failed where the cluster hides it."""
    try:
        return session.sparkContext._jvm
    except Exception as error:  # Spark Connect, or Databricks' standard (shared) access mode
        raise Failed(
            "this Spark session gives no access to the driver's JVM (Spark Connect, or a Databricks cluster in "
            f"standard/shared access mode): run the job on a cluster in dedicated access mode ({error})"
        ) from None


def _print_outcome(outcome: dict[str, Any]) -> None:
    print(json.dumps(outcome, sort_keys=True), flush=True)


def _session() -> tuple[SparkSession, bool]:
    """The active session (Databricks' own), else one from the project's builder; and whether
    we started it (then we stop it too: never the cluster's)."""
    from pyspark.sql import SparkSession

    from backend.runtime.spark import local_spark_session, on_databricks

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    # One core is plenty: no Spark job runs, only the JVM's Kafka client.
    return local_spark_session("tweetstream-create-topic", "local[1]"), not on_databricks()


def main(argv: Sequence[str] | None = None) -> int:
    parser = CREATE_TOPIC.build_parser()
    values = vars(parser.parse_args(argv))
    try:
        request = validate(values)
    except Refused as error:
        parser.print_usage(sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        _print_outcome({"outcome": "error", "kind": "refused", "topic": values["topic"], "error": str(error)})
        return EXIT_REFUSED

    session, started = _session()
    admin: JavaAdmin | None = None
    try:
        admin = JavaAdmin(jvm_of(session), request.bootstrap_servers, request.timeout_s)
        outcome = ensure_topic(admin, request)
    except (Refused, Failed) as error:
        print(f"error: {error}", file=sys.stderr)
        refused = isinstance(error, Refused)
        kind = "refused" if refused else "unreached" if isinstance(error, Unreached) else "failed"
        _print_outcome({"outcome": "error", "kind": kind, "topic": request.topic, "error": str(error)})
        return EXIT_REFUSED if refused else EXIT_FAILED
    finally:
        if admin is not None:
            admin.close()
        if started:
            session.stop()
    _print_outcome(outcome)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

"""Smoke tests: the real broker carries messages, and Spark's Kafka connector reads them."""

import json
import subprocess

from confluent_kafka import Consumer, Producer

from backend.kafka import topics
from backend.kafka.local_broker import tool_command
from backend.kafka.topics import TopicSpec


def produce_numbered(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=json.dumps({"n": i}).encode())
    assert producer.flush(30) == 0


def test_produce_and_consume_with_confluent_kafka(kafka_broker, admin, topic_name):
    topics.create_topic(admin, TopicSpec(topic_name, partitions=2))
    produce_numbered(kafka_broker.bootstrap, topic_name, 200)

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap,
            "group.id": f"{topic_name}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic_name])
    seen: dict[str, int] = {}
    try:
        for _ in range(60):
            for message in consumer.consume(num_messages=500, timeout=0.5):
                assert message.error() is None
                seen[message.key().decode()] = json.loads(message.value())["n"]
            if len(seen) == 200:
                break
    finally:
        consumer.close()
    assert seen == {str(i): i for i in range(200)}


def test_spark_batch_read_through_the_kafka_connector(kafka_broker, admin, spark, topic_name):
    topics.create_topic(admin, TopicSpec(topic_name, partitions=3))
    produce_numbered(kafka_broker.bootstrap, topic_name, 120)

    frame = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", kafka_broker.bootstrap)
        .option("subscribe", topic_name)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )
    assert frame.columns == ["key", "value", "topic", "partition", "offset", "timestamp", "timestampType"]
    rows = frame.selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value", "partition").collect()
    assert sorted(int(row.key) for row in rows) == list(range(120))
    assert all(json.loads(row.value)["n"] == int(row.key) for row in rows)
    assert {row.partition for row in rows} <= {0, 1, 2}


def kafka_tool(main_class: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        tool_command(main_class, *args),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_kafkas_own_java_tools_create_produce_and_consume(kafka_broker, topic_name):
    """An independent client (Kafka's Java tools, not librdkafka) works on the printed address."""
    server = ["--bootstrap-server", kafka_broker.bootstrap]
    kafka_tool("org.apache.kafka.tools.TopicCommand", *server, "--create", "--topic", topic_name, "--partitions", "2")
    described = kafka_tool("org.apache.kafka.tools.TopicCommand", *server, "--describe", "--topic", topic_name).stdout
    assert "PartitionCount: 2" in described
    kafka_tool("org.apache.kafka.tools.ConsoleProducer", *server, "--topic", topic_name, stdin="one\ntwo\nthree\n")
    consumed = kafka_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        *server,
        "--topic",
        topic_name,
        "--from-beginning",
        "--max-messages",
        "3",
        "--timeout-ms",
        "30000",
    ).stdout
    assert sorted(consumed.split()) == ["one", "three", "two"]

import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from backend.kafka import topics
from backend.kafka.topics import TopicError, TopicSpec
from tests.support import free_port


def test_create_describe_list_delete(kafka_broker, admin, topic_name):
    topics.create_topic(admin, TopicSpec(topic_name, partitions=3, retention_ms=3_600_000))
    assert topic_name in topics.list_topics(admin)
    assert not any(name.startswith("__") for name in topics.list_topics(admin))

    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "enable.idempotence": True})
    for partition, count in ((0, 5), (2, 7)):
        for i in range(count):
            producer.produce(topic_name, key=f"k{i}", value=b"{}", partition=partition)
    assert producer.flush(15) == 0

    info = topics.describe_topic(admin, topic_name)
    assert [p.partition for p in info.partitions] == [0, 1, 2]
    assert all(p.leader == 1 and p.replicas == (1,) and p.in_sync_replicas == (1,) for p in info.partitions)
    assert [(p.low_watermark, p.high_watermark) for p in info.partitions] == [(0, 5), (0, 0), (0, 7)]
    assert info.messages == 12
    assert info.retention_ms == 3_600_000
    assert info.replication_factor == 1

    topics.delete_topic(admin, topic_name)
    deadline = time.monotonic() + 15
    while topic_name in topics.list_topics(admin) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert topic_name not in topics.list_topics(admin)


def test_default_retention_is_the_brokers(admin, topic_name):
    topics.create_topic(admin, TopicSpec(topic_name, partitions=1))
    assert topics.describe_topic(admin, topic_name).retention_ms == 7 * 24 * 3600 * 1000


def test_mistakes_get_clear_messages(admin, topic_name):
    topics.create_topic(admin, TopicSpec(topic_name, partitions=1))
    with pytest.raises(TopicError, match=f"cannot create topic '{topic_name}': the topic already exists"):
        topics.create_topic(admin, TopicSpec(topic_name))
    with pytest.raises(TopicError, match="replication factor is larger than the number of brokers"):
        topics.create_topic(admin, TopicSpec(topic_name + "-r3", replication_factor=3))
    with pytest.raises(TopicError, match="cannot describe topic 'no-such-topic': no such topic"):
        topics.describe_topic(admin, "no-such-topic")
    with pytest.raises(TopicError, match="cannot delete topic 'no-such-topic': no such topic"):
        topics.delete_topic(admin, "no-such-topic")


def test_unreachable_cluster_fails_within_the_timeout():
    nobody = AdminClient({"bootstrap.servers": f"127.0.0.1:{free_port()}", "error_cb": lambda _e: None})
    began = time.monotonic()
    with pytest.raises(TopicError, match=r"cannot list topics: .*(is the broker running|Timed out)"):
        topics.list_topics(nobody, timeout=2)
    assert time.monotonic() - began < 10

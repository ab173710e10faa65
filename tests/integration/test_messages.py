"""The message browser against a real broker."""

import json
import threading
import time

import pytest
from confluent_kafka import Producer

from backend.kafka import topics
from backend.kafka.browser import BrowseError, FromOffset, FromTimestamp, Latest, read_messages, search
from backend.kafka.topics import TopicSpec
from tests.support import free_port

T0 = 1_700_000_000_000  # record timestamps, ms


def produce(bootstrap: str, topic: str, records: list[tuple[int, bytes | None, bytes | None, int]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for partition, key, value, timestamp in records:
        producer.produce(topic, key=key, value=value, partition=partition, timestamp=timestamp)
    assert producer.flush(30) == 0


@pytest.fixture
def browsed_topic(kafka_broker, admin, topic_name) -> str:
    """Partition 0: 10 JSON tweets; partition 1: 5 odd values; partition 2: empty."""
    topics.create_topic(admin, TopicSpec(topic_name, partitions=3))
    tweets = [
        (0, f"id-{i}".encode(), json.dumps({"data": {"text": f"tweet {i} #Azure é"}}).encode(), T0 + i * 1000)
        for i in range(10)
    ]
    odd = [
        (1, b"text", b"plain text, not JSON", T0 + 500),
        (1, b"bad-utf8", b'{"text": "\xff\xfe"}', T0 + 1500),
        (1, b"null-value", None, T0 + 2500),
        (1, None, b'{"no": "key"}', T0 + 3500),
        (1, b"\x00\xff", bytes(range(256)), T0 + 4500),
    ]
    produce(kafka_broker.bootstrap, topic_name, tweets + odd)
    return topic_name


def config(kafka_broker) -> dict:
    return {"bootstrap.servers": kafka_broker.bootstrap}


def where(result) -> list[tuple[int, int]]:
    return [(m.partition, m.offset) for m in result.messages]


def test_everything_from_offset_zero_sorted_by_time_with_odd_values_shown(kafka_broker, browsed_topic):
    result = read_messages(config(kafka_broker), browsed_topic, None, FromOffset(0), limit=500)
    assert not result.truncated and result.notes == []
    assert len(result.messages) == 15
    stamps = [m.timestamp_ms for m in result.messages]
    assert stamps == sorted(stamps) and stamps[0] == T0 and stamps[-1] == T0 + 9000
    by_key = {m.key: m for m in result.messages}
    tweet = by_key["id-3"]
    assert tweet.is_json and '"text": "tweet 3 #Azure é"' in tweet.pretty
    assert by_key["text"].value_text == "plain text, not JSON" and not by_key["text"].is_json
    assert by_key["bad-utf8"].value_text == '{"text": "\ufffd\ufffd"}' and not by_key["bad-utf8"].is_json
    assert (by_key["null-value"].value_text, by_key["null-value"].value_bytes) == ("", 0)
    assert by_key[None].is_json and by_key[None].value_text == '{"no": "key"}'
    assert by_key["\x00\ufffd"].value_bytes == 256
    assert [m.key for m in search(result.messages, "TWEET 7")] == ["id-7"]


def test_latest_n_per_partition_and_for_one_partition(kafka_broker, browsed_topic):
    result = read_messages(config(kafka_broker), browsed_topic, None, Latest(3), limit=100)
    assert sorted(where(result)) == [(0, 7), (0, 8), (0, 9), (1, 2), (1, 3), (1, 4)]
    assert not result.truncated
    one = read_messages(config(kafka_broker), browsed_topic, 1, Latest(3), limit=100)
    assert where(one) == [(1, 2), (1, 3), (1, 4)]
    more_than_stored = read_messages(config(kafka_broker), browsed_topic, 0, Latest(50), limit=100)
    assert [m.offset for m in more_than_stored.messages] == list(range(10))


def test_from_a_timestamp(kafka_broker, browsed_topic):
    result = read_messages(config(kafka_broker), browsed_topic, None, FromTimestamp(T0 + 4000), limit=100)
    assert where(result) == [(0, 4), (1, 4), (0, 5), (0, 6), (0, 7), (0, 8), (0, 9)]
    later = read_messages(config(kafka_broker), browsed_topic, None, FromTimestamp(T0 + 60_000), limit=100)
    assert later.messages == [] and not later.truncated
    assert later.notes == ["no message in any partition at or after 2023-11-14T22:14:20.000+00:00"]


def test_from_an_offset(kafka_broker, browsed_topic):
    result = read_messages(config(kafka_broker), browsed_topic, 0, FromOffset(6), limit=100)
    assert [m.offset for m in result.messages] == [6, 7, 8, 9]
    beyond = read_messages(config(kafka_broker), browsed_topic, 0, FromOffset(100), limit=100)
    assert beyond.messages == [] and beyond.notes == ["no message in partition 0 at or after offset 100"]


def test_the_limit_is_shared_fairly_newest_for_latest_first_for_the_others(kafka_broker, browsed_topic):
    latest = read_messages(config(kafka_broker), browsed_topic, None, Latest(10), limit=4)
    assert sorted(where(latest)) == [(0, 8), (0, 9), (1, 3), (1, 4)]
    assert latest.truncated and "more than 4 messages" in latest.notes[0]
    first = read_messages(config(kafka_broker), browsed_topic, None, FromOffset(0), limit=4)
    assert sorted(where(first)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert first.truncated


def test_500_messages_of_a_busy_topic_come_back_promptly(kafka_broker, admin, topic_name):
    topics.create_topic(admin, TopicSpec(topic_name, partitions=1))
    value = json.dumps({"data": {"id": "1", "text": "x" * 1000}}).encode()
    produce(kafka_broker.bootstrap, topic_name, [(0, b"k", value, T0 + i) for i in range(600)])

    stop = threading.Event()

    def keep_writing() -> None:  # the end of the range is where the topic ended when the read began
        producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "linger.ms": 5})
        while not stop.is_set():
            producer.produce(topic_name, value=b"{}", partition=0)
            producer.poll(0)
            time.sleep(0.001)
        producer.flush(10)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        time.sleep(0.5)
        began = time.monotonic()
        newest = read_messages(config(kafka_broker), topic_name, 0, Latest(500), limit=500, timeout_s=5)
        elapsed = time.monotonic() - began
        oldest = read_messages(config(kafka_broker), topic_name, None, FromOffset(0), limit=500, timeout_s=5)
    finally:
        stop.set()
        writer.join()
    assert len(newest.messages) == 500 and not newest.truncated
    offsets = [m.offset for m in newest.messages]
    assert offsets == list(range(offsets[0], offsets[0] + 500))
    assert elapsed < 3, f"took {elapsed:.1f} s"
    assert [m.offset for m in oldest.messages] == list(range(500)) and oldest.truncated


def test_unknown_topic_and_partition_are_clear_errors(kafka_broker, browsed_topic):
    with pytest.raises(BrowseError, match=f"there is no topic 'no-such-topic' on {kafka_broker.bootstrap}"):
        read_messages(config(kafka_broker), "no-such-topic", None, Latest(5), limit=10)
    with pytest.raises(BrowseError, match=f"topic '{browsed_topic}' has partitions 0-2; there is no partition 7"):
        read_messages(config(kafka_broker), browsed_topic, 7, Latest(5), limit=10)


def test_browsing_leaves_no_consumer_group_behind(kafka_broker, admin, browsed_topic):
    read_messages(config(kafka_broker), browsed_topic, None, FromOffset(0), limit=500)
    groups = admin.list_consumer_groups(request_timeout=10).result().valid
    assert not [g.group_id for g in groups if g.group_id.startswith("tweetstream-browser-")]


def test_a_closed_port_fails_fast_with_an_actionable_message():
    bootstrap = f"127.0.0.1:{free_port()}"
    began = time.monotonic()
    with pytest.raises(BrowseError, match=f"cannot reach Kafka at {bootstrap}: connection refused"):
        read_messages({"bootstrap.servers": bootstrap}, "tweets", None, Latest(5), limit=10, timeout_s=3)
    assert time.monotonic() - began < 3 + 1


def test_a_broker_that_never_answers_cannot_block_the_call(silent_listener):
    began = time.monotonic()
    with pytest.raises(BrowseError, match=f"cannot reach Kafka at {silent_listener}: no answer within 2 s"):
        read_messages({"bootstrap.servers": silent_listener}, "tweets", None, Latest(5), limit=10, timeout_s=2)
    assert time.monotonic() - began < 2 + 1

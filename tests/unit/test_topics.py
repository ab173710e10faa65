import pytest

from backend.kafka.topics import MAX_TOPIC_NAME_LENGTH, PartitionInfo, TopicError, TopicInfo, TopicNameError, TopicSpec
from backend.kafka.topics import validate_topic_name as check


@pytest.mark.parametrize("name", ["tweets", "Tweets.v2", "tweets_raw-1", "a", "x" * MAX_TOPIC_NAME_LENGTH])
def test_names_kafka_accepts_pass(name):
    assert check(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "cannot be empty"),
        (".", "not allowed"),
        ("..", "not allowed"),
        ("x" * (MAX_TOPIC_NAME_LENGTH + 1), r"at most 249 characters \(this one has 250\)"),
        ("my topic", "contains ' '"),
        ("tweets/2026", "contains '/'"),
        ("tweets#azure", "contains '#'"),
        ("twéets", "contains 'é'"),
    ],
)
def test_names_kafka_refuses_say_why(name, message):
    with pytest.raises(TopicNameError, match=message):
        check(name)


def test_spec_refuses_bad_numbers():
    with pytest.raises(TopicError, match="at least 1 partition"):
        TopicSpec("tweets", partitions=0)
    with pytest.raises(TopicError, match="replication factor is at least 1"):
        TopicSpec("tweets", replication_factor=0)
    with pytest.raises(TopicError, match="positive number of milliseconds"):
        TopicSpec("tweets", retention_ms=0)
    with pytest.raises(TopicNameError):
        TopicSpec("bad name")
    assert TopicSpec("tweets", retention_ms=-1).retention_ms == -1


def test_message_counts_come_from_watermarks():
    info = TopicInfo(
        name="tweets",
        partitions=(
            PartitionInfo(0, leader=1, replicas=(1, 2), in_sync_replicas=(1,), low_watermark=10, high_watermark=25),
            PartitionInfo(1, leader=None, replicas=(2, 1), in_sync_replicas=(), low_watermark=0, high_watermark=7),
        ),
        retention_ms=None,
    )
    assert [p.messages for p in info.partitions] == [15, 7]
    assert info.messages == 22
    assert info.replication_factor == 2

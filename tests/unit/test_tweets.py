import json

import pytest

from backend.tweets.contract import (
    contract_problem,
    encode_message,
    from_v1,
    to_envelope,
    to_envelopes,
    v1_time_to_rfc3339,
)
from tests.support import quote_statuses, tweet_payload_lines

V1_RETWEET = {
    "created_at": "Wed Dec 23 00:08:07 +0000 2020",
    "id": 1341536025076764674,
    "id_str": "1341536025076764674",
    "text": "RT @Azure: Streaming with #Kafka and #Spark on @Azure",
    "entities": {
        "hashtags": [{"text": "Kafka", "indices": [26, 32]}, {"text": "Spark", "indices": [37, 43]}],
        "user_mentions": [
            {"screen_name": "Azure", "id": 17000457, "id_str": "17000457", "indices": [3, 9]},
            {"screen_name": "Azure", "id": 17000457, "id_str": "17000457", "indices": [47, 53]},
        ],
        "urls": [],
    },
    "user": {
        "id": 783214,
        "id_str": "783214",
        "name": "Twitter",
        "screen_name": "Twitter",
        "created_at": "Tue Feb 20 14:35:54 +0000 2007",
        "followers_count": 10,
        "friends_count": 2,
        "statuses_count": 5,
    },
    "retweeted_status": {"id": 1341400000000000000, "id_str": "1341400000000000000", "text": "Streaming"},
    "in_reply_to_status_id_str": None,
    "quoted_status_id_str": "1341300000000000000",
    "lang": "en",
    "favorite_count": 3,
}


def test_v1_time_becomes_rfc3339_utc():
    assert v1_time_to_rfc3339("Sat Jul 13 05:33:14 +0000 2019") == "2019-07-13T05:33:14.000Z"
    assert v1_time_to_rfc3339("Sat Jul 13 07:33:14 +0200 2019") == "2019-07-13T05:33:14.000Z"


def test_v1_status_converts_to_the_v2_shape():
    envelope = from_v1(V1_RETWEET)
    tweet = envelope["data"]
    assert tweet["id"] == "1341536025076764674"
    assert tweet["created_at"] == "2020-12-23T00:08:07.000Z"
    assert tweet["author_id"] == "783214"
    assert tweet["lang"] == "en"
    assert [h["tag"] for h in tweet["entities"]["hashtags"]] == ["Kafka", "Spark"]
    assert tweet["entities"]["hashtags"][0] == {"start": 26, "end": 32, "tag": "Kafka"}
    assert [m["username"] for m in tweet["entities"]["mentions"]] == ["Azure", "Azure"]
    # A retweet of a quote tweet (quoted_status_id_str set) is a retweet only, as v2 gives it.
    assert tweet["referenced_tweets"] == [{"type": "retweeted", "id": "1341400000000000000"}]
    assert tweet["public_metrics"]["like_count"] == 3
    user = envelope["includes"]["users"][0]
    assert user["username"] == "Twitter"
    assert user["public_metrics"]["following_count"] == 2
    assert user["created_at"] == "2007-02-20T14:35:54.000Z"


def test_a_retweet_of_a_quote_is_a_retweet_only_and_a_quote_a_quote():
    quote, retweet = quote_statuses()
    assert retweet["is_quote_status"] and retweet["quoted_status_id_str"] == quote["quoted_status_id_str"]
    assert from_v1(quote)["data"]["referenced_tweets"] == [{"type": "quoted", "id": quote["quoted_status_id_str"]}]
    assert from_v1(retweet)["data"]["referenced_tweets"] == [{"type": "retweeted", "id": quote["id_str"]}]
    assert contract_problem(encode_message(from_v1(retweet))[1]) is None


def test_extended_text_wins_over_the_truncated_one():
    status = {**V1_RETWEET, "truncated": True, "extended_tweet": {"full_text": "the whole text", "entities": {}}}
    assert from_v1(status)["data"]["text"] == "the whole text"
    assert "entities" not in from_v1(status)["data"]


LONG_TEXT = "A long Post about #Azure. " + "More words. " * 30 + "And at the end #Kafka with @msdev"
LONG_POST = {
    "id": "1790000000000000042",
    "text": LONG_TEXT[:280],
    "entities": {"hashtags": [{"start": 18, "end": 24, "tag": "Azure"}], "urls": [{"start": 0, "end": 4}]},
    "note_tweet": {
        "text": LONG_TEXT,
        "entities": {
            "hashtags": [{"start": 18, "end": 24, "tag": "Azure"}, {"start": 401, "end": 407, "tag": "Kafka"}],
            "mentions": [{"start": 413, "end": 419, "username": "msdev"}],
        },
    },
}


@pytest.mark.parametrize(
    "payload",
    [{"data": LONG_POST, "includes": {"users": []}}, {"data": [LONG_POST]}, LONG_POST],
    ids=["envelope", "search page", "bare tweet"],
)
def test_a_long_post_comes_with_its_whole_text_and_entities(payload):
    (envelope,) = to_envelopes(payload)

    tweet = envelope["data"]
    assert tweet["text"] == LONG_TEXT and len(LONG_TEXT) > 280
    assert [h["tag"] for h in tweet["entities"]["hashtags"]] == ["Azure", "Kafka"]
    assert tweet["entities"]["mentions"] == [{"start": 413, "end": 419, "username": "msdev"}]
    assert tweet["entities"]["urls"] == [{"start": 0, "end": 4}]  # what the note does not list stays
    assert "note_tweet" not in tweet  # the text is not carried twice
    assert contract_problem(encode_message(envelope)[1]) is None
    assert LONG_POST["text"] == LONG_TEXT[:280]  # the input is not changed


def test_detection_of_shapes():
    v2 = {"data": {"id": "1", "text": "hi", "author_id": "9"}, "includes": {"users": [{"id": "9"}, {"id": "8"}]}}
    assert to_envelope(v2) == {"data": v2["data"], "includes": {"users": [{"id": "9"}]}}
    page = {"data": [{"id": "1", "text": "a"}, {"id": "2", "text": "b"}], "meta": {"result_count": 2}}
    assert [e["data"]["id"] for e in to_envelopes(page)] == ["1", "2"]
    assert to_envelope(page) is None  # two tweets are not one
    bare = {"id": "5", "text": "bare v2"}
    assert to_envelope(bare) == {"data": bare, "includes": {"users": []}}
    assert to_envelope(V1_RETWEET)["data"]["id"] == V1_RETWEET["id_str"]
    for not_a_tweet in ({"meta": {"result_count": 0}}, {"errors": [{"title": "x"}]}, [], "text", 5, None):
        assert to_envelopes(not_a_tweet) == []


def test_encode_message_keys_by_tweet_id_and_keeps_unicode():
    key, value = encode_message({"data": {"id": "42", "text": "café 👀"}, "includes": {}})
    assert key == b"42"
    assert json.loads(value)["data"]["text"] == "café 👀"
    assert contract_problem(value) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"data": {"text": "no id"}}', "no data.id"),
        (b'{"data": {"id": 5}}', "no data.id"),
        (b'{"data": {"id": "5", "lang": 3}}', "data.lang is not a string"),
        (b'{"data": {"id": "5", "created_at": "yesterday"}}', "RFC 3339"),
        (b'{"data": {"id": "5", "created_at": "2026-11-27"}}', "RFC 3339"),  # fromisoformat alone takes it
        (b'{"data": {"id": "5", "created_at": "2026-11-27T18:00:00Z\\n"}}', "RFC 3339"),
        (b'{"data": {"id": "5", "created_at": "9999-12-31T23:59:30Z"}}', "out of range"),  # its window ends in 10000
        (b'{"data": {"id": "5", "created_at": "1969-12-31T23:59:59Z"}}', "out of range"),
        (b'{"data": {"id": "5", "entities": {"hashtags": [{"tag": 1}]}}}', "hashtags"),
        (b'{"data": {"id": "5", "referenced_tweets": [{"type": "liked"}]}}', "referenced_tweets"),
        (b'{"data": {"id": "5", "text": "\xff"}}', "not JSON"),
    ],
)
def test_contract_problems_are_named(value, reason):
    assert reason in contract_problem(value)


@pytest.mark.parametrize(("name", "rows"), [("v1_statuses.jsonl", 73), ("v2_tweets.jsonl", 112)])
def test_every_real_payload_converts_and_keeps_the_contract(name, rows):
    envelopes = [e for line in tweet_payload_lines(name) for e in to_envelopes(json.loads(line))]
    assert len(envelopes) == rows
    for envelope in envelopes:
        assert contract_problem(encode_message(envelope)[1]) is None
    if name.startswith("v1"):
        assert all(e["data"]["created_at"].endswith("Z") for e in envelopes)
        kinds = {r["type"] for e in envelopes for r in e["data"].get("referenced_tweets", [])}
        assert {"retweeted", "replied_to"} <= kinds

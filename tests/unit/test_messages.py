import json

import pytest

from backend.kafka.browser import (
    MAX_MESSAGES,
    MAX_VALUE_CHARS,
    BrowseError,
    FromOffset,
    FromTimestamp,
    Latest,
    browsed_message,
    fair_shares,
    read_messages,
    search,
)


def test_a_json_value_is_pretty_printed_with_its_characters_kept():
    value = json.dumps({"data": {"id": "1", "text": "café ☕ #Azure"}}).encode()  # ensure_ascii: \u escapes
    message = browsed_message(2, 41, 1_700_000_000_000, b"1", value)
    assert message.is_json
    assert message.pretty == json.dumps({"data": {"id": "1", "text": "café ☕ #Azure"}}, indent=2, ensure_ascii=False)
    assert "café ☕" in message.pretty
    assert message.value_text == value.decode()
    assert (message.partition, message.offset, message.timestamp_ms, message.key) == (2, 41, 1_700_000_000_000, "1")
    assert message.value_bytes == len(value)


def test_text_binary_and_invalid_utf8_are_shown_not_fatal():
    text = browsed_message(0, 0, None, None, b"plain words")
    assert (text.is_json, text.pretty, text.value_text, text.key) == (False, "plain words", "plain words", None)

    invalid = browsed_message(0, 1, None, b"\xff\xfekey", b'{"text": "\xff\xfe"}')
    assert not invalid.is_json  # JSON-looking bytes that are not UTF-8 are not JSON
    assert invalid.value_text == '{"text": "\ufffd\ufffd"}'
    assert invalid.key == "\ufffd\ufffdkey"
    assert invalid.value_bytes == 14

    binary = bytes(range(256))
    shown = browsed_message(0, 2, None, None, binary)
    assert shown.value_bytes == 256 and not shown.is_json and "\ufffd" in shown.value_text

    empty = browsed_message(0, 3, None, None, None)
    assert (empty.value_text, empty.value_bytes, empty.is_json, empty.pretty) == ("", 0, False, "")


def test_pathological_json_does_not_crash():
    deep = browsed_message(0, 0, None, None, b"[" * 100_000 + b"]" * 100_000)  # deeper than Python recurses
    assert (deep.is_json, deep.pretty == deep.value_text, deep.value_bytes) == (False, True, 200_000)
    nested = browsed_message(0, 0, None, None, b"[" * 900 + b"]" * 900)
    assert nested.is_json and nested.pretty.startswith("[\n  [\n    [")
    # Indented, it is 1.6 M characters: the browser keeps the start and says how much it left out.
    assert len(nested.pretty) < MAX_VALUE_CHARS + 100 and nested.pretty.endswith("more characters not shown)")
    megabyte = browsed_message(0, 3, None, None, b"x" * 1_000_000)
    assert megabyte.value_bytes == 1_000_000 and len(megabyte.value_text) < MAX_VALUE_CHARS + 100
    huge_number = browsed_message(0, 1, None, None, b"1" * 10_000)  # beyond int's string-conversion limit
    assert not huge_number.is_json and huge_number.pretty == "1" * 10_000
    scalar = browsed_message(0, 2, None, None, b"true")
    assert scalar.is_json and scalar.pretty == "true"


def _messages():
    return [
        browsed_message(0, 0, 1, b"Tweet-1", b'{"text": "Hello #AZURE"}'),
        browsed_message(0, 1, 2, b"tweet-2", json.dumps({"text": "caf\u00e9 au lait"}).encode()),
        browsed_message(1, 0, 3, None, b"a.*b [x] (y) \\d+"),
        browsed_message(1, 1, 4, b"\xffbin", b"\xff\xfe"),
    ]


def test_search_is_plain_case_insensitive_text_over_key_and_value():
    messages = _messages()
    assert [m.offset for m in search(messages, "azure")] == [0]
    assert [m.key for m in search(messages, "TWEET-")] == ["Tweet-1", "tweet-2"]
    assert [(m.partition, m.offset) for m in search(messages, "CAFÉ")] == [(0, 1)]  # the value holds \u00e9
    assert [(m.partition, m.offset) for m in search(messages, ".*")] == [(1, 0)]  # no regex: only the literal
    assert search(messages, "[x] (y) \\d+") == [messages[2]]
    assert search(messages, "(") == [messages[2]]
    assert search(messages, "\ufffd") == [messages[3]]
    assert search(messages, "nothing like this") == []
    assert search(messages, "") == messages


def test_fair_shares_split_the_limit_and_pass_unused_shares_on():
    assert fair_shares({0: 10, 1: 10}, 30) == {0: 10, 1: 10}
    assert fair_shares({0: 100, 1: 100, 2: 100}, 30) == {0: 10, 1: 10, 2: 10}
    assert fair_shares({0: 2, 1: 100, 2: 100}, 30) == {0: 2, 1: 14, 2: 14}
    shares = fair_shares({p: 1000 for p in range(7)}, 500)
    assert sum(shares.values()) <= 500 and max(shares.values()) - min(shares.values()) <= 1
    assert fair_shares({0: 5, 1: 5}, 1) == {0: 0, 1: 1}


def test_start_positions_and_limits_are_checked_before_anything_connects():
    with pytest.raises(ValueError, match="at least 1"):
        Latest(0)
    with pytest.raises(ValueError, match="0 or more"):
        FromOffset(-1)
    with pytest.raises(ValueError, match="milliseconds since 1970"):
        FromTimestamp(-5)
    config = {"bootstrap.servers": "127.0.0.1:1"}
    with pytest.raises(ValueError, match=f"at most {MAX_MESSAGES} messages can be read at a time \\(asked for 501\\)"):
        read_messages(config, "tweets", None, Latest(10), limit=MAX_MESSAGES + 1)
    with pytest.raises(ValueError, match="asked for 0"):
        read_messages(config, "tweets", None, Latest(10), limit=0)
    with pytest.raises(BrowseError, match="only ASCII letters"):
        read_messages(config, "no such/topic", None, Latest(10), limit=10)

import gzip
import json

import pytest

from backend.tweets.contract import contract_problem
from backend.tweets.sources import (
    MAX_REPLAY_GAP_S,
    Outgoing,
    Pacer,
    ReplayClock,
    ReplayFileError,
    Skipped,
    check_replay_file,
    replay_records,
    synthetic_source,
)
from backend.tweets.synthetic import SyntheticTweets

V2 = {"data": {"id": "7", "text": "hello", "created_at": "2026-01-01T00:00:01.000Z"}, "includes": {"users": []}}
V1 = {"id": 8, "id_str": "8", "text": "old", "created_at": "Thu Jan 01 00:00:03 +0000 2026", "user": {"id": 1}}


def test_pacer_spaces_sends_without_drift():
    now = [100.0]
    pacer = Pacer(rate=4, clock=lambda: now[0])
    assert pacer.wait_time() == 0.0  # the first goes at once
    assert pacer.wait_time() == pytest.approx(0.25)
    now[0] = 101.0  # the sender fell behind: the next ones are due at once, no pause added
    assert pacer.wait_time() == 0.0
    assert pacer.wait_time() == 0.0
    assert pacer.wait_time() == 0.0  # the 5th is due at 101.0
    assert pacer.wait_time() == pytest.approx(0.25)
    assert Pacer(rate=0).wait_time() == 0.0
    with pytest.raises(ValueError):
        Pacer(rate=-1)


def test_replay_clock_follows_the_original_gaps_faster():
    clock = ReplayClock(speed=10)
    assert clock.gap(1000.0) == 0.0
    assert clock.gap(1002.0) == pytest.approx(0.2)
    assert clock.gap(None) == 0.0  # no event time: at once
    assert clock.gap(1001.0) == 0.0  # out of order: at once
    assert clock.gap(5000.0) == pytest.approx(MAX_REPLAY_GAP_S / 10)  # a long silence is capped
    with pytest.raises(ValueError):
        ReplayClock(speed=0)


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replay_reads_json_lines_converts_v1_and_skips_what_is_not_a_tweet(tmp_path):
    path = write_lines(
        tmp_path / "mixed.jsonl", [json.dumps(V2), "{broken", "", json.dumps({"meta": {}}), json.dumps(V1)]
    )
    items = list(replay_records(path))
    sent = [i for i in items if isinstance(i, Outgoing)]
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [m.key for m in sent] == [b"7", b"8"]
    assert json.loads(sent[1].value)["data"]["created_at"] == "2026-01-01T00:00:03.000Z"
    assert sent[1].event_time - sent[0].event_time == pytest.approx(2.0)
    assert [(s.where, s.reason.split(" ")[0]) for s in skipped] == [("line 2", "not"), ("line 4", "not")]
    assert "not JSON" in skipped[0].reason and "not a tweet" in skipped[1].reason
    assert all(contract_problem(m.value) is None for m in sent)


def test_replay_reads_a_gzipped_json_array_whatever_its_name(tmp_path):
    path = tmp_path / "dump.json"
    path.write_bytes(gzip.compress(json.dumps([V1, 5, V2]).encode()))
    items = list(replay_records(path))
    assert [i.key for i in items if isinstance(i, Outgoing)] == [b"8", b"7"]
    assert [i.where for i in items if isinstance(i, Skipped)] == ["item 1"]


def test_replay_file_problems_are_refused_up_front(tmp_path):
    with pytest.raises(ReplayFileError, match="not found"):
        check_replay_file(tmp_path / "absent.jsonl")
    with pytest.raises(ReplayFileError, match="not a file"):
        check_replay_file(tmp_path)
    bad_array = tmp_path / "bad.json"
    bad_array.write_text("[1, 2")
    with pytest.raises(ReplayFileError, match="JSON array"):
        list(replay_records(bad_array))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert list(replay_records(empty)) == []


def test_synthetic_source_mixes_in_the_asked_share_of_malformed_values():
    source = synthetic_source(SyntheticTweets(seed=9), malformed_rate=0.1)
    items = [next(source) for _ in range(5000)]
    broken = [i for i in items if i.malformed]
    assert 400 < len(broken) < 600
    assert all(contract_problem(i.value) is not None for i in broken)
    assert all(contract_problem(i.value) is None for i in items if not i.malformed)

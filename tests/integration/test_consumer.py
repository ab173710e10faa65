"""The Spark consumer job, run as its CLI against the session's real broker, in real Spark.

Every test produces records whose content it knows, runs ``python -m jobs.consumer`` as a
subprocess (``--master local[2]``), and compares the store with a ground truth computed
in plain Python (tests/truth.py): exact counts, and VADER means from vaderSentiment itself (not from
backend.tweets.sentiment, which the job uses).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from backend.kafka import topics
from backend.kafka.topics import TopicSpec
from backend.runtime.jars import spark_kafka_jars
from backend.runtime.job_files import read_status
from backend.settings import PROJECT_ROOT
from backend.tweets.contract import contract_problem, to_envelope
from backend.tweets.synthetic import MALFORMED_KINDS, SyntheticTweets
from tests.support import TWEET_PAYLOADS, quote_statuses, tweet_payload_lines
from tests.truth import (
    Job,
    Record,
    Tables,
    assert_tables_equal,
    delta_rows,
    event_time_ms,
    ground_truth,
    kill_tree,
    produce,
    read_tables,
    synthetic_records,
    table_differences,
    tweet_record,
    wait_for,
    window_start,
)


@pytest.fixture
def sink() -> str:
    """The job's --sink; the tests that hold on both sinks are parametrized over it."""
    return "sqlite"


@pytest.fixture
def job(kafka_broker, tmp_path: Path, topic_name: str, sink: str) -> Job:
    return Job(tmp_path / "state", kafka_broker.bootstrap, topic_name, sink)


# Both sinks: the SQLite store of the local console, and the Delta tables a Databricks job writes.
BOTH_SINKS = pytest.mark.parametrize("sink", ["sqlite", "delta"])


def report(job: Job, name: str, tables: Tables, truth: Tables, seconds: float) -> None:
    """One line a reader can quote: what the sink held against the recount (pytest -s shows it)."""
    print(
        f"\n[{job.sink}] {name}: {sum(w[1] for w in tables.windows.values())} tweets in {len(tables.windows)} "
        f"windows, {len(tables.hashtags)} (window, hashtag) and {len(tables.languages)} (window, language) counts, "
        f"{sum(tables.late.values())} late; recount: {sum(w[1] for w in truth.windows.values())} tweets in "
        f"{len(truth.windows)} windows; equal: {not table_differences(tables, truth)}; job ran {seconds:.1f} s"
    )


# -- the tests --------------------------------------------------------------------------------


@BOTH_SINKS
def test_available_now_tables_equal_the_ground_truth(admin, job: Job) -> None:
    topics.create_topic(admin, TopicSpec(job.topic, partitions=3))
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    records = synthetic_records(3000, seed=11, start=start, minutes=5.5)
    produce(job.bootstrap, job.topic, records)

    began = time.monotonic()
    job.run("--available-now")

    truth = ground_truth(records)
    report(job, "available-now", job.tables(), truth, time.monotonic() - began)
    assert_tables_equal(job.tables(), truth)
    status = job.status
    assert status is not None and status["state"] == "finished" and status["last_error"] is None
    assert status["master"] == "local[2]"
    assert status["sink"] == job.sink
    assert status["last_batch"]["input_rows"] == len(records)
    # Progress: one row per batch; the last one ends where the topic ends.
    progress = job.progress()
    assert sum(row["input_rows"] for row in progress) == len(records)
    ends = Counter(r.partition for r in records)
    assert json.loads(progress[-1]["end_offsets"]) == {str(p): n for p, n in ends.items()}
    assert all(row["batch_duration_ms"] > 0 for row in progress)
    if job.sink == "delta":
        assert status["tables"][0] == "tweetstream_tweets_per_window"
        assert status["delta_location"] == str(job.delta_location)
        # The job sampled the topic's offsets (the console's lag on Azure, where it cannot reach Kafka).
        sampled = [r for r in delta_rows(job.delta_location / "topic_offsets") if r["topic"] == job.topic]
        assert {r["partition"] for r in sampled} == {0, 1, 2}
        assert all(r["low"] == 0 and r["high"] == ends[r["partition"]] for r in sampled)

        # Another window length than the Delta ledger's is refused before anything is written
        # (a new checkpoint: only the tables can tell).
        before = sorted(p.name for p in (job.delta_location / "batches" / "_delta_log").iterdir())
        refused = subprocess.run(
            job.command("--available-now", "--window", "30 seconds", "--checkpoint", str(job.state_dir / "other")),
            cwd=PROJECT_ROOT,
            env=job.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
        assert f"the Delta tables tweetstream_* in {job.delta_location} hold windows of 60 seconds" in refused.stdout
        assert "asks for windows of 30 seconds" in refused.stdout
        assert sorted(p.name for p in (job.delta_location / "batches" / "_delta_log").iterdir()) == before
        assert job.status["state"] == "failed" and "refusing to start" in job.status["last_error"]
    # The raw archive holds every record once, by date of its Kafka timestamp.
    archived = pq.read_table(job.archive).to_pydict()
    assert sorted(zip(archived["partition"], archived["offset"], strict=True)) == sorted(
        (r.partition, r.offset) for r in records
    )
    dates = {datetime.fromtimestamp(r.timestamp_ms / 1000, tz=UTC).date().isoformat() for r in records}
    assert {str(d) for d in archived["date"]} == dates


@pytest.mark.parametrize(
    ("sink", "per_batch", "before_kill"),
    [
        ("sqlite", 400, 3),
        # Each Delta batch is six table commits (3-6 s on 2 cores): fewer, larger batches, more time.
        pytest.param("delta", 1000, 2, marks=pytest.mark.timeout(540)),
    ],
)
def test_after_kill_9_a_restart_counts_every_record_once_and_late_tweets_apart(
    admin, job: Job, tmp_path: Path, per_batch: int, before_kill: int
) -> None:
    topics.create_topic(admin, TopicSpec(job.topic, partitions=2))
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    records = synthetic_records(4000, seed=21, start=start, minutes=4)
    produce(job.bootstrap, job.topic, records)
    log = tmp_path / "consumer.log"

    first = job.start(log, "--trigger", "1s", "--max-offsets-per-trigger", str(per_batch))
    try:
        wait_for(lambda: len(job.ledger()) >= before_kill, 240, f"{before_kill} batches in the store", first)
    finally:
        kill_tree(first)
    counted = job.counted()[0]
    assert 0 < counted < len(records), "the job was killed mid-stream"

    # Make the restart replay the newest batch the store has: as if the crash had come after
    # our commit and before Spark's own (its commit log entry and any later offsets go).
    replayed = max(row["batch_id"] for row in job.ledger())
    aggregates = job.checkpoint / "aggregates"
    for log_dir, first_removed in (("commits", replayed), ("offsets", replayed + 1)):
        for entry in (aggregates / log_dir).iterdir():
            number = entry.name.lstrip(".").removesuffix(".crc")
            if number.isdigit() and int(number) >= first_removed:
                entry.unlink()

    began = time.monotonic()
    second = job.start(log, "--trigger", "1s")
    try:
        wait_for(lambda: job.counted()[0] >= len(records), 240, "every record in the store", second)
        truth = ground_truth(records)
        report(job, "after kill -9 and a restart", job.tables(), truth, time.monotonic() - began)
        assert_tables_equal(job.tables(), truth)

        # While it runs: a tweet older than the watermark (the latest event time - 2 minutes)
        # is counted apart, not added to its window, which the dashboard shows as final.
        newest = max(event_time_ms(json.loads(r.value)["data"], r.timestamp_ms) for r in records)
        newest_time = datetime.fromtimestamp(newest / 1000, tz=UTC)
        more = SyntheticTweets(seed=22)
        on_time = tweet_record(more.tweet(created_at=newest_time), newest)
        late = more.tweet(created_at=newest_time - timedelta(hours=1))
        late_record = tweet_record(late, newest)
        produce(job.bootstrap, job.topic, [on_time, late_record])
        wait_for(
            lambda: job.counted() == (len(records) + 1, 1),
            120,
            "the late and the on-time tweet",
            second,
        )

        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=90) == 0  # SIGTERM: stop after the batch, exit 0
    finally:
        if second.poll() is None:
            kill_tree(second)

    want = ground_truth([*records, on_time, late_record], late_ids=frozenset({late["data"]["id"]}))
    assert want.late == {window_start(newest - 3_600_000): 1}
    report(job, "with a late tweet, after SIGTERM", job.tables(), want, time.monotonic() - began)
    assert_tables_equal(job.tables(), want)
    assert [row["batch_id"] for row in job.ledger()].count(replayed) == 1
    assert f"batch {replayed} was already written to the store" in log.read_text()
    status = job.status
    assert status is not None and status["state"] == "stopped"


def handcrafted() -> list[tuple[bytes | None, bool]]:
    """(value, whether it keeps the contract) for the edges the generator does not make."""
    return [
        (None, False),  # a tombstone
        (b"", False),
        (b"[1, 2]", False),
        (b'{"data": "x"}', False),
        (b'{"data": {"id": ""}}', False),
        (b'{"data": {"id": "1", "created_at": "yesterday"}}', False),
        (b'{"data": {"id": "1", "created_at": 12}}', False),
        # Shapes Spark's timestamp cast or Python's fromisoformat would take, and dates out of range:
        (b'{"data": {"id": "1", "created_at": "2026"}}', False),
        (b'{"data": {"id": "1", "created_at": "2026-11-27"}}', False),
        (b'{"data": {"id": "1", "created_at": "2026-11-27T18:00:00Z\\n"}}', False),
        (b'{"data": {"id": "1", "created_at": "2026-02-30T00:00:00Z"}}', False),
        (b'{"data": {"id": "1", "created_at": "2026-11-27T24:00:00Z"}}', False),
        (b'{"data": {"id": "1", "created_at": "9999-12-31T23:59:30Z"}}', False),
        (b'{"data": {"id": "1", "created_at": "1969-12-31T23:59:59Z"}}', False),
        (b'{"data": {"id": "1", "text": null}}', False),
        (b'{"data": {"id": "1", "lang": null}}', False),
        (b'{"data": {"id": "1", "author_id": 5}}', False),
        (b'{"data": {"id": "1", "entities": {"hashtags": "nope"}}}', False),
        (b'{"data": {"id": "1", "entities": {"hashtags": [{"start": 1}]}}}', False),
        (b'{"data": {"id": "1", "entities": {"mentions": [{"username": null}]}}}', False),
        (b'{"data": {"id": "1", "referenced_tweets": [{"type": "liked", "id": "2"}]}}', False),
        (b'{"data": {"id": "1", "referenced_tweets": [{"id": "2"}]}}', False),
        # Valid, if unusual:
        (b'{"data": {"id": "90001", "text": "minimal but fine"}}', True),
        (b'{"data": {"id": "90002", "text": "tz", "created_at": "2026-11-27T19:00:00+01:00"}}', True),
        (b'{"data": {"id": "90005", "text": "space", "created_at": "2026-11-27 18:00:00.5Z"}}', True),
        (b'{"data": {"id": "90003", "referenced_tweets": [], "entities": {"hashtags": []}}}', True),
        (
            '{"data": {"id": "90004", "text": "Ça va 😀 #Été #été", "entities": {"hashtags": [{"tag": "Été"}, '
            '{"tag": "été"}]}}}'.encode(),
            True,
        ),
    ]


EXPECTED_REASON = {
    "not_json": "not JSON",
    "truncated_json": "not JSON",
    "wrong_types": "no data.id string",
    "missing_id": "no data.id string",
    "invalid_utf8": "not UTF-8",
    "oversize": "oversize",
}


def test_malformed_records_become_dead_letters_and_the_rest_is_counted(admin, job: Job) -> None:
    topics.create_topic(admin, TopicSpec(job.topic, partitions=2))
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=15)
    valid = synthetic_records(2500, seed=31, start=start, minutes=3)
    timestamp = int(start.timestamp() * 1000)
    # 2 % malformed from the generator (every kind at least once), then the hand-made edges.
    generator = SyntheticTweets(seed=32)
    malformed: list[tuple[Record, str]] = []
    while len(malformed) < len(valid) * 2 // 100 or {k for _, k in malformed} != set(MALFORMED_KINDS):
        key, value, kind = generator.malformed()
        malformed.append((Record(key, value, timestamp), kind))
    edges = [(Record(b"edge", value, timestamp), keeps) for value, keeps in handcrafted()]
    for record, keeps in edges:  # the edges mean what the contract says they mean
        assert record.value is None or (contract_problem(record.value) is None) == keeps, record.value
    # Mixed in: a malformed record after every 50 valid ones.
    bad = [record for record, _ in malformed] + [record for record, keeps in edges if not keeps]
    good = valid + [record for record, keeps in edges if keeps]
    records = [*good]
    for position, record in enumerate(bad):
        records.insert(position * 51, record)
    produce(job.bootstrap, job.topic, records)

    job.run("--available-now")

    dead = {(p, o): error for p, o, error in job.query('SELECT partition, "offset", error FROM dead_letters')}
    assert len(dead) == len(bad)
    assert set(dead) == {(r.partition, r.offset) for r in bad}
    for record, kind in malformed:
        assert EXPECTED_REASON[kind] in dead[(record.partition, record.offset)], kind
    raws = job.query("SELECT MAX(LENGTH(raw)) FROM dead_letters")
    assert raws[0][0] <= 2000
    assert_tables_equal(read_tables(job.store), ground_truth(good))
    tables = read_tables(job.store)
    assert ("2026-11-27T18:00:00Z", "und") in tables.languages  # the +01:00 edge, in UTC
    assert [n for (_, tag), n in tables.hashtags.items() if tag == "été"] == [1]  # "Été" and "été": one tweet


def real_records() -> list[Record]:
    """The real payloads as the producer would send them: v1.1 converted to v2 envelopes; then a
    v1.1 quote tweet and a retweet of it (quote_statuses)."""
    now = int(time.time() * 1000)
    records = []
    payloads = [
        json.loads(line)
        for name in ("v1_statuses.jsonl", "v2_tweets.jsonl")
        for line in (TWEET_PAYLOADS / name).read_text().splitlines()
        if line.strip()
    ]
    for payload in [*payloads, *quote_statuses()]:
        envelope = to_envelope(payload)
        if envelope is not None:
            records.append(tweet_record(envelope, now + len(records)))
    return records


def test_real_payloads_replayed_make_no_dead_letters(admin, job: Job) -> None:
    records = real_records()
    assert len(records) == 73 + 112 + 2
    topics.create_topic(admin, TopicSpec(job.topic, partitions=2))
    produce(job.bootstrap, job.topic, records)

    job.run("--available-now")

    assert job.query("SELECT error, raw FROM dead_letters") == []
    tables = read_tables(job.store)
    assert_tables_equal(tables, ground_truth(records))
    assert sum(n for (_, lang), n in tables.languages.items() if lang == "und") >= 112  # v2: no lang
    # The quote tweet is the only quote: its retweet counts as a retweet, as X's v2 API would give it.
    retweets = sum(1 for p in map(json.loads, tweet_payload_lines("v1_statuses.jsonl")) if p.get("retweeted_status"))
    assert sum(w[4] for w in tables.windows.values()) == 1
    assert sum(w[2] for w in tables.windows.values()) == retweets + 1


def test_under_spark_submit_its_master_and_jars_count(admin, job: Job, tmp_path: Path) -> None:
    """The job file as a cluster runs it: spark-submit's --master, --jars and --py-files, no local helpers."""
    topics.create_topic(admin, TopicSpec(job.topic, partitions=2))
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    records = synthetic_records(600, seed=41, start=start, minutes=2)
    produce(job.bootstrap, job.topic, records)
    # What a cluster gets: the backend package as a zip for the Python workers.
    backend_zip = Path(shutil.make_archive(str(tmp_path / "backend"), "zip", PROJECT_ROOT, "backend"))
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = sys.executable  # vaderSentiment, pandas, pyarrow
    status_file = tmp_path / "status.json"

    done = subprocess.run(
        [
            *(str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]"),
            *("--jars", ",".join(str(jar) for jar in spark_kafka_jars()), "--py-files", str(backend_zip)),
            str(PROJECT_ROOT / "jobs" / "consumer" / "__main__.py"),
            *("--bootstrap", job.bootstrap, "--topic", job.topic, "--available-now", "--store", str(job.store)),
            *("--checkpoint", f"file://{job.checkpoint}", "--archive", f"file://{job.archive}"),
            *("--status-file", str(status_file)),
        ],
        cwd=tmp_path,  # not the project: the driver finds backend next to the job file, the workers in the zip
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    status = read_status(status_file)
    assert status is not None and status["state"] == "finished"
    assert status["master"] == "local[1]"  # spark-submit's, not the job's default local[*]
    assert_tables_equal(read_tables(job.store), ground_truth(records))
    archived = pq.read_table(job.archive).to_pydict()
    assert len(archived["offset"]) == len(records)

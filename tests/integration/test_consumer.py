"""The Spark consumer job, run as its CLI against the session's real broker, in real Spark.

Every test produces records whose content it knows, runs ``python -m jobs.consumer`` as a
subprocess (``--master local[2]``), and compares the store with a ground truth computed here
in plain Python: exact counts, and VADER means from vaderSentiment itself (not from
backend.sentiment, which the job uses).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from backend import topics
from backend.jars import spark_kafka_jars
from backend.jobfiles import read_status
from backend.settings import PROJECT_ROOT
from backend.synthetic import MALFORMED_KINDS, SyntheticTweets
from backend.topics import TopicSpec
from backend.tweets import contract_problem, encode_message, to_envelope

REAL_TWEETS = PROJECT_ROOT.parent / "shared" / "data" / "tweets"
WINDOW_MS = 60_000
_vader = SentimentIntensityAnalyzer()


# -- records and the ground truth ------------------------------------------------------------


@dataclass
class Record:
    """One Kafka record to send; ``partition`` and ``offset`` are filled in once it is acknowledged."""

    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    partition: int = -1
    offset: int = -1


def tweet_record(envelope: dict[str, Any], timestamp_ms: int) -> Record:
    key, value = encode_message(envelope)
    return Record(key, value, timestamp_ms)


def synthetic_records(count: int, seed: int, start: datetime, minutes: float) -> list[Record]:
    """``count`` realistic tweets spread over ``minutes`` from ``start``, with the gaps real data has.

    Every 11th has no created_at (its Kafka timestamp counts), every 13th no lang (``und``),
    every 17th a hashtag twice in other cases ("#Kafka" and "kafka": one tweet for "kafka").
    """
    generator = SyntheticTweets(seed=seed)
    records = []
    for index in range(count):
        moment = start + timedelta(minutes=minutes * index / count)
        envelope = generator.tweet(created_at=moment)
        tweet = envelope["data"]
        if index % 11 == 0:
            del tweet["created_at"]
        if index % 13 == 0:
            tweet.pop("lang", None)
        if index % 17 == 0:
            tags = tweet.setdefault("entities", {}).setdefault("hashtags", [])
            tags += [{"start": 0, "end": 6, "tag": "#Kafka"}, {"start": 7, "end": 12, "tag": "kafka"}]
        # The Kafka timestamp lags the tweet's time by a little, as a producer's would.
        records.append(tweet_record(envelope, int(moment.timestamp() * 1000) + 250))
    return records


def window_start(ms: int) -> str:
    start = ms - ms % WINDOW_MS
    return datetime.fromtimestamp(start / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_time_ms(tweet: dict[str, Any], kafka_ms: int) -> int:
    if "created_at" not in tweet:
        return kafka_ms
    moment = datetime.fromisoformat(tweet["created_at"].replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


@dataclass
class Tables:
    """The aggregate tables, as plain Python values that compare exactly."""

    windows: dict[str, tuple[str, int, int, int, int]]  # start -> (end, tweets, retweets, replies, quotes)
    sentiment: dict[str, float]  # start -> mean compound
    hashtags: dict[tuple[str, str], int]
    languages: dict[tuple[str, str], int]
    late: dict[str, int]


def ground_truth(records: list[Record], late_ids: frozenset[str] = frozenset()) -> Tables:
    """What the tables must hold for the valid ``records``, computed without Spark or our code."""
    windows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    scores: dict[str, list[float]] = defaultdict(list)
    hashtags: Counter[tuple[str, str]] = Counter()
    languages: Counter[tuple[str, str]] = Counter()
    late: Counter[str] = Counter()
    for record in records:
        if record.value is None or contract_problem(record.value) is not None:
            continue
        tweet = json.loads(record.value)["data"]
        start = window_start(event_time_ms(tweet, record.timestamp_ms))
        if tweet["id"] in late_ids:
            late[start] += 1
            continue
        kinds = {reference["type"] for reference in tweet.get("referenced_tweets", [])}
        counts = windows[start]
        counts[0] += 1
        counts[1] += "retweeted" in kinds
        counts[2] += "replied_to" in kinds
        counts[3] += "quoted" in kinds
        text = tweet.get("text")
        scores[start].append(_vader.polarity_scores(text)["compound"] if text else 0.0)
        tags = {h["tag"].lower().lstrip("#") for h in tweet.get("entities", {}).get("hashtags", [])} - {""}
        for tag in tags:
            hashtags[(start, tag)] += 1
        languages[(start, tweet.get("lang") or "und")] += 1
    return Tables(
        windows={start: (_plus_window(start), *counts) for start, counts in windows.items()},
        sentiment={start: math.fsum(values) / len(values) for start, values in scores.items()},
        hashtags=dict(hashtags),
        languages=dict(languages),
        late=dict(late),
    )


def _plus_window(start: str) -> str:
    moment = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ") + timedelta(milliseconds=WINDOW_MS)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def read_tables(store: Path) -> Tables:
    with sqlite3.connect(store) as connection:
        rows = connection.execute(
            "SELECT window_start, window_end, tweets, retweets, replies, quotes, sentiment_avg FROM tweets_per_window"
        ).fetchall()
        hashtags = connection.execute("SELECT window_start, hashtag, tweets FROM hashtags_per_window").fetchall()
        languages = connection.execute("SELECT window_start, lang, tweets FROM languages_per_window").fetchall()
        late = connection.execute("SELECT window_start, tweets FROM late_tweets_per_window").fetchall()
    return Tables(
        windows={row[0]: tuple(row[1:6]) for row in rows},
        sentiment={row[0]: row[6] for row in rows},
        hashtags={(w, h): n for w, h, n in hashtags},
        languages={(w, lang): n for w, lang, n in languages},
        late=dict(late),
    )


def assert_tables_equal(got: Tables, want: Tables) -> None:
    assert got.windows == want.windows
    assert got.hashtags == want.hashtags
    assert got.languages == want.languages
    assert got.late == want.late
    assert got.sentiment.keys() == want.sentiment.keys()
    for start, mean in want.sentiment.items():
        assert abs(got.sentiment[start] - mean) <= 1e-9, (start, got.sentiment[start], mean)


# -- Kafka and the job ------------------------------------------------------------------------


def produce(bootstrap: str, topic: str, records: list[Record]) -> None:
    """Send ``records`` in order and note where each one landed."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.max.bytes": 2_000_000,  # the oversize malformed values are ~1 MB
        }
    )

    def delivered(record: Record):
        def callback(error, message) -> None:
            assert error is None, error
            record.partition, record.offset = message.partition(), message.offset()

        return callback

    for record in records:
        producer.produce(
            topic, key=record.key, value=record.value, timestamp=record.timestamp_ms, on_delivery=delivered(record)
        )
        producer.poll(0)
    assert producer.flush(60) == 0
    assert all(record.offset >= 0 for record in records)


@dataclass(frozen=True)
class Job:
    """Where one test's consumer keeps its files (the defaults, under its own state directory)."""

    state_dir: Path
    bootstrap: str
    topic: str

    @property
    def store(self) -> Path:
        return self.state_dir / "aggregates.sqlite"

    @property
    def checkpoint(self) -> Path:
        return self.state_dir / "consumer" / "checkpoint"

    @property
    def archive(self) -> Path:
        return self.state_dir / "archive"

    @property
    def status(self) -> dict[str, Any] | None:
        return read_status(self.state_dir / "jobs" / "consumer" / "status.json")

    def command(self, *options: str) -> list[str]:
        return [
            *(sys.executable, "-m", "jobs.consumer", "--bootstrap", self.bootstrap, "--topic", self.topic),
            *("--master", "local[2]", *options),
        ]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "TWEETSTREAM_STATE_DIR": str(self.state_dir)}

    def run(self, *options: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        """Run the job to its end and return what it printed (asserting exit code 0)."""
        done = subprocess.run(
            self.command(*options), cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        return done

    def start(self, log: Path, *options: str) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(
                self.command(*options), cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def query(self, sql: str) -> list[tuple]:
        if not self.store.exists():
            return []
        with sqlite3.connect(self.store, timeout=10) as connection:
            try:
                return connection.execute(sql).fetchall()
            except sqlite3.OperationalError:  # the job has not created the tables yet
                return []


@pytest.fixture
def job(kafka_broker, tmp_path: Path, topic_name: str) -> Job:
    return Job(tmp_path / "state", kafka_broker.bootstrap, topic_name)


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the job exited ({process.returncode}) while waiting for {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def kill_tree(process: subprocess.Popen) -> None:
    """kill -9 the job and every process under it (its JVM, the Python workers): a crash."""
    parent = psutil.Process(process.pid)
    family = [parent, *parent.children(recursive=True)]
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):  # a worker may go with its parent
            member.kill()
    psutil.wait_procs(family, timeout=30)
    process.wait(timeout=30)


# -- the tests --------------------------------------------------------------------------------


def test_available_now_tables_equal_the_ground_truth(admin, job: Job) -> None:
    topics.create_topic(admin, TopicSpec(job.topic, partitions=3))
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    records = synthetic_records(3000, seed=11, start=start, minutes=5.5)
    produce(job.bootstrap, job.topic, records)

    job.run("--available-now")

    assert_tables_equal(read_tables(job.store), ground_truth(records))
    status = job.status
    assert status is not None and status["state"] == "finished" and status["last_error"] is None
    assert status["master"] == "local[2]"
    assert status["last_batch"]["input_rows"] == len(records)
    # Progress: one row per batch; the last one ends where the topic ends.
    progress = job.query("SELECT input_rows, end_offsets, batch_duration_ms FROM query_progress ORDER BY batch_id")
    assert sum(row[0] for row in progress) == len(records)
    ends = Counter(r.partition for r in records)
    assert json.loads(progress[-1][1]) == {str(p): n for p, n in ends.items()}
    assert all(row[2] > 0 for row in progress)
    # The raw archive holds every record once, by date of its Kafka timestamp.
    archived = pq.read_table(job.archive).to_pydict()
    assert sorted(zip(archived["partition"], archived["offset"], strict=True)) == sorted(
        (r.partition, r.offset) for r in records
    )
    dates = {datetime.fromtimestamp(r.timestamp_ms / 1000, tz=UTC).date().isoformat() for r in records}
    assert {str(d) for d in archived["date"]} == dates


def test_after_kill_9_a_restart_counts_every_record_once_and_late_tweets_apart(admin, job: Job, tmp_path: Path) -> None:
    topics.create_topic(admin, TopicSpec(job.topic, partitions=2))
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    records = synthetic_records(4000, seed=21, start=start, minutes=4)
    produce(job.bootstrap, job.topic, records)
    log = tmp_path / "consumer.log"

    first = job.start(log, "--trigger", "1s", "--max-offsets-per-trigger", "400")
    try:
        wait_for(lambda: len(job.query("SELECT 1 FROM batches")) >= 3, 180, "three batches in the store", first)
    finally:
        kill_tree(first)
    counted = job.query("SELECT SUM(tweets) FROM tweets_per_window")[0][0]
    assert 0 < counted < len(records), "the job was killed mid-stream"

    # Make the restart replay the newest batch the store has: as if the crash had come after
    # our commit and before Spark's own (its commit log entry and any later offsets go).
    replayed = job.query("SELECT MAX(batch_id) FROM batches")[0][0]
    aggregates = job.checkpoint / "aggregates"
    for log_dir, first_removed in (("commits", replayed), ("offsets", replayed + 1)):
        for entry in (aggregates / log_dir).iterdir():
            number = entry.name.lstrip(".").removesuffix(".crc")
            if number.isdigit() and int(number) >= first_removed:
                entry.unlink()

    second = job.start(log, "--trigger", "1s")
    try:
        total = "SELECT COALESCE(SUM(tweets), 0) FROM tweets_per_window"
        wait_for(lambda: job.query(total)[0][0] >= len(records), 180, "every record in the store", second)
        assert_tables_equal(read_tables(job.store), ground_truth(records))

        # While it runs: a tweet older than the watermark (the latest event time - 2 minutes)
        # is counted apart, not added to its window, which the dashboard shows as final.
        newest = max(event_time_ms(json.loads(r.value)["data"], r.timestamp_ms) for r in records)
        newest_time = datetime.fromtimestamp(newest / 1000, tz=UTC)
        more = SyntheticTweets(seed=22)
        on_time = tweet_record(more.tweet(created_at=newest_time), newest)
        late = more.tweet(created_at=newest_time - timedelta(hours=1))
        late_record = tweet_record(late, newest)
        produce(job.bootstrap, job.topic, [on_time, late_record])
        late_tweets = "SELECT COALESCE(SUM(tweets), 0) FROM late_tweets_per_window"
        wait_for(
            lambda: job.query(late_tweets)[0][0] == 1 and job.query(total)[0][0] == len(records) + 1,
            60,
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
    assert_tables_equal(read_tables(job.store), want)
    assert job.query(f"SELECT COUNT(*) FROM batches WHERE batch_id = {replayed}") == [(1,)]
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
    """The real payloads as the producer would send them: v1.1 converted to v2 envelopes."""
    if not REAL_TWEETS.is_dir():
        pytest.skip(f"the real tweet payloads are not here ({REAL_TWEETS}): shared/ is absent in this checkout")
    now = int(time.time() * 1000)
    records = []
    for name in ("v1_statuses.jsonl", "v2_tweets.jsonl"):
        for line in (REAL_TWEETS / name).read_text().splitlines():
            envelope = to_envelope(json.loads(line)) if line.strip() else None
            if envelope is not None:
                records.append(tweet_record(envelope, now + len(records)))
    return records


def test_real_payloads_replayed_make_no_dead_letters(admin, job: Job) -> None:
    records = real_records()
    assert len(records) == 73 + 112
    topics.create_topic(admin, TopicSpec(job.topic, partitions=2))
    produce(job.bootstrap, job.topic, records)

    job.run("--available-now")

    assert job.query("SELECT error, raw FROM dead_letters") == []
    tables = read_tables(job.store)
    assert_tables_equal(tables, ground_truth(records))
    assert sum(n for (_, lang), n in tables.languages.items() if lang == "und") >= 112  # v2: no lang


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
            str(PROJECT_ROOT / "jobs" / "consumer.py"),
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

"""Records whose content a test knows, the aggregate tables they must give (computed in plain
Python: exact counts, VADER means from vaderSentiment itself, not from backend.tweets.sentiment,
which the job uses), and the Spark consumer job run as its CLI.

Shared by the consumer's integration tests and the fault scenarios.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow.parquet as pq
from confluent_kafka import Producer
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from backend.runtime.job_files import read_status
from backend.settings import PROJECT_ROOT
from backend.tweets.contract import contract_problem, encode_message
from backend.tweets.synthetic import SyntheticTweets
from tests.support import kill_process_tree

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


# -- the Delta tables (--sink delta), read from their transaction log ----------------------------


def delta_rows(table: Path) -> list[dict[str, Any]]:
    """The rows of the Delta table in folder ``table``: its log's live files read with pyarrow.

    Delta's protocol: the table is the data files added by its commits (``_delta_log/<n>.json``, in
    order) and not removed since. Read without Spark, so a test can poll it often; refused (an
    AssertionError) for what this reader does not handle: a log that no longer starts at commit 0,
    deletion vectors, column mapping.
    """
    log = table / "_delta_log"
    if not log.is_dir():
        return []
    commits = sorted(log.glob("[0-9]*.json"))
    assert [int(c.stem) for c in commits] == list(range(len(commits))), f"{log}: commits missing"
    files: dict[str, None] = {}
    for commit in commits:
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                assert not action["add"].get("deletionVector"), "deletion vectors are not read here"
                files[action["add"]["path"]] = None
            elif "remove" in action:
                files.pop(action["remove"]["path"], None)
            elif "metaData" in action:
                mode = action["metaData"].get("configuration", {}).get("delta.columnMapping.mode", "none")
                assert mode == "none", f"column mapping {mode} is not read here"
    rows: list[dict[str, Any]] = []
    for name in files:
        rows += pq.read_table(table / unquote(name)).to_pylist()
    return rows


def delta_txn_versions(table: Path) -> set[int]:
    """The txnVersions (the consumer's batch ids) the Delta table in folder ``table`` has commits of."""
    log = table / "_delta_log"
    versions: set[int] = set()
    for commit in sorted(log.glob("[0-9]*.json")) if log.is_dir() else []:
        for line in commit.read_text().splitlines():
            if line.startswith('{"txn"'):
                versions.add(int(json.loads(line)["txn"]["version"]))
    return versions


def committed_delta_rows(location: Path, table: str) -> list[dict[str, Any]]:
    """The rows of one Delta table under ``location`` that belong to batches the ``batches`` ledger holds,
    as the console's reader counts them (a batch cut short by a crash counts once it is whole)."""
    ledger = {(row["query_id"], row["batch_id"]) for row in delta_rows(location / "batches")}
    return [row for row in delta_rows(location / table) if (row["query_id"], row["batch_id"]) in ledger]


def read_delta_tables(location: Path) -> Tables:
    """The Delta tables under ``location`` summed per key, as the console's reader sums them: only the rows of
    batches the ``batches`` ledger holds."""

    def committed(table: str) -> list[dict[str, Any]]:
        return committed_delta_rows(location, table)

    windows: dict[str, list[Any]] = {}
    sentiment_sums: dict[str, list[float]] = defaultdict(list)
    for row in committed("tweets_per_window"):
        counts = windows.setdefault(row["window_start"], [row["window_end"], 0, 0, 0, 0])
        assert counts[0] == row["window_end"], f"window {row['window_start']} ends twice differently"
        for index, column in enumerate(("tweets", "retweets", "replies", "quotes"), start=1):
            counts[index] += row[column]
        sentiment_sums[row["window_start"]].append(row["sentiment_sum"])
    hashtags: Counter[tuple[str, str]] = Counter()
    for row in committed("hashtags_per_window"):
        hashtags[(row["window_start"], row["hashtag"])] += row["tweets"]
    languages: Counter[tuple[str, str]] = Counter()
    for row in committed("languages_per_window"):
        languages[(row["window_start"], row["lang"])] += row["tweets"]
    late: Counter[str] = Counter()
    for row in committed("late_tweets_per_window"):
        late[row["window_start"]] += row["tweets"]
    return Tables(
        windows={start: tuple(counts) for start, counts in windows.items()},
        sentiment={
            start: math.fsum(sentiment_sums[start]) / counts[1] for start, counts in windows.items() if counts[1]
        },
        hashtags=dict(hashtags),
        languages=dict(languages),
        late=dict(late),
    )


def table_differences(got: Tables, want: Tables) -> list[str]:
    """Where the store's tables differ from the truth (none: equal; sentiment means within 1e-9)."""
    differences = []
    for name in ("windows", "hashtags", "languages", "late"):
        mine, truth = getattr(got, name), getattr(want, name)
        if mine != truth:
            wrong = sorted(key for key in mine.keys() | truth.keys() if mine.get(key) != truth.get(key))
            first = wrong[0]
            differences.append(
                f"{name}: {len(wrong)} rows differ, e.g. {first}: stored {mine.get(first)}, truth {truth.get(first)}"
            )
    if got.sentiment.keys() != want.sentiment.keys():
        differences.append(f"sentiment: windows {sorted(got.sentiment.keys() ^ want.sentiment.keys())[:3]} differ")
    else:
        off = [s for s, mean in want.sentiment.items() if abs(got.sentiment[s] - mean) > 1e-9]
        if off:
            first = off[0]
            differences.append(
                f"sentiment: {len(off)} means differ, e.g. {first}: {got.sentiment[first]} vs {want.sentiment[first]}"
            )
    return differences


def assert_tables_equal(got: Tables, want: Tables) -> None:
    differences = table_differences(got, want)
    assert not differences, "; ".join(differences)


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
    sink: str = "sqlite"  # or "delta": the job writes Delta tables under delta_location

    @property
    def delta_location(self) -> Path:
        return self.state_dir / "delta"  # the job's default locally

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
            *("--master", "local[2]", "--sink", self.sink, *options),
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

    def tables(self) -> Tables:
        """The aggregates the job wrote, from its sink."""
        return read_delta_tables(self.delta_location) if self.sink == "delta" else read_tables(self.store)

    def ledger(self) -> list[dict[str, Any]]:
        """The rows of ``batches`` (query_id, batch_id, tweets, ...), from either sink."""
        if self.sink == "delta":
            return delta_rows(self.delta_location / "batches")
        columns = ("query_id", "batch_id", "tweets", "late_tweets", "dead_letters")
        return [dict(zip(columns, row, strict=True)) for row in self.query(f"SELECT {', '.join(columns)} FROM batches")]

    def counted(self) -> tuple[int, int]:
        """(tweets in the windows, late tweets) the sink holds."""
        if self.sink == "delta":  # whole batches only, as the console counts them
            on_time = sum(r["tweets"] for r in committed_delta_rows(self.delta_location, "tweets_per_window"))
            late = sum(r["tweets"] for r in committed_delta_rows(self.delta_location, "late_tweets_per_window"))
            return on_time, late
        on_time = self.query("SELECT COALESCE(SUM(tweets), 0) FROM tweets_per_window")
        late = self.query("SELECT COALESCE(SUM(tweets), 0) FROM late_tweets_per_window")
        return (on_time[0][0] if on_time else 0), (late[0][0] if late else 0)

    def progress(self) -> list[dict[str, Any]]:
        """The query_progress rows, by batch id."""
        if self.sink == "delta":
            rows = delta_rows(self.delta_location / "query_progress")
        else:
            columns = ("batch_id", "input_rows", "end_offsets", "batch_duration_ms")
            rows = [
                dict(zip(columns, r, strict=True))
                for r in self.query(f"SELECT {', '.join(columns)} FROM query_progress")
            ]
        return sorted(rows, key=lambda row: row["batch_id"])

    def query(self, sql: str) -> list[tuple]:
        if not self.store.exists():
            return []
        with sqlite3.connect(self.store, timeout=10) as connection:
            try:
                return connection.execute(sql).fetchall()
            except sqlite3.OperationalError:  # the job has not created the tables yet
                return []


def wait_for(condition: Callable[[], Any], timeout: float, what: str, process: subprocess.Popen | None = None) -> float:
    """Wait for ``condition``; the seconds it took. AssertionError when ``process`` exits first or time runs out."""
    began = time.monotonic()
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the job exited ({process.returncode}) while waiting for {what}")
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - began


def kill_tree(process: subprocess.Popen) -> None:
    """kill -9 the job and every process under it (its JVM, the Python workers): a crash."""
    kill_process_tree(process.pid)
    process.wait(timeout=30)

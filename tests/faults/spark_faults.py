"""Fault scenarios 3 to 6: the Spark consumer crashed, paused past retention, fed bad payloads,
restarted against a checkpoint it cannot continue.

The truth each is held to is computed in plain Python from what was sent (tests/truth.py),
never from the job's own code.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, OffsetSpec

from backend.console.job_requests import ConsumerRequest, RequestError, check_consumer
from backend.kafka.local_broker import LocalBroker
from backend.kafka.topics import TopicSpec
from backend.settings import Settings
from backend.tweets.sources import synthetic_source
from backend.tweets.synthetic import SyntheticTweets
from tests.faults.harness import (
    Run,
    check,
    console_environment,
    console_page_until,
    create_topic_on,
    kill_tree,
    run_job,
    scenario,
    start_job,
    wait_until,
)
from tests.support import read_topic
from tests.truth import (
    Job,
    Record,
    Tables,
    delta_txn_versions,
    ground_truth,
    produce,
    read_tables,
    synthetic_records,
    table_differences,
)

TOPIC = "tweets"
CONSUMER = "jobs.consumer"
# A kill aimed inside a micro-batch can land just after the batch committed (it is seen in flight, then
# finishes in the milliseconds the kill takes): the scenario then aims at a later batch, this many times.
KILL_ATTEMPTS = 3


def consumer_args(broker: LocalBroker, *options: str) -> list[str]:
    return ["--bootstrap", broker.bootstrap, "--topic", TOPIC, "--master", "local[2]", *options]


def tally(run: Run, got: Tables, want: Tables) -> None:
    """stored = tweets counted in the store; lost and duplicated = per-window shortfall and excess."""
    counts = {start: row[1] for start, row in got.windows.items()}
    truth = {start: row[1] for start, row in want.windows.items()}
    run.result.stored = sum(counts.values())
    run.result.lost = sum(max(0, n - counts.get(start, 0)) for start, n in truth.items())
    run.result.duplicated = sum(max(0, n - truth.get(start, 0)) for start, n in counts.items())


def exact(run: Run, got: Tables, want: Tables) -> None:
    differences = table_differences(got, want)
    check(not differences, "the aggregates differ from the recount: " + "; ".join(differences))
    run.note(
        f"equal to the recount: {len(want.windows)} windows, {len(want.hashtags)} (window, hashtag) and "
        f"{len(want.languages)} (window, language) counts, sentiment means within 1e-9"
    )


# -- 3 ------------------------------------------------------------------------------------------


def batch_in_flight(checkpoint: Path) -> int | None:
    """The micro-batch Spark has planned (offsets log) but not committed (commit log), if any."""

    def numbers(folder: Path) -> set[int]:
        return {int(p.name) for p in folder.iterdir() if p.name.isdigit()} if folder.is_dir() else set()

    planned, committed = numbers(checkpoint / "offsets"), numbers(checkpoint / "commits")
    if planned and committed and max(planned) > max(committed):
        return max(planned)
    return None


@scenario(3, "spark-kill-9-mid-batch")
def spark_killed_mid_batch(run: Run) -> None:
    """kill -9 of the Spark job (driver JVM and Python workers) inside a micro-batch, then a restart."""
    killed_mid_batch(run, "sqlite", count=24_000, per_batch=2000)


@scenario(3, "spark-kill-9-mid-batch-delta")
def spark_killed_mid_batch_delta(run: Run) -> None:
    """The same with --sink delta: the kill may fall between two tables' appends of a batch."""
    # Fewer records: each Delta batch appends six tables (several seconds a batch on 2 cores).
    killed_mid_batch(run, "delta", count=6000, per_batch=1000)


def killed_mid_batch(run: Run, sink: str, count: int, per_batch: int) -> None:
    with run.broker() as broker:
        create_topic_on(broker, TopicSpec(TOPIC, partitions=4))
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
        records = synthetic_records(count, seed=33, start=start, minutes=6)
        produce(broker.bootstrap, TOPIC, records)
        run.result.sent = run.result.acked = len(records)
        job = Job(run.folder("state"), broker.bootstrap, TOPIC, sink)
        log = run.workdir / "consumer.log"
        sink_args = ("--sink", sink)

        streaming_args = consumer_args(
            broker, *sink_args, "--trigger", "1s", "--max-offsets-per-trigger", str(per_batch)
        )
        first = start_job(CONSUMER, streaming_args, job.state_dir, log)
        aggregates = job.checkpoint / "aggregates"
        wait_until(lambda: len(job.ledger()) >= 2, 240, "two batches in the store", first)
        in_flight: list[int] = []

        def inside_a_batch() -> bool:
            batch = batch_in_flight(aggregates)
            in_flight[:] = [batch] if batch is not None else []
            return batch is not None

        def between_two_appends() -> bool:
            """A batch some of whose tables have their append, and the ledger not yet: the worst moment."""
            if not inside_a_batch():
                return False
            batch, tables = in_flight[0], job.delta_location
            appended = batch in delta_txn_versions(tables / "tweets_per_window")
            return appended and batch not in delta_txn_versions(tables / "batches")

        for attempt in range(1, KILL_ATTEMPTS + 1):
            if sink == "delta":
                wait_until(between_two_appends, 120, "a micro-batch half appended (some tables, no ledger row)", first)
            else:
                wait_until(inside_a_batch, 60, "a micro-batch in flight", first)
            kill_tree(first.pid)
            first.wait(timeout=30)
            batch = in_flight[0]
            if not (aggregates / "commits" / str(batch)).exists() or attempt == KILL_ATTEMPTS:
                break
            # The batch was seen in flight, but finished in the milliseconds the kill took to land: a kill at a
            # batch boundary proves less, so the job goes on from its checkpoint and a later batch is aimed at.
            run.note(f"attempt {attempt}: batch {batch} committed just before the kill landed; started again")
            first = start_job(CONSUMER, streaming_args, job.state_dir, log)
        check(not (aggregates / "commits" / str(batch)).exists(), f"batch {batch} had committed before the kill")
        counted = job.counted()[0]
        ledger = [row["batch_id"] for row in job.ledger()]
        written = ledger.count(batch)
        run.note(
            f"kill -9 of the job's process tree inside micro-batch {batch} (in Spark's offsets log, not its "
            f"commit log; {'already' if written else 'not yet'} in the {sink} ledger); {len(ledger)} batches and "
            f"{counted} of {len(records)} tweets were in the store"
        )
        if sink == "delta":
            appended = [
                table
                for table in ("tweets_per_window", "hashtags_per_window", "languages_per_window", "batches")
                if batch in delta_txn_versions(job.delta_location / table)
            ]
            run.note(f"batch {batch} had been appended to {', '.join(appended) or 'no table'} at the kill")
            check("batches" not in appended, f"batch {batch} was whole (in the ledger) before the kill")
        check(0 < counted < len(records), "the job was not killed mid-stream")

        began = time.monotonic()
        code, _ = run_job(
            CONSUMER, consumer_args(broker, *sink_args, "--available-now"), job.state_dir, log, timeout=400
        )
        check(code == 0, f"the restart exited {code} (log: {log})")
        run.note(f"restart on the same checkpoint with --available-now: exit 0 in {time.monotonic() - began:.1f} s")
        ledger = [row["batch_id"] for row in job.ledger()]
        check(len(ledger) == len(set(ledger)), f"a batch is twice in the ledger: {sorted(ledger)}")
        got, want = job.tables(), ground_truth(records)
        tally(run, got, want)
        exact(run, got, want)


# -- 4 ------------------------------------------------------------------------------------------


def low_offsets(broker: LocalBroker, admin: AdminClient | None = None) -> dict[int, int]:
    """Each partition's first offset still stored."""
    admin = admin or AdminClient({"bootstrap.servers": broker.bootstrap})
    partitions = admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
    answers = admin.list_offsets({TopicPartition(TOPIC, p): OffsetSpec.earliest() for p in partitions})
    return {tp.partition: future.result(timeout=10).offset for tp, future in answers.items()}


def settled_low_offsets(broker: LocalBroker, quiet_s: float = 4.0) -> dict[int, int]:
    """The first offsets once retention has deleted all it will (unchanged for ``quiet_s``)."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    lows, since = low_offsets(broker, admin), time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(0.5)
        now = low_offsets(broker, admin)
        if now != lows:
            lows, since = now, time.monotonic()
    return lows


def set_topic_config(broker: LocalBroker, **config: str) -> None:
    """Set topic configs, e.g. ``retention_ms="3000"`` for retention.ms."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    entries = [
        ConfigEntry(name.replace("_", "."), value, incremental_operation=AlterConfigOpType.SET)
        for name, value in config.items()
    ]
    resource = ConfigResource("topic", TOPIC, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=10)


@scenario(4, "retention-shorter-than-pause")
def retention_shorter_than_a_pause(run: Run) -> None:
    """Records age out while the job is stopped: it stops with a clear message, the Consumer page alerts."""
    # The broker checks retention every second (5 minutes by default) so the scenario need not wait.
    with run.broker(extra_properties=(("log.retention.check.interval.ms", "1000"),)) as broker:
        create_topic_on(broker, TopicSpec(TOPIC, partitions=2))
        set_topic_config(broker, segment_ms="500")
        job = Job(run.folder("state"), broker.bootstrap, TOPIC)
        log = run.workdir / "consumer.log"
        read = synthetic_records(1_000, seed=41, start=datetime.now(UTC), minutes=0.5)
        produce(broker.bootstrap, TOPIC, read)
        code, _ = run_job(CONSUMER, consumer_args(broker, "--available-now"), job.state_dir, log)
        check(code == 0, f"the first run exited {code}")
        processed = json.loads(job.query("SELECT end_offsets FROM query_progress ORDER BY batch_id DESC LIMIT 1")[0][0])
        run.note(f"the job read {len(read)} records (up to offsets {processed}) and stopped")

        # The pause: retention drops to 3 s and more records arrive, in pieces 1 s apart (a segment
        # rolls at the first record 500 ms after its own first one, so each piece gets its own).
        set_topic_config(broker, retention_ms="3000")
        paused: list[Record] = []
        for piece in range(6):
            more = synthetic_records(200, seed=50 + piece, start=datetime.now(UTC), minutes=0.01)
            produce(broker.bootstrap, TOPIC, more)
            paused += more
            time.sleep(1)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        waited = wait_until(
            lambda: all(low > processed[str(p)] for p, low in low_offsets(broker, admin).items()),
            120,
            "retention to delete records the job has not read",
        )
        # The user notices and raises retention again: what is gone stays gone, nothing more goes.
        set_topic_config(broker, retention_ms=str(7 * 24 * 3_600_000))
        lows = settled_low_offsets(broker)
        aged_out = sum(low - processed[str(p)] for p, low in lows.items())
        run.note(f"retention 3 s: {aged_out} unread records aged out {waited:.1f} s after the last piece (low {lows})")

        # The dashboard alerts while the job is stopped.
        alert = f"{aged_out:,} records aged out of `{TOPIC}` before the Spark job read them"
        console_page_until(job.state_dir, broker, "pages/consumer.py", lambda text: alert in text)
        run.note(f"Consumer page, job stopped: '{alert}'")

        # The job, started again, does what its --help says: it stops, saying why.
        stored_before = job.query("SELECT SUM(tweets) FROM tweets_per_window")[0][0]
        began = time.monotonic()
        code, _ = run_job(CONSUMER, consumer_args(broker, "--available-now"), job.state_dir, log, timeout=300)
        status = job.status or {}
        error = str(status.get("last_error"))
        run.note(f"restart: exit {code} after {time.monotonic() - began:.1f} s, state {status.get('state')}: {error}")
        check(code == 1 and status.get("state") == "failed", "the job did not stop on records it could not read")
        check("aged out by the topic's retention" in error and "--on-data-loss skip" in error, "unclear message")
        check(job.query("SELECT SUM(tweets) FROM tweets_per_window")[0][0] == stored_before, "it wrote meanwhile")
        console_page_until(
            job.state_dir, broker, "pages/consumer.py", lambda text: alert in text and "--on-data-loss skip" in text
        )
        run.note("Consumer page: the alert and the job's last error")

        # More records come and, told to skip, the job goes on from the earliest records still
        # there: every one of them is counted.
        after = synthetic_records(300, seed=59, start=datetime.now(UTC), minutes=0.1)
        produce(broker.bootstrap, TOPIC, after)
        code, _ = run_job(
            CONSUMER, consumer_args(broker, "--available-now", "--on-data-loss", "skip"), job.state_dir, log
        )
        check(code == 0, f"the run with --on-data-loss skip exited {code}")
        sent = [*read, *paused, *after]
        run.result.sent = run.result.acked = len(sent)
        by_position = {(r.partition, r.offset): r for r in sent}
        kept = [by_position[(p, o)] for p, o in by_position if o >= lows[p] or o < processed[str(p)]]
        got, want = read_tables(job.store), ground_truth(kept)
        tally(run, got, want)
        run.note(
            f"--on-data-loss skip: exit 0; {run.result.stored} tweets counted = {len(read)} read before + "
            f"{len(kept) - len(read)} still in the topic; {aged_out} aged out unread, all reported"
        )
        check(run.result.stored + aged_out == len(sent), "tweets neither counted nor reported as aged out")
        exact(run, got, want)


# -- 5 ------------------------------------------------------------------------------------------


def malformed_keys(seed: int, rate: float, count: int) -> tuple[set[bytes], int]:
    """The keys of the malformed messages among the producer's first ``count`` (same seed, same
    draws) and how many of them have no key: which records were injected, known without parsing."""
    keys, keyless = set(), 0
    source = synthetic_source(SyntheticTweets(seed=seed), rate)
    for _ in range(count):
        item = next(source)
        if item.malformed:
            if item.key is None:
                keyless += 1
            else:
                keys.add(item.key)
    return keys, keyless


@scenario(5, "bad-payloads-1pct")
def one_percent_bad_payloads(run: Run) -> None:
    """1 % of the producer's messages broken (truncated JSON, wrong types, invalid UTF-8, 1 MB values...)."""
    count, seed, rate = 20_000, 5, 0.01
    with run.broker() as broker:
        create_topic_on(broker, TopicSpec(TOPIC, partitions=3))
        state = run.folder("state")
        args = [
            *("--bootstrap", broker.bootstrap, "--count", str(count), "--seed", str(seed)),
            *("--malformed-rate", "0.01", "--rate", "0"),
        ]
        code, summary = run_job("jobs.producer", args, state, run.workdir / "producer.log")
        check(code == 0 and summary is not None, f"the producer exited {code}")
        run.result.sent, run.result.acked = summary["sent"], summary["acked"]
        injected = summary["malformed_sent"]
        keys, keyless = malformed_keys(seed, rate, count)
        check(len(keys) + keyless == injected, f"regenerated {len(keys) + keyless} malformed, producer said {injected}")

        code, _ = run_job(CONSUMER, consumer_args(broker, "--available-now"), state, run.workdir / "consumer.log")
        check(code == 0, f"the consumer exited {code}: it must survive bad payloads")
        job = Job(state, broker.bootstrap, TOPIC)
        on_topic = read_topic(broker.bootstrap, TOPIC, timeout=120)
        bad = [r for r in on_topic if r.key is None or r.key in keys]
        good = [Record(r.key, r.value, r.timestamp_ms, r.partition, r.offset) for r in on_topic if r not in bad]
        dead = {(p, o) for p, o in job.query('SELECT partition, "offset" FROM dead_letters')}
        reasons = dict(job.query("SELECT error, COUNT(*) FROM dead_letters GROUP BY error"))
        biggest = max(len(r.value or b"") for r in bad)
        run.note(
            f"injected {injected} ({len(bad)} on the topic, the largest {biggest:,} bytes); dead letters {len(dead)}"
        )
        run.note("dead letters by reason: " + ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items())))
        check(len(dead) == injected == len(bad), f"{len(dead)} dead letters for {injected} injected")
        check(dead == {(r.partition, r.offset) for r in bad}, "the dead letters are not the injected records")
        got, want = read_tables(job.store), ground_truth(good)
        tally(run, got, want)
        run.result.stored += len(dead)  # kept aside, not lost
        exact(run, got, want)


# -- 6 ------------------------------------------------------------------------------------------


def fingerprint(folder: Path) -> str:
    """A digest of every file's name and content under ``folder``: equal means nothing was written."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@scenario(6, "incompatible-checkpoint")
def incompatible_restart(run: Run) -> None:
    """The grouping (window length) or topic changed against an old checkpoint: refused, nothing written."""
    with run.broker() as broker:
        create_topic_on(broker, TopicSpec(TOPIC, partitions=2))
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
        records = synthetic_records(2_000, seed=61, start=start, minutes=3)
        produce(broker.bootstrap, TOPIC, records)
        run.result.sent = run.result.acked = len(records)
        job = Job(run.folder("state"), broker.bootstrap, TOPIC)
        log = run.workdir / "consumer.log"
        code, _ = run_job(CONSUMER, consumer_args(broker, "--available-now"), job.state_dir, log)
        check(code == 0, f"the first run exited {code}")
        before = fingerprint(job.state_dir)

        for change in (["--window", "30 seconds"], ["--window", "2 minutes"], ["--topic", "tweets-v2"]):
            began = time.monotonic()
            args = [*consumer_args(broker, "--available-now"), *change]
            code, _ = run_job(CONSUMER, args, job.state_dir, run.workdir / "refused.log", timeout=60)
            seconds = time.monotonic() - began
            said = (run.workdir / "refused.log").read_text().strip().splitlines()[-1]
            run.note(f"{' '.join(change)}: exit {code} in {seconds:.1f} s: {said[:160]}…")
            check(code == 2 and "refusing to start" in said, f"{change} was not refused: exit {code}, {said}")
            check(seconds < 15, f"the refusal took {seconds:.1f} s")

        # The console's Start says the same, before it starts anything.
        with console_environment(job.state_dir, broker):
            settings = Settings()
            try:
                check_consumer(ConsumerRequest(topic=TOPIC, window="30 seconds"), settings)
                refused = ""
            except RequestError as error:
                refused = str(error)
        check("refusing to start" in refused and "windows of 60 seconds" in refused, f"the console said: {refused!r}")
        run.note(f"the console's Start: 'Not started: {refused[:120]}…'")
        check(fingerprint(job.state_dir) == before, "a refused start wrote to the store, checkpoint or status file")
        run.note("after 4 refusals the state folder (store, checkpoint, archive, status) is byte for byte the same")

        # The compatible restart goes on, and nothing was counted twice.
        more = synthetic_records(500, seed=62, start=start + timedelta(minutes=3), minutes=1)
        produce(broker.bootstrap, TOPIC, more)
        run.result.sent = run.result.acked = len(records) + len(more)
        code, _ = run_job(CONSUMER, consumer_args(broker, "--available-now"), job.state_dir, log)
        check(code == 0, f"the compatible restart exited {code}")
        got, want = read_tables(job.store), ground_truth([*records, *more])
        tally(run, got, want)
        exact(run, got, want)

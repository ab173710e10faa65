"""The Delta aggregates read through a SQL warehouse: real databricks-sdk -> the workspace stand-in's
statement execution API -> Spark SQL on real local Delta tables, answering as the SQLite store does.

The Delta tables are filled with the rows the job appends for the same BatchResults the SQLite store
is given (``write_batch``): several batches, two of them adding to the same windows, a second query
finding a dead letter again, a batch whose ledger row is not written yet, a batch reported twice.
One Spark session for the module (it takes seconds to start).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient

from backend.aggregates.interfaces import DELTA_TABLES, table_name
from backend.aggregates.records import BatchResult, DeadLetter, KeyCount, Progress, WindowCounts
from backend.aggregates.sqlite_store import AggregatesStore
from backend.aggregates.warehouse_reader import SparkStatementRunner, SqlAggregatesReader
from backend.azure.arm import StepResult
from backend.azure.databricks import workspace_client
from backend.azure.plan_config import TAG_KEY
from backend.azure.warehouse import WarehouseError, WarehouseStatementRunner, ensure_warehouse
from tests.standins.azure_arm import ArmStandIn
from tests.standins.azure_cloud import AzureCloud
from tests.standins.databricks_rest import DatabricksStandIn
from tests.standins.sql_warehouse import SqlWarehouseStandIn, install_sql_warehouse, spark_executor

pytestmark = pytest.mark.timeout(300)

RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/tweetstream-rg"
    "/providers/Microsoft.Databricks/workspaces/tweetstream-databricks"
)
SCHEMA = "sqlwh"
PREFIX = f"{SCHEMA}.tweetstream_"
W1, W2, W3, W4 = (f"2026-11-27T18:0{m}:00Z" for m in range(4))
END = {W1: W2, W2: W3, W3: W4, W4: "2026-11-27T18:04:00Z"}


def windows(*counts: tuple[str, int, int, int, int, float]) -> list[WindowCounts]:
    return [WindowCounts(start, END[start], t, rt, rp, q, s) for start, t, rt, rp, q, s in counts]


def keys(*counts: tuple[str, str, int]) -> list[KeyCount]:
    return [KeyCount(start, key, tweets) for start, key, tweets in counts]


# Two batches of q1 add to W2; q2 (a new checkpoint) adds to W3 and finds a dead letter of q1 again.
BATCHES = [
    BatchResult(
        "q1",
        0,
        windows=windows((W1, 3, 1, 0, 1, 1.5), (W2, 2, 0, 1, 0, -0.25)),
        hashtags=keys((W1, "ai", 2), (W1, "python", 1), (W2, "ai", 1), (W2, "rust", 2)),
        languages=keys((W1, "en", 2), (W1, "de", 1), (W2, "en", 2)),
        late=keys((W1, "", 1)),
        dead_letters=[DeadLetter("tweets", 0, 5, "not JSON", "{oops"), DeadLetter("tweets", 1, 9, "no id", None)],
        max_event_time_ms=1_764_266_500_000,
        watermark_ms=1_764_266_400_000,
    ),
    BatchResult(
        "q1",
        1,
        windows=windows((W2, 4, 2, 0, 1, 1.0), (W3, 1, 0, 0, 0, 0.75)),
        hashtags=keys((W2, "python", 3), (W2, "ai", 1), (W3, "rust", 1), (W3, "zig", 1)),
        languages=keys((W2, "de", 2), (W2, "en", 2), (W3, "fr", 1)),
        late=keys((W2, "", 2)),
        dead_letters=[DeadLetter("tweets", 2, 11, "bad created_at", "x" * 2500)],
        max_event_time_ms=1_764_266_560_000,
        watermark_ms=1_764_266_460_000,
    ),
    BatchResult(
        "q2",
        0,
        windows=windows((W3, 2, 1, 1, 0, -1.0)),
        hashtags=keys((W3, "ai", 2)),
        languages=keys((W3, "en", 2)),
        dead_letters=[DeadLetter("tweets", 0, 5, "not JSON", "{oops"), DeadLetter("tweets", 3, 1, "empty", "")],
        max_event_time_ms=1_764_266_590_000,
        watermark_ms=1_764_266_490_000,
    ),
]
# Rows of a batch the job is still writing (no ledger row yet): a reader must not count them.
HALF_WRITTEN = BatchResult(
    "q2", 1, windows=windows((W4, 50, 0, 0, 0, 5.0)), hashtags=keys((W3, "zig", 99)), late=keys((W3, "", 7))
)
COMMITTED_AT = [1_764_266_505.5, 1_764_266_565.25, 1_764_266_595.125]
PROGRESS = [
    Progress("q1", 0, 8, 4.0, 16.0, 500, {"0": 0}, {"0": 8}, recorded_at=1_764_266_506.0),
    Progress("q1", 1, 7, 3.5, 14.0, 520, {"0": 8}, {"0": 15}, recorded_at=1_764_266_566.0),
    Progress("q2", 0, 9, 1.5, 9.0, 610, {"0": 15, "1": 0}, {"0": 20, "1": 4}, recorded_at=1_764_266_596.0),
    # q2's batch 0 reported again: SQLite keeps the later report.
    Progress("q2", 0, 9, 1.5, 18.0, 300, {"0": 15, "1": 0}, {"0": 20, "1": 4}, recorded_at=1_764_266_597.0),
]
OFFSETS = [  # (sampled_at, topic, partition, low, high)
    (1_764_266_500.0, "tweets", 0, 0, 10),
    (1_764_266_500.0, "tweets", 1, 0, 3),
    (1_764_266_600.5, "tweets", 0, 2, 20),
    (1_764_266_600.5, "tweets", 1, 0, 4),
    (1_764_266_600.5, "tweets", 2, 0, 0),
    (1_764_266_700.0, "other", 0, 0, 1),
]


def delta_rows(result: BatchResult, committed_at: float | None) -> dict[str, list[tuple[Any, ...]]]:
    """The rows the job appends for ``result``, by table (DELTA_TABLES' columns); no ledger row without
    ``committed_at``."""
    q, b = result.query_id, result.batch_id
    rows: dict[str, list[tuple[Any, ...]]] = {
        "tweets_per_window": [(q, b, *asdict(w).values()) for w in result.windows],
        "hashtags_per_window": [(q, b, k.window_start, k.key, k.tweets) for k in result.hashtags],
        "languages_per_window": [(q, b, k.window_start, k.key, k.tweets) for k in result.languages],
        "late_tweets_per_window": [(q, b, k.window_start, k.tweets) for k in result.late],
        "dead_letters": [(q, b, d.topic, d.partition, d.offset, d.error, d.raw) for d in result.dead_letters],
    }
    if committed_at is not None:
        rows["batches"] = [
            (
                q,
                b,
                committed_at,
                sum(w.tweets for w in result.windows),
                sum(k.tweets for k in result.late),
                len(result.dead_letters),
                result.max_event_time_ms,
                result.watermark_ms,
                60_000,
            )
        ]
    return rows


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local session with Delta Lake, and the tables filled (this module's own session, unless one
    with Delta is already running in this process: a JVM's jars cannot change once it runs)."""
    from pyspark.sql import SparkSession

    from backend.runtime.spark import local_spark_session

    folder = tmp_path_factory.mktemp("delta")
    running = SparkSession.getActiveSession()
    if running is not None and "DeltaSparkSessionExtension" not in running.conf.get("spark.sql.extensions", ""):
        pytest.fail(
            "an earlier test module started Spark without Delta Lake, and a running JVM cannot add its jars: "
            "start the shared session with delta=True (tests/integration/conftest.py's spark fixture)"
        )
    session = running or local_spark_session(
        "sql-warehouse-tests", "local[2]", {"spark.sql.warehouse.dir": str(folder / "warehouse")}, delta=True
    )
    session.sql(f"CREATE SCHEMA {SCHEMA} LOCATION '{folder / SCHEMA}'")
    rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in DELTA_TABLES}
    for result, committed_at in [*zip(BATCHES, COMMITTED_AT, strict=True), (HALF_WRITTEN, None)]:
        for table, table_rows in delta_rows(result, committed_at).items():
            rows[table].extend(table_rows)
    rows["query_progress"] = [
        (
            p.query_id,
            p.batch_id,
            p.recorded_at,
            "tweets",
            p.input_rows,
            p.input_rows_per_second,
            p.processed_rows_per_second,
            p.batch_duration_ms,
            json.dumps(p.start_offsets),
            json.dumps(p.end_offsets),
        )
        for p in PROGRESS
    ]
    rows["topic_offsets"] = OFFSETS
    for table, columns in DELTA_TABLES.items():
        # One commit per table: the table is created with its rows.
        session.createDataFrame(rows[table], columns).write.format("delta").saveAsTable(table_name(PREFIX, table))
    try:
        yield session
    finally:
        session.sql(f"DROP SCHEMA {SCHEMA} CASCADE")
        if running is None:
            session.stop()


@pytest.fixture(scope="module")
def sqlite(tmp_path_factory: pytest.TempPathFactory) -> AggregatesStore:
    store = AggregatesStore(tmp_path_factory.mktemp("sqlite") / "aggregates.sqlite")
    store.create()
    for result in BATCHES:
        assert store.write_batch(result)
    for progress in PROGRESS:
        store.record_progress(progress)
    return store


class Workspace:
    def __init__(self, dbx: DatabricksStandIn, sql: SqlWarehouseStandIn, client: WorkspaceClient) -> None:
        self.dbx, self.sql, self.client = dbx, sql, client
        self.warehouse_id, _ = ensure_warehouse(client, "tweetstream-sql")

    def runner(self, timeout_s: float = 60, **options: Any) -> WarehouseStatementRunner:
        return WarehouseStatementRunner(self.client, self.warehouse_id, timeout_s, poll_s=0.02, **options)

    def paths(self, contains: str) -> list[str]:
        return [f"{c.method} {c.path}" for c in self.dbx.calls if contains in c.path]


@pytest.fixture(scope="module")
def workspace(spark: Any) -> Iterator[Workspace]:
    with ArmStandIn() as arm, DatabricksStandIn(arm.token, polls=2) as dbx:
        sql = install_sql_warehouse(dbx, spark_executor(spark))
        client = workspace_client(dbx.url, arm.credential(), RESOURCE_ID, ca_bundle=str(dbx.ca_path))
        yield Workspace(dbx, sql, client)


@pytest.fixture
def ws(workspace: Workspace) -> Iterator[Workspace]:
    """The module's workspace, with the stand-in's defaults back after each test."""
    yield workspace
    workspace.sql.polls, workspace.sql.rows_per_chunk = 0, 1000


# Each read is a Spark job over Delta tables (about a second on this 2-core machine): few, but telling.
RANGES: list[tuple[Any, Any]] = [
    (None, None),
    (datetime(2026, 11, 27, 18, 1, tzinfo=UTC), datetime(2026, 11, 27, 18, 3)),  # W2 and W3, naive = UTC
    ("2026-11-27T18:00:30Z", W3),  # a bound between window starts
]


def assert_same_answers(reader: SqlAggregatesReader, store: AggregatesStore) -> None:
    for since, until in RANGES:
        got, want = reader.windows(since, until), store.windows(since, until)
        assert [(w.window_start, w.window_end, w.tweets, w.retweets, w.replies, w.quotes) for w in got] == [
            (w.window_start, w.window_end, w.tweets, w.retweets, w.replies, w.quotes) for w in want
        ], (since, until)
        assert [w.sentiment_avg for w in got] == pytest.approx([w.sentiment_avg for w in want]), (since, until)
        for limit in (2, -1):
            assert reader.top_hashtags(since, until, limit) == store.top_hashtags(since, until, limit), (limit, since)
        assert reader.languages(since, until) == store.languages(since, until), (since, until)
        assert reader.late_tweets(since, until) == store.late_tweets(since, until), (since, until)
    assert reader.latest_window_start() == store.latest_window_start() == W3
    assert reader.dead_letter_count() == store.dead_letter_count() == 4
    for limit in (3, 20):
        assert reader.dead_letter_sample(limit) == store.dead_letter_sample(limit), limit
    assert reader.progress(100) == store.progress(100)
    assert reader.latest_progress() == store.latest_progress()


def test_reads_through_the_warehouse_equal_the_sqlite_stores(ws: Workspace, sqlite: AggregatesStore) -> None:
    reader = SqlAggregatesReader(ws.runner(), PREFIX, cache_s=0)
    assert_same_answers(reader, sqlite)
    # A few concrete numbers a user would see: W2 holds both q1 batches, W3 q1's and q2's.
    by_start = {w.window_start: w for w in reader.windows()}
    assert by_start[W2].tweets == 6 and by_start[W2].sentiment_avg == pytest.approx(0.75 / 6)
    assert by_start[W3].tweets == 3 and W4 not in by_start  # the batch without its ledger row is not shown
    assert reader.top_hashtags(limit=3) == sqlite.top_hashtags(limit=3)
    assert [r.key for r in reader.top_hashtags(limit=3)] == ["ai", "python", "rust"]
    long_one = next(d for d in reader.dead_letter_sample(-1) if d.offset == 11)
    assert len(long_one.raw or "") == 2000  # cut as the SQLite store cuts it

    # Every value went as a named parameter marker, typed, never inside the statement text.
    bodies = [c.body for c in ws.dbx.calls if c.method == "POST" and c.path == "/api/2.0/sql/statements"]
    assert bodies and all(b["format"] == "JSON_ARRAY" and b["disposition"] == "INLINE" for b in bodies)
    assert all(b["wait_timeout"] == "10s" and b["on_wait_timeout"] == "CONTINUE" for b in bodies)
    ranged = [b for b in bodies if "window_start >= :since" in b["statement"] and "hashtag" in b["statement"]]
    assert any({"name": "since", "value": W2} in b["parameters"] for b in ranged)
    assert all(W2 not in b["statement"] for b in bodies)
    limits = [p for b in bodies for p in b.get("parameters", []) if p["name"] == "limit"]
    # LIMIT takes an INT: a BIGINT marker is cast to BIGINT by the API and Spark refuses it.
    assert limits and all(p["type"] == "INT" for p in limits)


def test_reads_through_a_local_spark_session_equal_the_sqlite_stores(spark: Any, sqlite: AggregatesStore) -> None:
    reader = SqlAggregatesReader(SparkStatementRunner(spark), PREFIX, cache_s=0)
    got = reader.windows(W2)
    assert [(w.window_start, w.tweets, w.quotes) for w in got] == [
        (w.window_start, w.tweets, w.quotes) for w in sqlite.windows(W2)
    ]
    assert reader.top_hashtags(limit=3) == sqlite.top_hashtags(limit=3)
    assert reader.dead_letter_sample() == sqlite.dead_letter_sample()
    assert reader.latest_progress() == sqlite.latest_progress()


def test_topic_offsets_and_the_newest_commit(ws: Workspace) -> None:
    reader = SqlAggregatesReader(ws.runner(), PREFIX)
    assert reader.latest_topic_offsets("tweets") == (1_764_266_600.5, {0: (2, 20), 1: (0, 4), 2: (0, 0)})
    assert reader.latest_topic_offsets("nothing") == (None, {})
    assert reader.newest_commit_at() == max(COMMITTED_AT)


def test_a_missing_table_reads_as_empty(ws: Workspace) -> None:
    reader = SqlAggregatesReader(ws.runner(), f"{SCHEMA}.not_yet_")
    assert reader.windows() == [] and reader.latest_window_start() is None
    assert reader.top_hashtags() == [] and reader.late_tweets() == 0
    assert reader.dead_letter_count() == 0 and reader.latest_progress() is None
    assert reader.latest_topic_offsets("tweets") == (None, {}) and reader.newest_commit_at() is None
    states = {s.state for s in ws.sql.statements.values() if "not_yet_" in s.text}
    assert states == {"FAILED"}  # the warehouse did fail them: the reader read that as "nothing yet"


def test_a_result_in_several_chunks_is_read_whole(ws: Workspace, sqlite: AggregatesStore) -> None:
    ws.sql.rows_per_chunk = 2
    reader = SqlAggregatesReader(ws.runner(), PREFIX, cache_s=0)
    before = len(ws.paths("/result/chunks/"))
    assert reader.languages() == sqlite.languages()  # 4 languages: chunks 0 and 1
    assert reader.dead_letter_sample(-1) == sqlite.dead_letter_sample(-1)  # 4 dead letters
    assert reader.progress() == sqlite.progress()  # 3 reports: 2 chunks
    statement = next(s for s in reversed(ws.sql.statements.values()) if "query_progress" in s.text)
    assert len(statement.rows) == 3
    assert len(ws.paths("/result/chunks/")) - before == 3  # one further chunk per statement


def test_a_statement_polled_until_it_succeeds(ws: Workspace, sqlite: AggregatesStore) -> None:
    ws.sql.polls = 3
    reader = SqlAggregatesReader(ws.runner(wait_timeout_s=0), PREFIX, cache_s=0)
    assert [(w.window_start, w.tweets) for w in reader.windows()] == [(W1, 3), (W2, 6), (W3, 3)]
    statement = next(s for s in reversed(ws.sql.statements.values()) if "tweets_per_window" in s.text)
    assert statement.gets == 3 and statement.state == "SUCCEEDED"


def test_a_statement_pending_past_the_deadline_is_cancelled_with_a_clear_error(ws: Workspace) -> None:
    ws.sql.polls = 10**9  # never ends (a warehouse still starting)
    reader = SqlAggregatesReader(ws.runner(timeout_s=0.5, wait_timeout_s=0), PREFIX)
    with pytest.raises(WarehouseError) as caught:
        reader.windows()
    assert caught.value.error_code == "DEADLINE_EXCEEDED"
    assert "after 0.5 s" in str(caught.value) and "may be starting" in str(caught.value)
    assert ws.warehouse_id in str(caught.value)
    statement = list(ws.sql.statements.values())[-1]
    assert statement.state == "CANCELED" and statement.gets >= 2 and statement.columns == []  # never ran
    assert ws.paths(f"/api/2.0/sql/statements/{statement.statement_id}/cancel")


def test_a_failed_statement_raises_the_apis_code_and_message(ws: Workspace) -> None:
    runner = ws.runner()
    with pytest.raises(WarehouseError) as caught:
        runner.run(f"SELECT no_such_column FROM {table_name(PREFIX, 'batches')}", {})
    assert caught.value.error_code == "BAD_REQUEST"
    assert "UNRESOLVED_COLUMN" in caught.value.message and "no_such_column" in caught.value.message
    assert "'Project" not in caught.value.message  # Spark's plan is not part of what a user reads


def test_the_warehouse_is_created_once_then_found(ws: Workspace) -> None:
    seen: list[StepResult] = []
    first = ensure_warehouse(ws.client, "tweetstream-reads", seen.append, tag_value="tweetstream-test")
    again = ensure_warehouse(ws.client, "tweetstream-reads", seen.append)
    assert first == (first[0], "created") and again == (first[0], "exists")
    assert [s.status for s in seen] == ["creating", "created", "exists"]
    creates = [c.body for c in ws.dbx.calls if c.method == "POST" and c.path == "/api/2.0/sql/warehouses"]
    assert creates[-1] == {
        "name": "tweetstream-reads",
        "cluster_size": "2X-Small",
        "min_num_clusters": 1,
        "max_num_clusters": 1,
        "auto_stop_mins": 10,
        "enable_serverless_compute": True,
        "warehouse_type": "PRO",
        "tags": {"custom_tags": [{"key": TAG_KEY, "value": "tweetstream-test"}]},
    }
    assert len(creates) == 2  # the module's warehouse and this one
    # It starts by itself (STARTING, then RUNNING on a later get).
    states = [ws.client.warehouses.get(first[0]).state for _ in range(3)]
    assert [s.value for s in states if s] == ["STARTING", "RUNNING", "RUNNING"]


def test_the_whole_cloud_stand_in_serves_a_warehouse_with_the_tests_executor(tmp_path: Path) -> None:
    def executor(statement: str, parameters: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[list[Any]]]:
        return [("n", "LONG"), ("topic", "STRING")], [[str(int(parameters["n"]) * 2), None]]

    with AzureCloud(tmp_path, "tweetstream-kafka", sql_executor=executor) as cloud:
        client = workspace_client(cloud.dbx.url, cloud.arm.credential(), RESOURCE_ID, ca_bundle=str(cloud.ca_bundle))
        warehouse_id, outcome = ensure_warehouse(client, "tweetstream-sql")
        assert outcome == "created"
        assert WarehouseStatementRunner(client, warehouse_id).run("SELECT :n * 2, NULL", {"n": 21}) == [("42", None)]

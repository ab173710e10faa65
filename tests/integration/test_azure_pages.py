"""Every page with the Azure profile (``pipeline_target = "azure"``), in-process with AppTest.

What the pages read is real data on the far side of the stand-ins:
- the Delta tables the real consumer wrote (``python -m jobs.consumer --sink delta``) from tweets on
  the real local broker, served by the SQL warehouse stand-in, which runs each statement the
  console sends (through databricks-sdk) with Spark SQL over those tables;
- Kafka's throughput from the Ambari stand-in (its documented metrics JSON) behind the HDInsight
  gateway, and the end offsets the job sampled into its ``topic_offsets`` table.
The deployment record (workspace, jobs, warehouse, tables) is the one the wizard's build writes
against the stand-ins.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy
import pytest
from streamlit.testing.v1 import AppTest

from backend.aggregates.delta_store import DeltaStore
from backend.aggregates.interfaces import DEFAULT_TABLE_PREFIX, DELTA_TABLES
from backend.azure import wizard
from backend.azure.plan import build_plan
from backend.azure.plan_config import load_config
from backend.azure.wizard import EXAMPLE_PLAN
from backend.kafka.topics import TopicSpec, create_topic
from backend.settings import PROJECT_ROOT, load_settings
from tests.console_server import CHROMIUM, CHROMIUM_ARGS, running_server
from tests.standins.azure_cloud import AzureCloud
from tests.standins.sql_warehouse import spark_executor
from tests.truth import Job, Tables, ground_truth, produce, read_delta_tables, synthetic_records

pytestmark = pytest.mark.timeout(300)

RECORDS = 1500
PLAN = build_plan(load_config(EXAMPLE_PLAN))


@pytest.fixture(scope="module")
def delta_job(kafka_broker, admin, tmp_path_factory) -> tuple[Job, Tables]:
    """The real consumer, --sink delta, over RECORDS synthetic tweets; the ground truth they must give."""
    folder = tmp_path_factory.mktemp("delta-job")
    topic = f"azure-pages-{int(time.time() * 1000)}"
    records = synthetic_records(RECORDS, seed=8, start=datetime(2026, 11, 30, 12, 0, tzinfo=UTC), minutes=20)
    create_topic(admin, TopicSpec(topic, partitions=4))
    produce(kafka_broker.bootstrap, topic, records)
    job = Job(folder / "state", kafka_broker.bootstrap, topic, sink="delta")
    job.run("--available-now", timeout=300)
    truth = ground_truth(records)
    assert read_delta_tables(job.delta_location).windows == truth.windows  # what the pages must show
    return job, truth


@pytest.fixture(scope="module")
def warehouse_spark(spark, delta_job):
    """The tests' Spark session (with Delta) with the job's tables registered under the wizard's table prefix:
    the SQL warehouse's engine."""
    job, _ = delta_job
    # The plan's prefix and the job's are the same (tweetstream_), so the console's statements name these.
    assert PLAN.names.table_prefix == DEFAULT_TABLE_PREFIX
    DeltaStore(spark, PLAN.names.table_prefix, str(job.delta_location)).create()
    yield spark
    for table in DELTA_TABLES:  # the registrations only: the folders stay the job's
        spark.sql(f"DROP TABLE IF EXISTS {PLAN.names.table_prefix}{table}")


@pytest.fixture
def cloud(tmp_path, warehouse_spark) -> Iterator[AzureCloud]:
    with AzureCloud(tmp_path, PLAN.names.hdinsight_cluster, sql_executor=spark_executor(warehouse_spark)) as stand_ins:
        yield stand_ins


def _environment(monkeypatch, tmp_path: Path, cloud: AzureCloud) -> None:
    for name in [n for n in os.environ if n.startswith(("TWEETSTREAM_", "AZURE_"))]:
        monkeypatch.delenv(name)
    for name, value in cloud.console_environment(tmp_path).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def azure_console(monkeypatch, tmp_path, cloud: AzureCloud, delta_job) -> tuple[AzureCloud, Job, Tables]:
    """The wizard's build against the stand-ins, then the Azure profile, with Kafka's metrics scripted."""
    job, truth = delta_job
    _environment(monkeypatch, tmp_path, cloud)
    results = wizard.build(PLAN, load_settings())
    assert results[-1].status != "failed", results[-1].line
    assert results[-1].type == "databricks.sql_warehouse", [r.line for r in results]
    # The wizard's topic is "tweets"; the job above read its own topic: the deployment names that one.
    record = tmp_path / "state" / "azure" / "deployment.json"
    data = json.loads(record.read_text())
    data["topic"] = job.topic
    record.write_text(json.dumps(data))
    monkeypatch.setenv("TWEETSTREAM_PIPELINE_TARGET", "azure")
    cloud.ambari.set_topic_rate(job.topic, messages_per_s=42.0, bytes_per_s=21_000.0)
    return cloud, job, truth


def _run(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    parts = [
        str(getattr(e, "value", ""))
        for kind in ("markdown", "caption", "info", "warning", "error")
        for e in getattr(at, kind)
    ]
    return "\n".join(parts)


def _charts(at: AppTest) -> dict[str, dict]:
    """The page's plotly charts by key: their figure JSON as the browser gets it."""
    charts = {}
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        charts[element.proto.id.rsplit("-", 1)[-1] if not element.key else element.key] = spec
    return charts


def _values(array: Any) -> list[Any]:
    """A plotly figure's array as sent to the browser: a list, or numbers packed as {"dtype", "bdata"}."""
    if isinstance(array, dict) and "bdata" in array:
        return numpy.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def test_the_consumer_page_draws_the_delta_tables_through_the_warehouse(azure_console) -> None:
    cloud, _, truth = azure_console
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.run()
    _run(at, "pages/consumer.py")
    text = _text(at)
    assert "Numbers from Azure" in text, text
    assert "Delta tables tweetstream_*" in text
    assert "Ambari" in text
    tweets = sum(counts[1] for counts in truth.windows.values())
    # "everything": every window the job counted
    at.selectbox(key="consumer-range").set_value("everything").run()
    text = _text(at)
    assert f"{len(truth.windows):,} windows" in text, text
    assert f"{tweets:,} tweets" in text
    charts = _charts(at)
    assert {"chart-windows", "chart-sentiment", "chart-hashtags", "chart-languages"} <= set(charts), set(charts)
    top = Counter()
    for (_, tag), count in truth.hashtags.items():
        top[tag] += count
    bars = charts["chart-hashtags"]["data"][0]
    shown = dict(zip(_values(bars["y"]), _values(bars["x"]), strict=True))
    best_tag, best_count = sorted(top.items(), key=lambda item: (-item[1], item[0]))[0]
    assert shown[best_tag] == best_count
    executed = cloud.sql.executed()
    assert any("tweetstream_tweets_per_window" in statement for statement in executed)
    # The run panel: the consumer job the wizard made, on Databricks.
    assert any("On Azure Databricks" in str(h.value) for h in at.subheader)


def test_the_producer_and_topics_pages_draw_kafka_metrics_from_ambari(azure_console) -> None:
    _, job, _ = azure_console
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.run()
    _run(at, "pages/producer.py")
    deadline = time.monotonic() + 30
    while "42.0" not in str([m.value for m in at.metric]) and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert "42.0" in str([m.value for m in at.metric]), [m.value for m in at.metric]
    assert "Numbers from Azure" in _text(at)
    _run(at, "pages/topics.py")
    text = _text(at)
    assert "Reading messages needs a Kafka connection" in text
    assert job.topic in str([frame.value.to_csv() for frame in at.dataframe]), text
    # The other two pages render on the Azure profile too: Overview says where the numbers come from, and Setup
    # shows the deployment with its warehouse and the target chosen.
    _run(at, "pages/overview.py")
    assert "The pipeline target is **Azure**" in _text(at)
    _run(at, "pages/setup.py")
    assert at.radio(key="azure-pipeline-target").value == "azure"
    where = {row["what"]: row["where"] for row in at.dataframe[-1].value.to_dict("records")}
    assert where["Delta tables"] == "tweetstream_*", where


def test_the_consumer_page_from_delta_in_a_real_browser(azure_console, tmp_path: Path) -> None:
    """The console as a user runs it (streamlit run, Debian's Chromium) with the Azure profile: the Consumer page
    drawn from the Delta tables, saved as test-artifacts/screenshots/consumer-azure-delta.png."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium; make test does)")
    from playwright.sync_api import expect, sync_playwright

    _, _, truth = azure_console
    env = {name: value for name, value in os.environ.items() if name.startswith(("TWEETSTREAM_", "AZURE_"))}
    tweets = sum(counts[1] for counts in truth.windows.values())
    screenshot = PROJECT_ROOT / "test-artifacts" / "screenshots" / "consumer-azure-delta.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with running_server(env, tmp_path / "streamlit.log") as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{server.url}/consumer")
            expect(page.get_by_text("Numbers from Azure")).to_be_visible(timeout=90_000)
            # The default range, the last hour back from the newest window, holds the job's 20 minutes.
            expect(page.get_by_text(f"{len(truth.windows):,} windows")).to_be_visible(timeout=60_000)
            expect(page.get_by_text(f"{tweets:,} tweets")).to_be_visible()
            expect(page.locator(".js-plotly-plot")).to_have_count(4, timeout=60_000)
            expect(page.get_by_test_id("stException")).to_have_count(0)
            height = page.evaluate(
                "() => { const main = document.querySelector('[data-testid=\"stMain\"]');"
                " return Math.max(main ? main.scrollHeight : 0, document.documentElement.scrollHeight); }"
            )
            page.set_viewport_size({"width": 1400, "height": max(1000, int(height))})
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"\nscreenshot {screenshot.relative_to(PROJECT_ROOT)}: {len(truth.windows)} windows, {tweets} tweets")
        finally:
            browser.close()

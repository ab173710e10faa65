"""The pipeline target as an object (backend/console/targets.py) and its job controls
(backend/console/job_controls.py): what pages are handed, and the Start/Stop policy, without services."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from backend.azure import cloud_jobs
from backend.azure.deployment import Deployment, save_deployment
from backend.console import job_controls, targets
from backend.console.job_controls import DatabricksJobControls, LocalJobControls, Outcome
from backend.console.job_requests import RequestError
from backend.console.monitor import KafkaSample, Snapshot
from backend.console.supervisor import JobError, JobView
from backend.settings import Settings

ANSWERING = KafkaSample(reachable=True, sampled_at=1.0)
SILENT = KafkaSample(reachable=False, sampled_at=1.0, error="connection refused")


def view(name: Any, running: bool = False, pid: int | None = None, status: dict | None = None) -> JobView:
    return JobView(name, running, pid, 1_700_000_000.0 if running else None, (), status)


def snapshot(kafka: KafkaSample = ANSWERING, producer: JobView | None = None, consumer: JobView | None = None):
    return Snapshot(
        taken_at=1.0,
        bootstrap="127.0.0.1:9092",
        local_broker=None,
        kafka=kafka,
        producer=producer or view("producer"),
        consumer=consumer or view("consumer"),
        latest_progress=None,
        source="Ambari metrics of HDInsight cluster kafka-1",
    )


def fake_monitor(kafka: KafkaSample, bootstrap_servers: str | None = None) -> Any:
    """What require_kafka reads of a monitor: a fresh sample, and whether the profile names another cluster."""
    return SimpleNamespace(
        refresh=lambda: snapshot(kafka), settings=SimpleNamespace(bootstrap_servers=bootstrap_servers)
    )


class Supervisor:
    """A stand-in for supervisor.start_job/stop_job that records its calls."""

    def __init__(self, started: JobView | None = None, already: bool = False, error: str | None = None) -> None:
        self.started, self.already, self.error = started, already, error
        self.calls: list[tuple[str, list[str]]] = []

    def start_job(self, state_dir: Path, name: Any, arguments: Any) -> tuple[JobView, bool]:
        self.calls.append((name, list(arguments)))
        if self.error is not None:
            raise JobError(self.error)
        assert self.started is not None
        return self.started, self.already

    def stop_job(self, state_dir: Path, name: Any) -> str:
        self.calls.append((name, []))
        return "terminated"


def local(tmp_path: Path, fake: Supervisor) -> LocalJobControls:
    ticks = itertools.count(10.0, 1.5)
    return LocalJobControls(tmp_path, start_job=fake.start_job, stop_job=fake.stop_job, clock=lambda: next(ticks))


# -- the local controls: the Start/Stop policy ------------------------------------------------------


def test_start_refuses_bad_options_and_starts_nothing(tmp_path):
    fake = Supervisor()

    def refused() -> list[str]:
        raise RequestError("replay file not found: missing.jsonl")

    outcome = local(tmp_path, fake).start("producer", refused, fake_monitor(ANSWERING))
    assert outcome == Outcome("error", "Not started: replay file not found: missing.jsonl")
    assert fake.calls == []


@pytest.mark.parametrize(
    ("bootstrap_servers", "what_to_do"),
    [
        (None, "Start the local broker on the Setup page, or check the connection profile there."),
        ("kafka.example:9093", "Check the connection profile on the Setup page."),
    ],
)
def test_start_refuses_while_kafka_does_not_answer(tmp_path, bootstrap_servers, what_to_do):
    fake = Supervisor()
    outcome = local(tmp_path, fake).start("consumer", lambda: [], fake_monitor(SILENT, bootstrap_servers))
    assert outcome.kind == "error"
    assert outcome.headline == f"Not started: Kafka does not answer (connection refused). {what_to_do}"
    assert fake.calls == []


def test_start_says_started_already_running_or_already_ended(tmp_path):
    kafka = fake_monitor(ANSWERING)
    fake = Supervisor(started=view("producer", running=True, pid=42))
    assert local(tmp_path, fake).start("producer", lambda: ["--rate=5"], kafka) == Outcome(
        "success", "Producer started (pid 42)."
    )
    assert fake.calls == [("producer", ["--rate=5"])]
    fake = Supervisor(started=view("consumer", running=True, pid=7))
    assert local(tmp_path, fake).start("consumer", lambda: [], kafka).headline == (
        "Spark job started (pid 7); its first micro-batch follows in about 20 s."
    )
    fake = Supervisor(started=view("producer", running=True, pid=42), already=True)
    assert local(tmp_path, fake).start("producer", lambda: [], kafka) == Outcome(
        "info", "The producer is already running (pid 42)."
    )
    fake = Supervisor(started=view("consumer", status={"state": "finished"}))
    assert local(tmp_path, fake).start("consumer", lambda: [], kafka) == Outcome(
        "success", "The Spark job ran and finished already."
    )


def test_a_job_that_fails_at_start_shows_its_log_under_the_headline(tmp_path):
    fake = Supervisor(error="the producer exited at once (code 2)\nerror: --rate must be >= 0")
    outcome = local(tmp_path, fake).start("producer", lambda: [], fake_monitor(ANSWERING))
    assert outcome == Outcome(
        "error", "Not started: the producer exited at once (code 2)", "error: --rate must be >= 0"
    )
    fake = Supervisor(error="no Java found")
    assert local(tmp_path, fake).start("producer", lambda: [], fake_monitor(ANSWERING)).detail is None


def test_stop_says_how_it_ended_and_how_long_it_took(tmp_path):
    fake = Supervisor()
    assert local(tmp_path, fake).stop("consumer") == Outcome("info", "Spark job terminated after 1.5 s.")
    assert fake.calls == [("consumer", [])]


def test_local_buttons_keep_their_texts_and_keys(tmp_path):
    buttons = LocalJobControls(tmp_path).buttons("consumer")
    assert (buttons.start, buttons.stop, buttons.start_key, buttons.stop_key) == (
        "Start Spark job",
        "Stop Spark job",
        "consumer-start",
        "consumer-stop",
    )
    assert buttons.stopping == "Stopping the Spark job after its current micro-batch…"
    assert LocalJobControls(tmp_path).buttons("producer").stopping == (
        "Stopping the producer (it flushes what Kafka has not acknowledged yet)…"
    )


def test_local_controls_read_the_jobs_from_the_snapshot(tmp_path):
    controls = LocalJobControls(tmp_path)
    current = snapshot(producer=view("producer", running=True, pid=42, status={"state": "running", "pid": 42}))
    assert controls.takes_options and controls.reports_counters and controls.fixed_topic is None
    assert controls.running("producer", current) and not controls.running("consumer", current)
    assert controls.status("consumer", current) == {}
    assert controls.now("consumer", current) == "never started"
    states = controls.states(current)
    assert [(s.heading, s.running) for s in states] == [("**Producer**", True), ("**Spark job**", False)]
    assert states[0].line.startswith("running · pid 42 · since ")


# -- the Databricks controls ------------------------------------------------------------------------

DEPLOYMENT = Deployment(
    subscription="sub",
    resource_group="rg",
    tag_value="t",
    hdinsight_cluster="kafka-1",
    topic="tweets",
    gateway_url="https://kafka-1.azurehdinsight.net",
    bootstrap_servers="10.0.0.4:9092",
    workspace_url="https://adb-1.azuredatabricks.net",
    workspace_resource_id="/subscriptions/sub/workspace",
    cluster_id="c-1",
    jobs={"producer": 11, "consumer": 12},
    warehouse_id="w-1",
    table_prefix="tweetstream_",
)


def test_databricks_controls_start_and_stop_the_wizards_jobs(tmp_path, monkeypatch):
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(
        cloud_jobs, "start", lambda s, d, name: (calls.append(("start", name)), (True, "Started run 5"))[1]
    )
    monkeypatch.setattr(
        cloud_jobs, "stop", lambda s, d, name: (calls.append(("stop", name)), (False, "No run is active"))[1]
    )
    controls = DatabricksJobControls(Settings(state_dir=tmp_path), DEPLOYMENT, ("azure", "test"))
    assert not controls.takes_options and not controls.reports_counters and controls.fixed_topic == "tweets"
    assert controls.start("consumer") == Outcome("success", "Started run 5")
    assert controls.stop("producer") == Outcome("warning", "No run is active")
    assert calls == [("start", "consumer"), ("stop", "producer")]
    assert controls.describe("consumer") == (
        "The consumer job the Azure wizard made (job 12) in workspace `https://adb-1.azuredatabricks.net`, on "
        "cluster `c-1`, topic `tweets` on the HDInsight brokers `10.0.0.4:9092`."
    )
    buttons = controls.buttons("producer")
    assert (buttons.start, buttons.stop, buttons.start_key, buttons.stop_key) == (
        "Start on Databricks",
        "Stop on Databricks",
        "cloud-producer-start",
        "cloud-producer-stop",
    )
    assert controls.status("consumer", snapshot()) is None and controls.now("consumer", snapshot()) is None


def test_the_sidebar_asks_databricks_at_most_every_ten_seconds(tmp_path, monkeypatch):
    asked: list[str] = []

    def job_view(settings, deployment, name):
        asked.append(name)
        return cloud_jobs.CloudJobView(name, deployment.jobs[name], str(deployment.workspace_url), None)

    monkeypatch.setattr(cloud_jobs, "job_view", job_view)
    monkeypatch.setattr(job_controls, "_states_cache", {})
    now = [100.0]
    controls = DatabricksJobControls(Settings(state_dir=tmp_path), DEPLOYMENT, ("azure", "ttl"), clock=lambda: now[0])
    states = controls.states(snapshot())
    assert [(s.heading, s.running, s.line) for s in states] == [
        ("**Producer** (Databricks)", False, "never run"),
        ("**Spark job** (Databricks)", False, "never run"),
    ]
    now[0] += 9.0
    assert controls.states(snapshot()) == states and asked == ["producer", "consumer"]
    now[0] += 1.5
    controls.states(snapshot())
    assert asked == ["producer", "consumer"] * 2


# -- the target -----------------------------------------------------------------------------------


def test_the_description_says_where_the_numbers_come_from(tmp_path):
    here = targets.description(Settings(state_dir=tmp_path, pipeline_target="local"))
    assert (here.title, here.icon, here.kafka_heading) == ("this machine", ":material/computer:", "Kafka broker")
    assert here.browser_unavailable is None and here.overview_note is None
    assert here.kafka_status(snapshot(SILENT)) == (False, "connection refused")
    azure = targets.description(Settings(state_dir=tmp_path, pipeline_target="azure"))
    assert (azure.title, azure.icon, azure.kafka_heading) == (
        "Azure (HDInsight Kafka, Databricks)",
        ":material/cloud:",
        "Kafka (HDInsight)",
    )
    assert "private network" in str(azure.browser_unavailable) and "**Azure**" in str(azure.overview_note)
    # Through Ambari the line names the gateway's metrics, not a bootstrap address the console cannot reach.
    assert azure.kafka_status(snapshot()) == (True, "Ambari metrics of HDInsight cluster kafka-1")
    assert azure.kafka_status(snapshot(SILENT)) == (False, "connection refused")


def test_the_local_target_hands_the_sqlite_store_and_local_processes(tmp_path):
    settings = Settings(state_dir=tmp_path, pipeline_target="local")
    target = targets.active_target(settings)
    assert target.title == "this machine" and str(tmp_path) in target.source
    assert isinstance(target.controls, LocalJobControls) and targets.databricks_controls(settings) is None
    assert target.idle_after_s is None
    assert targets.monitor_key(settings)[-1] == "local"
    # The wizard's jobs, once made, get their panel on the local target too.
    save_deployment(tmp_path, DEPLOYMENT)
    databricks = targets.databricks_controls(settings)
    assert isinstance(databricks, DatabricksJobControls) and databricks.fixed_topic == "tweets"


def test_an_azure_target_without_a_deployment_says_what_to_do(tmp_path):
    settings = Settings(state_dir=tmp_path, pipeline_target="azure")
    with pytest.raises(targets.TargetError, match="has not built the jobs yet"):
        targets.active_target(settings)
    assert targets.description(settings).name == "azure"  # still said, e.g. on the Overview page
    assert targets.on_this_machine(settings).pipeline_target == "local"
    assert targets.on_this_machine(settings).state_dir == settings.state_dir

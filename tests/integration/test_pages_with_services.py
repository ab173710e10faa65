"""The pages with the services running (a real broker, the real jobs): they render what the jobs
do, and their buttons start and stop them (AppTest, in-process; the jobs are real processes)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient
from streamlit.testing.v1 import AppTest

from backend.aggregates.sqlite_store import AggregatesStore
from backend.console import supervisor
from backend.kafka import local_broker
from backend.kafka.local_broker import LocalBroker
from backend.kafka.topics import describe_topic
from backend.settings import PROJECT_ROOT
from tests.support import free_port

HISTORY_TITLES = {
    "Input vs processed rows per second",
    "Batch duration",
    "Operation durations (stacked)",
    "Watermark gap (newest event time minus watermark)",
    "Lag per partition (records)",
}


@pytest.fixture
def app(kafka_broker: LocalBroker, monkeypatch, tmp_path) -> Iterator[AppTest]:
    monkeypatch.setenv("TWEETSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TWEETSTREAM_SECRETS_FILE", str(tmp_path / "secrets.toml"))  # never the developer's
    monkeypatch.setenv("TWEETSTREAM_KAFKA_PORT", str(kafka_broker.port))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_CONTROLLER_PORT", str(kafka_broker.controller_port))
    monkeypatch.delenv("TWEETSTREAM_BOOTSTRAP_SERVERS", raising=False)
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    try:
        yield at
    finally:  # whatever the test did, no job outlives it
        for name in supervisor.JOB_NAMES:
            supervisor.stop_job(tmp_path, name, timeout=60)


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(element.value) for element in getattr(at, kind)]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_setup_creates_the_topic_it_was_asked_for(app, kafka_broker, admin: AdminClient, topic_name):
    app.switch_page("pages/setup.py").run()

    def broker_seen() -> bool:
        app.run()  # the monitor samples Kafka every second
        return any(line.startswith(f"A broker answers at `{bootstrap}`") for line in texts(app, "info"))

    # The session's broker keeps its pid file in its own state directory, not in this console's.
    bootstrap = kafka_broker.bootstrap
    wait_until(broker_seen, 10, "the running broker on the Setup page")
    assert app.button(key="setup-broker-start").disabled
    app.text_input[[t.label for t in app.text_input].index("Name")].input(topic_name)
    app.number_input[[n.label for n in app.number_input].index("Partitions")].set_value(3)
    app.number_input[
        [n.label for n in app.number_input].index("Retention (hours; 0 = the broker's default)")
    ].set_value(2)
    app.button[[b.label for b in app.button].index("Create topic")].click().run()
    assert not app.exception
    assert f"Topic '{topic_name}' created: 3 partitions, replication 1, retention 2 h." in texts(app, "success")
    info = describe_topic(admin, topic_name)
    assert len(info.partitions) == 3 and info.retention_ms == 2 * 3_600_000

    app.button[[b.label for b in app.button].index("Create topic")].click().run()
    assert any("already exists" in line for line in texts(app, "error")), texts(app, "error")


def test_producer_page_starts_shows_and_stops_the_producer(app, topic_name, tmp_path):
    app.switch_page("pages/producer.py").run()
    app.text_input(key="producer-topic").input(topic_name)
    app.number_input(key="producer-rate").set_value(200.0)
    app.button(key="producer-start").click().run()
    assert not app.exception
    assert any(line.startswith("Producer started (pid ") for line in texts(app, "success")), texts(app, "error")
    view = supervisor.job_view(tmp_path, "producer")
    assert view.running

    # A second Start (another tab) finds it running: the button is disabled here, the backend says so.
    again, already = supervisor.start_job(tmp_path, "producer", ["--topic", topic_name])
    assert already and again.pid == view.pid

    def acked_on_page() -> int:
        app.run()  # what a user sees at each refresh (the monitor samples every second)
        return int(metric(app, "Acknowledged (events)").replace(",", "")) >= 400

    wait_until(acked_on_page, 60, "400 acknowledged events on the page")
    shown = f"{metric(app, 'Acknowledged (events)')} acknowledged events, {metric(app, 'Now (events/s)')} events/s"
    print(f"the page showed {shown}")
    assert float(metric(app, "Now (events/s)").replace(",", "")) > 0
    assert app.get("arrow_data_frame") or app.dataframe, "no sample of the latest messages"
    assert any(s.value.startswith("Now: running · pid ") for s in app.subheader)

    app.button(key="producer-stop").click().run()
    assert not app.exception
    assert any(line.startswith("Producer terminated after ") for line in texts(app, "info")), texts(app, "info")
    assert any(s.value == "Now: stopped" for s in app.subheader)
    status = supervisor.job_view(tmp_path, "producer").status
    assert status["acked"] == status["sent"] and status["failed"] == 0
    log = "\n".join(supervisor.log_tail(tmp_path, "producer"))
    assert "stop requested by the console: terminated" in log


def test_consumer_page_starts_the_spark_job_charts_its_aggregates_and_stops_it(app, topic_name, tmp_path):
    # Tweets first: 3 000 synthetic ones, as fast as the producer goes.
    supervisor.start_job(
        tmp_path, "producer", ["--topic", topic_name, "--create-topic", "--count", "3000", "--rate", "0"]
    )
    wait_until(lambda: (supervisor.job_view(tmp_path, "producer").status or {}).get("state") == "finished", 60, "3000")

    app.switch_page("pages/consumer.py").run()
    app.text_input(key="consumer-topic").input(topic_name)
    app.text_input(key="consumer-trigger").input("1 second")
    app.button(key="consumer-start").click().run()
    assert not app.exception
    assert any(line.startswith("Spark job started (pid ") for line in texts(app, "success")), texts(app, "error")

    store = AggregatesStore(tmp_path / "aggregates.sqlite")
    wait_until(lambda: sum(w.tweets for w in store.windows()) == 3000, 180, "3000 tweets in the store")

    def progress_on_page() -> bool:
        app.run()  # what a user sees at each refresh (the monitor samples every second)
        return any(m.label == "Processed (rows/s)" for m in app.metric)

    wait_until(progress_on_page, 30, "the job's progress on the page")
    assert not app.exception
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in app.get("plotly_chart")]
    # The job's history from its progress records first, then the four charts of what the tweets say.
    history = [title for title in titles if title in HISTORY_TITLES]
    assert history[:2] == ["Input vs processed rows per second", "Batch duration"], titles
    assert len(titles) - len(history) == 4, titles
    downloads = [d for d in app.get("download_button")]
    assert len(downloads) == 4
    assert float(metric(app, "Processed (rows/s)").replace(",", "")) > 0
    lag = next(frame for frame in app.dataframe if "lag (records)" in frame.value.columns).value
    print(lag.to_string())
    assert lag["lag (records)"].sum() == 0 and lag["end offset"].sum() == 3000
    assert any(line.startswith("Total lag: 0 records") for line in texts(app, "caption"))

    app.button(key="consumer-stop").click().run()
    assert any(line.startswith("Spark job terminated after ") for line in texts(app, "info")), texts(app, "info")
    assert supervisor.job_view(tmp_path, "consumer").state == "stopped"


def test_topics_page_lists_the_topic_and_browses_its_messages(app, topic_name, tmp_path):
    supervisor.start_job(tmp_path, "producer", ["--topic", topic_name, "--create-topic", "--count", "120"])
    wait_until(lambda: (supervisor.job_view(tmp_path, "producer").status or {}).get("state") == "finished", 60, "120")

    app.switch_page("pages/topics.py").run()

    def topic_row() -> tuple[int, int] | None:
        """(partitions, messages) in the topic's row, or None while the page has no such row."""
        app.run()
        for frame in app.dataframe:
            if "messages" in frame.value.columns and "topic" in frame.value:
                rows = frame.value[frame.value["topic"] == topic_name]
                if not rows.empty:
                    return int(rows.iloc[0]["partitions"]), int(rows.iloc[0]["messages"])
        return None

    # The monitor samples the watermarks every second, in the background: a redraw may still show the
    # sample taken while the producer was sending (100 a second by default); the next ones catch up.
    deadline = time.monotonic() + 15
    shown = topic_row()
    while shown != (4, 120) and time.monotonic() < deadline:
        time.sleep(0.5)
        shown = topic_row()
    assert shown == (4, 120), f"the topic's row shows (partitions, messages) = {shown}"

    app.selectbox(key="browse-topic").set_value(topic_name)
    app.button[[b.label for b in app.button].index("Read messages")].click().run()
    assert not app.exception
    assert any(line.startswith("50 messages read") for line in texts(app, "caption")), texts(app, "caption")
    assert len(app.expander) >= 50
    assert '"data"' in app.code[0].value


def test_a_cluster_profile_is_tested_and_saved_and_event_hubs_strings_stay_masked(app, kafka_broker, tmp_path):
    app.switch_page("pages/setup.py").run()
    app.radio[[r.label for r in app.radio].index("Connect to")].set_value("cluster").run()
    app.text_input[[t.label for t in app.text_input].index("Bootstrap servers (host:port, comma-separated)")].input(
        kafka_broker.bootstrap
    ).run()
    app.button(key="setup-test").click().run()
    assert not app.exception
    assert any(kafka_broker.bootstrap in line for line in texts(app, "success")), texts(app, "error")

    app.button(key="setup-save").click().run()
    assert "Saved. Jobs started from now on use this profile; running jobs keep theirs." in texts(app, "success")
    assert f'bootstrap_servers = "{kafka_broker.bootstrap}"' in (tmp_path / "secrets.toml").read_text()
    assert any(line.startswith("Active: **cluster** · `" + kafka_broker.bootstrap) for line in texts(app, "caption"))

    key = "c2VjcmV0LWNhbmFyeS1rZXk="
    app.radio[[r.label for r in app.radio].index("Connect to")].set_value("eventhubs").run()
    field = next(t for t in app.text_input if t.label.startswith("Event Hubs connection string"))
    field.input(
        f"Endpoint=sb://tweets-ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey={key};EntityPath=tweets"
    ).run()
    assert not app.exception
    assert (
        "Kafka endpoint `tweets-ns.servicebus.windows.net:9093`, SASL_SSL/PLAIN; event hub (topic) `tweets`"
        in texts(app, "caption")
    )
    rendered = [
        str(element.value)
        for kind in ("caption", "markdown", "success", "error", "info")
        for element in getattr(app, kind)
    ]
    assert not any(key in line for line in rendered)


def test_setup_starts_and_stops_a_local_broker(monkeypatch, tmp_path):
    port, controller_port = free_port(), free_port()
    monkeypatch.setenv("TWEETSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TWEETSTREAM_SECRETS_FILE", str(tmp_path / "secrets.toml"))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_PORT", str(port))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_CONTROLLER_PORT", str(controller_port))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_HEAP", "256m")
    broker = LocalBroker(state_dir=tmp_path, port=port, controller_port=controller_port)
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=150)
    app.switch_page("pages/setup.py").run()
    try:
        app.button(key="setup-broker-start").click().run()
        assert not app.exception
        started = [line for line in texts(app, "success") if line.startswith("Broker started at `127.0.0.1:")]
        assert started, texts(app, "success") + texts(app, "error") + [c.value for c in app.code]
        print(started[0])
        assert any(line.startswith(f"Running at `127.0.0.1:{port}` (pid ") for line in texts(app, "success"))
        assert local_broker.status(broker).running
        assert app.button(key="setup-broker-stop").disabled is False

        app.button(key="setup-broker-stop").click().run()
        stopped = [line for line in texts(app, "info") if line.startswith("Broker terminated after ")]
        assert stopped, texts(app, "info")
        print(stopped[0])
        assert not local_broker.status(broker).running
    finally:
        local_broker.stop(broker)

"""Every page renders with the services stopped, and its buttons reach the backend (AppTest, in-process).

The broker is stopped here (nothing listens on the configured port): Start buttons must refuse
with a message that says what to do, and start nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from backend.runtime.job_files import JobFiles
from backend.settings import PROJECT_ROOT
from tests.support import free_port

PAGES = ["pages/overview.py", "pages/setup.py", "pages/producer.py", "pages/consumer.py", "pages/topics.py"]


@pytest.fixture
def app(monkeypatch, tmp_path) -> Iterator[AppTest]:
    monkeypatch.setenv("TWEETSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TWEETSTREAM_SECRETS_FILE", str(tmp_path / "secrets.toml"))  # never the developer's
    monkeypatch.setenv("TWEETSTREAM_KAFKA_PORT", str(free_port()))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_CONTROLLER_PORT", str(free_port()))
    monkeypatch.delenv("TWEETSTREAM_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    yield at


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(element.value) for element in getattr(at, kind)]


def test_the_sidebar_shows_the_broker_and_both_jobs_stopped(app):
    sidebar = [element.value for element in app.sidebar.warning] + [element.value for element in app.sidebar.info]
    assert any(line.startswith("local broker stopped (127.0.0.1:") for line in sidebar), sidebar
    assert sidebar.count("never started") == 2
    # A broker never started, nothing running: stopped, but no alert (the Overview says what to start).
    assert not [element.value for element in app.sidebar.error]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_the_services_stopped(app, page):
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.title, f"{page} shows no title"


def test_setup_shows_the_checks_with_their_fixes_and_the_stopped_broker(app, tmp_path):
    app.switch_page("pages/setup.py").run()
    checks = texts(app, "success") + texts(app, "error")
    for name in ("Java", "Maven", "Kafka broker jars", "Spark Kafka connector jars"):
        assert any(f"**{name}**" in line for line in checks), checks
    assert any(line.startswith("Stopped. It will listen on `127.0.0.1:") for line in texts(app, "warning"))
    assert app.button(key="setup-broker-start").disabled is False
    assert app.button(key="setup-broker-stop").disabled is True


def test_producer_start_refuses_a_missing_replay_file_and_starts_nothing(app, tmp_path):
    app.switch_page("pages/producer.py").run()
    app.radio(key="producer-source").set_value("replay").run()
    app.text_input(key="producer-path").input(str(tmp_path / "missing.jsonl")).run()
    app.button(key="producer-start").click().run()
    assert not app.exception
    assert any(
        line.startswith("Not started: replay file not found:") and "missing.jsonl" in line
        for line in texts(app, "error")
    ), texts(app, "error")
    assert not JobFiles(tmp_path, "producer").pid_file.exists()


def test_producer_start_refuses_while_kafka_does_not_answer(app, tmp_path):
    app.switch_page("pages/producer.py").run()
    app.button(key="producer-start").click().run()
    errors = texts(app, "error")
    assert any("Kafka does not answer" in line and "Setup page" in line for line in errors), errors
    assert not JobFiles(tmp_path, "producer").pid_file.exists()


def test_the_x_source_says_whether_a_token_is_set_never_its_value(app, monkeypatch):
    app.switch_page("pages/producer.py").run()
    app.radio(key="producer-source").set_value("x").run()
    assert any("No X API bearer token is set" in line for line in texts(app, "warning"))

    secret = "AAAA-canary-token-0123456789"
    monkeypatch.setenv("X_BEARER_TOKEN", secret)
    app.run()
    assert any("An X API bearer token is set" in line for line in texts(app, "success"))
    assert secret not in str(app._tree)


def test_consumer_start_refuses_a_window_longer_than_a_day(app, tmp_path):
    app.switch_page("pages/consumer.py").run()
    app.text_input(key="consumer-window").input("2 days").run()
    app.button(key="consumer-start").click().run()
    assert "Not started: --window must be at most 1 day (got '2 days')" in texts(app, "error")
    assert not JobFiles(tmp_path, "consumer").pid_file.exists()


def test_consumer_page_says_there_is_nothing_yet(app):
    app.switch_page("pages/consumer.py").run()
    assert "No aggregates yet: start the producer and the Spark job." in texts(app, "info")
    assert "No micro-batch recorded yet." in texts(app, "caption")


def test_topics_page_says_the_broker_is_stopped(app):
    app.switch_page("pages/topics.py").run()
    assert any(line.startswith("Kafka: local broker stopped") for line in texts(app, "warning"))


def test_consumer_page_charts_the_store_and_shows_a_hashtag_as_text_not_markup(app, tmp_path):
    from backend.aggregates.records import BatchResult, DeadLetter, KeyCount, Progress, WindowCounts
    from backend.aggregates.sqlite_store import AggregatesStore

    store = AggregatesStore(tmp_path / "aggregates.sqlite")
    store.create()
    start, end = "2026-11-27T18:00:00Z", "2026-11-27T18:01:00Z"
    store.write_batch(
        BatchResult(
            query_id="q",
            batch_id=0,
            windows=[WindowCounts(start, end, 3, 1, 0, 0, 0.5)],
            hashtags=[KeyCount(start, '<a href="https://phish.example">login</a>', 2), KeyCount(start, "azure", 1)],
            languages=[KeyCount(start, "en", 3)],
            dead_letters=[DeadLetter("tweets", 0, 7, "not JSON", "<b>{oops")],
            max_event_time_ms=1_795_802_460_000,
            watermark_ms=1_795_802_340_000,  # 2 minutes behind: the watermark gap chart's point
        )
    )
    now = time.time()
    for batch in range(6):  # the job's progress reports, the last minute: the history charts
        store.record_progress(
            Progress(
                "q", batch, 40, 20.0, 25.0, 1500, {"0": batch * 40}, {"0": batch * 40 + 40}, now - 60 + batch * 2,
                latest_offsets={"0": batch * 40 + 45}, durations_ms={"addBatch": 1200, "walCommit": 40},
            )
        )  # fmt: skip
    app.switch_page("pages/consumer.py").run()
    assert not app.exception
    assert "6 batches shown, from batch 0 to 5." in texts(app, "caption")
    assert any(
        line.startswith("1 windows from 2026-11-27 18:00 to 2026-11-27 18:00 UTC; 3 tweets")
        for line in texts(app, "caption")
    )
    charts = {chart.proto.id: chart.proto.spec for chart in app.get("plotly_chart")}
    titles = [json.loads(spec)["layout"]["title"]["text"] for spec in charts.values()]
    assert titles[:5] == [
        "Input vs processed rows per second",
        "Batch duration",
        "Operation durations (stacked)",
        "Watermark gap (newest event time minus watermark)",
        "Lag per partition (records)",
    ]
    assert len(charts) == 9
    lag = json.loads(next(spec for spec in charts.values() if "Lag per partition" in spec))
    assert lag["data"][0]["name"] == "partition 0" and lag["layout"]["yaxis"]["title"]["text"] == "lag (records)"
    gap = json.loads(next(spec for spec in charts.values() if "Watermark gap" in spec))
    assert gap["layout"]["yaxis"]["title"]["text"] == "gap (s)" and len(gap["data"][0]["x"]) == 1
    hashtags = json.loads(next(spec for spec in charts.values() if "Top 20 hashtags" in spec))
    # Escaped, plotly shows the characters as typed instead of drawing a link.
    assert hashtags["data"][0]["y"] == ["&lt;a href=&quot;https://phish.example&quot;&gt;login&lt;/a&gt;", "azure"]
    assert "**Dead letters** (records that break the message contract): 1" in [m.value for m in app.markdown]
    dead = next(frame.value for frame in app.dataframe if "reason" in frame.value.columns)
    assert dead.to_dict("records") == [{"partition": 0, "offset": 7, "reason": "not JSON", "value (start)": "<b>{oops"}]
    assert len(app.get("download_button")) == 4


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("producer-count", -5, "--count must be at least 1"),
        ("producer-malformed", 1.5, "--malformed-rate must be between 0 and 1"),
    ],
)
def test_producer_values_out_of_range_are_refused_not_replaced(app, tmp_path, key, value, said):
    """Streamlit's min_value would keep the last valid value under one typed out of range, and Start
    would run with it; without it the producer's own check refuses the value typed."""
    app.switch_page("pages/producer.py").run()
    app.number_input(key=key).set_value(value).run()
    app.button(key="producer-start").click().run()
    errors = texts(app, "error")
    assert any(line.startswith("Not started:") and said in line for line in errors), errors
    assert not JobFiles(tmp_path, "producer").pid_file.exists()


def test_an_azure_target_without_a_deployment_says_so_and_setup_still_works(app, monkeypatch):
    # The profile says "azure", but the wizard built nothing (or it was torn down): every page says why it
    # cannot read, and Setup, where the target is changed, still renders with this machine's state.
    monkeypatch.setenv("TWEETSTREAM_PIPELINE_TARGET", "azure")
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60)  # a fresh session: the new profile
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    sidebar = texts(at.sidebar, "warning")
    assert any("has not built the jobs yet" in line for line in sidebar), sidebar
    at.switch_page("pages/consumer.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("cannot read the pipeline's numbers" in line for line in texts(at, "error")), texts(at, "error")
    at.switch_page("pages/setup.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("this page watches this machine meanwhile" in line for line in texts(at, "warning"))
    assert at.button(key="setup-broker-start").disabled is False


def test_setup_asks_again_for_a_saved_password_when_the_form_points_elsewhere(app, tmp_path):
    # Issue 19, item 2: the saved SASL password went to whatever bootstrap servers were typed next.
    from backend.kafka.connection import ConnectionProfile, save_profile

    saved = ConnectionProfile(
        bootstrap_servers="127.0.0.1:9",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="tweetstream",
        sasl_password="saved-canary",
    )
    save_profile(saved, tmp_path / "secrets.toml")
    app.switch_page("pages/setup.py").run()
    labels = [t.label for t in app.text_input]
    assert "SASL password (one is saved; leave empty to keep it)" in labels, labels  # same servers: kept
    assert app.button(key="setup-test").disabled is False

    servers = next(t for t in app.text_input if t.label == "Bootstrap servers (host:port, comma-separated)")
    servers.input("attacker.example:9092").run()
    assert not app.exception
    assert app.button(key="setup-test").disabled is True  # nothing to send the saved password with
    assert [w.value for w in app.warning if "saved password is not used" in w.value] == [
        "The saved password is not used: the bootstrap servers differ from those it was saved with, "
        "and it goes only where it was saved for. Type the password for this cluster."
    ]
    assert "saved-canary" not in str(app)

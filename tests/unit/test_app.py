"""The console renders (Streamlit's AppTest runs app.py and its pages in-process)."""

import pytest
from streamlit.testing.v1 import AppTest

from backend.settings import PROJECT_ROOT


@pytest.fixture
def app(monkeypatch, tmp_path) -> AppTest:
    monkeypatch.setenv("TWEETSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_PORT", "19092")
    return AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=30)


def test_overview_says_what_the_console_is_and_that_the_broker_is_stopped(app, tmp_path):
    app.run()
    assert not app.exception
    assert app.title[0].value == "Tweet stream console"
    assert "X / Twitter → Apache Kafka → Apache Spark Structured Streaming" in app.markdown[0].value
    warnings = [w.value for w in app.main.warning]
    broker = next(w for w in warnings if w.startswith("Stopped"))
    assert "127.0.0.1:19092" in broker and "Start demo pipeline" in broker
    assert any(str(tmp_path / "kafka") in c.value for c in app.caption)
    # The pipeline's diagram, with a line and a fix for each stopped hop, and the one-click start.
    [chart] = app.get("graphviz_chart")
    assert chart.proto.spec.startswith("digraph pipeline {") and "Spark job" in chart.proto.spec
    assert "**producer**: The producer is not running" in " ".join(warnings)
    assert app.button(key="overview-fix-producer").label == "Start producer"
    assert app.button(key="overview-fix-consumer").label == "Start Spark job"
    assert app.button(key="overview-demo-start").disabled is False
    assert app.button(key="overview-demo-stop").disabled is True

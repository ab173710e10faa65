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
    assert "Stopped" in app.warning[0].value
    assert "127.0.0.1:19092" in app.warning[0].value
    assert str(tmp_path / "kafka") in app.caption[0].value

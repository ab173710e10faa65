from streamlit.testing.v1 import AppTest

from backend.settings import PROJECT_ROOT


def test_overview_shows_the_running_broker(kafka_broker, monkeypatch):
    monkeypatch.setenv("TWEETSTREAM_STATE_DIR", str(kafka_broker.state_dir))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_PORT", str(kafka_broker.port))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_CONTROLLER_PORT", str(kafka_broker.controller_port))
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=30)
    app.run()
    assert not app.exception
    assert app.success[0].value.startswith(f"Running at `{kafka_broker.bootstrap}` (pid ")

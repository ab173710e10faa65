import pytest
from pydantic import ValidationError

from backend.kafka.clients import client_config
from backend.settings import PROJECT_ROOT, Settings, load_settings

pytestmark = pytest.mark.usefixtures("no_outside_settings")


def test_defaults_are_the_local_broker():
    settings = Settings()
    assert settings.state_dir == PROJECT_ROOT / ".state"
    assert settings.bootstrap == "127.0.0.1:9092"
    assert client_config(settings) == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "PLAINTEXT"}


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("TWEETSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_PORT", "19092")
    settings = Settings()
    assert settings.state_dir == tmp_path
    assert settings.bootstrap == "127.0.0.1:19092"


def test_secrets_toml_is_read_and_the_environment_wins(monkeypatch, tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        'bootstrap_servers = "kafka-1.example:9093"\n'
        'kafka_security_protocol = "SASL_SSL"\n'
        'kafka_sasl_mechanism = "SCRAM-SHA-512"\n'
        'kafka_sasl_username = "console"\n'
        'kafka_sasl_password = "s3cr3t-canary"\n'
        "[connections.other]\nkey = 1\n"
    )

    monkeypatch.setenv("TWEETSTREAM_SECRETS_FILE", str(secrets))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_SASL_USERNAME", "from-env")
    settings = Settings()
    assert settings.bootstrap == "kafka-1.example:9093"
    assert settings.kafka_sasl_username == "from-env"
    config = client_config(settings)
    assert config["sasl.password"] == "s3cr3t-canary"
    assert config["security.protocol"] == "SASL_SSL"
    # The secret never shows in a repr (logs, tracebacks, st.write of the settings).
    assert "s3cr3t-canary" not in repr(settings)
    assert "s3cr3t-canary" not in str(settings.model_dump())


def test_wrong_settings_are_refused_with_the_reason(monkeypatch):
    monkeypatch.setenv("TWEETSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="needs kafka_sasl_mechanism, kafka_sasl_username, kafka_sasl_password"):
        Settings()
    monkeypatch.delenv("TWEETSTREAM_KAFKA_SECURITY_PROTOCOL")
    monkeypatch.setenv("TWEETSTREAM_KAFKA_CONTROLLER_PORT", "9092")
    with pytest.raises(ValidationError, match="must differ"):
        Settings()
    monkeypatch.setenv("TWEETSTREAM_KAFKA_CONTROLLER_PORT", "70000")
    with pytest.raises(ValidationError, match="less than or equal to 65535"):
        Settings()


def test_x_bearer_token_is_read_under_xs_own_name_and_masked(monkeypatch, tmp_path):
    assert Settings().x_bearer_token is None
    monkeypatch.setenv("X_BEARER_TOKEN", "x-canary-token")
    settings = Settings()
    assert settings.x_bearer_token is not None
    assert settings.x_bearer_token.get_secret_value() == "x-canary-token"
    assert "x-canary-token" not in repr(settings)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('x_bearer_token = "from-file"\n')
    monkeypatch.delenv("X_BEARER_TOKEN")

    monkeypatch.setenv("TWEETSTREAM_SECRETS_FILE", str(secrets))
    assert Settings().x_bearer_token.get_secret_value() == "from-file"


def test_the_alert_webhook_url_is_a_secret_and_must_be_http(monkeypatch, tmp_path):
    monkeypatch.setenv("TWEETSTREAM_SECRETS_FILE", str(tmp_path / "none.toml"))
    monkeypatch.setenv("TWEETSTREAM_ALERT_WEBHOOK_URL", "https://hooks.example/services/T0/B0/token123")
    settings = load_settings()
    assert settings.alert_webhook_url.get_secret_value().endswith("token123")
    assert "token123" not in repr(settings)
    monkeypatch.setenv("TWEETSTREAM_ALERT_WEBHOOK_URL", "ftp://hooks.example/token123")
    with pytest.raises(ValidationError, match="alert_webhook_url must be an http") as refused:
        load_settings()
    assert "token123" not in str(refused.value)

"""The console's settings: one typed object, read from the environment and secrets.toml.

Environment variables carry the prefix ``TWEETSTREAM_`` (``TWEETSTREAM_STATE_DIR``,
``TWEETSTREAM_KAFKA_PORT``...). The same names without the prefix may be set as top-level
keys of ``.streamlit/secrets.toml``; the environment wins over the file. Secrets are
``SecretStr``: their value never shows in a repr, a log line or an exception.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRETS_FILE = PROJECT_ROOT / ".streamlit" / "secrets.toml"


def secrets_file() -> Path:
    """The secrets file settings are read from (and the Setup page saves profiles to):
    ``TWEETSTREAM_SECRETS_FILE`` when set (tests, a second console), else .streamlit/secrets.toml."""
    return Path(os.environ.get("TWEETSTREAM_SECRETS_FILE") or SECRETS_FILE)


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TWEETSTREAM_",
        extra="ignore",
        frozen=True,
        # A validation error must not print what was given: it may be a password.
        hide_input_in_errors=True,
    )

    state_dir: Path = Field(
        default=PROJECT_ROOT / ".state",
        description="Where the broker's data and every job's pid, log and status files live.",
    )

    # Where the pipeline runs, and so where the console reads its numbers (backend/console/targets.py):
    # "local": the jobs on this machine (or any Kafka the console reaches), the SQLite store and Kafka's
    # admin client; "azure": the jobs the Azure wizard made on Databricks, their Delta tables through the
    # SQL warehouse and Kafka's metrics through the HDInsight cluster's Ambari.
    pipeline_target: Literal["local", "azure"] = "local"
    # The local broker (target "local"): one KRaft node on the loopback interface.
    kafka_host: str = "127.0.0.1"
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    kafka_heap: str = Field(default="1g", pattern=r"^\d+[mg]$", description="JVM heap of the local broker.")

    # Any other cluster (target "bring your own"). Empty: the local broker.
    bootstrap_servers: str = ""
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None

    # The X API (the producer's "x" source). The token is read from X_BEARER_TOKEN, the
    # name X's own documentation uses; the base URL is changed only to reach a stand-in.
    x_bearer_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("X_BEARER_TOKEN", "TWEETSTREAM_X_BEARER_TOKEN", "x_bearer_token")
    )
    x_api_base_url: str = Field(default="https://api.x.com", pattern=r"^https?://")

    # Azure (the Setup page's Azure section). A service principal is read from the names Azure's SDK
    # documents (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET); without all three the wizard
    # signs in with DefaultAzureCredential. The endpoints and CA bundle are changed only to reach a stand-in.
    azure_tenant_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AZURE_TENANT_ID", "TWEETSTREAM_AZURE_TENANT_ID", "azure_tenant_id"),
    )
    azure_client_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AZURE_CLIENT_ID", "TWEETSTREAM_AZURE_CLIENT_ID", "azure_client_id"),
    )
    azure_client_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AZURE_CLIENT_SECRET", "TWEETSTREAM_AZURE_CLIENT_SECRET", "azure_client_secret"),
    )
    azure_subscription_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "AZURE_SUBSCRIPTION_ID", "TWEETSTREAM_AZURE_SUBSCRIPTION_ID", "azure_subscription_id"
        ),
    )
    azure_authority_host: str = Field(default="https://login.microsoftonline.com", pattern=r"^https://")
    azure_arm_endpoint: str = Field(default="https://management.azure.com", pattern=r"^https://")
    azure_ca_bundle: Path | None = None
    # Seconds between polls of a long-running ARM operation when ARM gives no Retry-After (the SDK's 30).
    azure_polling_interval_s: float = Field(default=30.0, ge=0)
    # The HDInsight cluster's logins: the cluster (gateway, Ambari) login "admin" and the SSH login
    # "sshuser". Unset: the wizard makes strong ones and saves them to the secrets file before it
    # creates the cluster, so a rerun (and Ambari later) uses the same.
    azure_hdinsight_password: SecretStr | None = None
    azure_hdinsight_ssh_password: SecretStr | None = None

    # The console's password: what it asks for when it listens beyond the loopback interface and
    # st.login is not configured (backend/console/exposure.py). Unset: such a console refuses to serve.
    console_password: SecretStr | None = None
    # With st.login (OIDC): who may use the console, as e-mail addresses ("ann@example.com") or domains
    # ("@example.com"). Empty: anyone the identity provider accepts.
    console_allowed_emails: tuple[str, ...] = ()

    # Where the monitor POSTs its alerts (Slack-compatible JSON {"text": ...}): one message when an alert
    # starts, one when it clears. A secret: an incoming-webhook URL carries its own token.
    alert_webhook_url: SecretStr | None = None

    @model_validator(mode="after")
    def _check_webhook(self) -> Settings:
        url = self.alert_webhook_url.get_secret_value() if self.alert_webhook_url is not None else ""
        if url and not url.startswith(("https://", "http://")):
            # The value itself is never repeated: it may carry a token.
            raise ValueError("alert_webhook_url must be an http:// or https:// URL")
        return self

    @model_validator(mode="after")
    def _check_kafka(self) -> Settings:
        if self.kafka_port == self.kafka_controller_port:
            raise ValueError(f"kafka_port and kafka_controller_port must differ (both are {self.kafka_port})")
        if self.kafka_security_protocol.startswith("SASL_"):
            missing = [
                name
                for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"security protocol {self.kafka_security_protocol} needs {', '.join(missing)}")
        return self

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers clients connect to: the configured cluster, else the local broker."""
        return self.bootstrap_servers or f"{self.kafka_host}:{self.kafka_port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=secrets_file()))


def load_settings() -> Settings:
    """Read the settings afresh (the environment may have changed since the last call)."""
    return Settings()

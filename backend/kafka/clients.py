"""Configuration of confluent-kafka clients, built from the console's settings.

Secrets (the SASL password) go into the in-memory client configuration only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient


def client_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings shared by producers, consumers and admin clients."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism is not None:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username is not None:
        config["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password is not None:
        config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_ca_location is not None:
        config["ssl.ca.location"] = str(settings.kafka_ssl_ca_location)
    return config


def quiet_admin_client(settings: Settings) -> AdminClient:
    """An admin client that logs nothing itself: its failures are reported by the calls made with it."""
    from confluent_kafka.admin import AdminClient  # here: the job bundle ships this module where it may be missing

    config = client_config(settings)
    config.update({"error_cb": lambda _error: None, "log_level": 0})
    return AdminClient(config)

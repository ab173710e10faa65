"""Connection profiles for Kafka: the local broker, any cluster, or Azure Event Hubs' Kafka endpoint.

``active_profile`` reads a profile from the settings; ``save_profile`` writes one into the secrets TOML file, the
only place a password is kept (jobs get it through their environment). A password is a ``SecretStr``: it shows in
no repr or message. Event Hubs' endpoint settings: docs/design.md, "Kafka connection profiles".
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ClusterMetadata
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from backend.kafka.clients import client_config
from backend.settings import SaslMechanism, SecurityProtocol, Settings, load_settings
from backend.settings_file import save_top_level

ProfileKind = Literal["local", "cluster", "eventhubs"]

EVENTHUBS_USERNAME = "$ConnectionString"
EVENTHUBS_PORT = 9093

# The top-level keys of secrets.toml (and the Settings fields) a profile is stored in.
PROFILE_KEYS = (
    "bootstrap_servers",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_ca_location",
)

_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_SHOWABLE = re.compile(r"[A-Za-z0-9_.:\[\]-]{1,100}")
_BOOTSTRAP_FORMAT = "bootstrap servers are host:port, comma-separated (e.g. kafka-1.example.com:9092)"


def _parse_bootstrap(value: str) -> str:
    """``host:port[,host:port...]`` with ports 1-65535, normalised to no spaces; "" stays "" (checked later)."""
    if not value.strip():
        return ""
    entries = [entry.strip() for entry in value.split(",")]
    if not all(entries):
        raise ValueError(_BOOTSTRAP_FORMAT)
    for number, entry in enumerate(entries, 1):
        # An entry is echoed only when it cannot be a secret pasted into the wrong field.
        shown = f"'{entry}'" if _SHOWABLE.fullmatch(entry) else f"entry {number}"
        host, sep, port = entry.rpartition(":")
        if not sep or not _HOST.fullmatch(host):
            raise ValueError(f"bootstrap server {shown} is not host:port (e.g. kafka-1.example.com:9092)")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"bootstrap server {shown} needs a port between 1 and 65535")
    return ",".join(entries)


class ConnectionProfile(BaseModel):
    """Where and how the console's Kafka clients connect. Validated on creation."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: ProfileKind = "cluster"
    # Empty only for a local profile: then the local broker of the settings (kafka_host:kafka_port).
    bootstrap_servers: str = ""
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    # Event Hubs: the event hub (Kafka topic) a connection string is scoped to, if it names one.
    entity_path: str | None = None

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        return _parse_bootstrap(value)

    @model_validator(mode="after")
    def _check_security(self) -> ConnectionProfile:
        protocol = self.security_protocol
        sasl_fields = {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_username": self.sasl_username,
            "sasl_password": self.sasl_password,
        }
        if not self.bootstrap_servers and self.kind != "local":
            raise ValueError(_BOOTSTRAP_FORMAT)
        if self.kind == "local" and (protocol != "PLAINTEXT" or self.ssl_ca_location is not None):
            raise ValueError("a local profile is the console's own broker: PLAINTEXT, without SASL or SSL")
        if protocol.startswith("SASL_"):
            missing = [name for name, value in sasl_fields.items() if not _filled(value)]
            if missing:
                raise ValueError(f"security protocol {protocol} needs {', '.join(missing)}")
        else:
            stray = [name for name, value in sasl_fields.items() if value is not None]
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} only apply to SASL_PLAINTEXT or SASL_SSL (security protocol is {protocol})"
                )
        if self.ssl_ca_location is not None and protocol not in ("SSL", "SASL_SSL"):
            raise ValueError(f"ssl_ca_location only applies to SSL or SASL_SSL (security protocol is {protocol})")
        if self.entity_path is not None and self.kind != "eventhubs":
            raise ValueError("entity_path (an event hub) only applies to an Event Hubs profile")
        if self.kind == "eventhubs" and (
            protocol != "SASL_SSL" or self.sasl_mechanism != "PLAIN" or self.sasl_username != EVENTHUBS_USERNAME
        ):
            raise ValueError(
                f"an Event Hubs profile uses SASL_SSL, mechanism PLAIN and the username {EVENTHUBS_USERNAME} "
                "(make it with profile_from_eventhubs from the connection string)"
            )
        return self

    def settings_values(self) -> dict[str, str]:
        """The profile as top-level keys of secrets.toml (Settings field names); a local profile has none."""
        if self.kind == "local":
            return {}
        values = {
            "bootstrap_servers": self.bootstrap_servers,
            "kafka_security_protocol": self.security_protocol,
            "kafka_sasl_mechanism": self.sasl_mechanism,
            "kafka_sasl_username": self.sasl_username,
            "kafka_sasl_password": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "kafka_ssl_ca_location": str(self.ssl_ca_location) if self.ssl_ca_location else None,
        }
        return {key: value for key, value in values.items() if value is not None}


def _filled(value: str | SecretStr | None) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return bool(value and value.strip())


def saved_password(
    saved: ConnectionProfile, bootstrap: str, protocol: str, mechanism: str | None, username: str | None
) -> tuple[SecretStr | None, str | None]:
    """The saved SASL password (or Event Hubs connection string) to reuse with what the form now says, and
    why it is not reused when it is not.

    Reused only while bootstrap servers, protocol, mechanism and username are the ones it was saved with:
    otherwise "Test connection" would send it to whatever host is typed, in clear with SASL_PLAINTEXT.
    """
    if saved.sasl_password is None:
        return None, None
    try:
        same_servers = _parse_bootstrap(bootstrap) == saved.bootstrap_servers
    except ValueError:
        same_servers = False
    changed = [
        name
        for name, same in (
            ("bootstrap servers", same_servers),
            ("security protocol", protocol == saved.security_protocol),
            ("SASL mechanism", mechanism == saved.sasl_mechanism),
            ("SASL username", (username or None) == saved.sasl_username),
        )
        if not same
    ]
    if not changed:
        return saved.sasl_password, None
    return None, (
        f"The saved password is not used: the {', '.join(changed)} differ from those it was saved with, "
        "and it goes only where it was saved for. Type the password for this cluster."
    )


# --- Azure Event Hubs ---------------------------------------------------------------------------

_EVENTHUBS_FORMAT = "Endpoint=sb://NAMESPACE.servicebus.windows.net/;SharedAccessKeyName=NAME;SharedAccessKey=KEY"
_EVENTHUBS_PARTS = {"endpoint": "Endpoint", "sharedaccesskeyname": "SharedAccessKeyName"}
_EVENTHUBS_PARTS |= {"sharedaccesskey": "SharedAccessKey", "entitypath": "EntityPath"}
_ENDPOINT = re.compile(r"sb://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)/?")


def profile_from_eventhubs(connection_string: str) -> ConnectionProfile:
    """A profile for Event Hubs' Kafka endpoint from a namespace or event hub connection string.

    ``Endpoint=sb://NAMESPACE.servicebus.windows.net/;SharedAccessKeyName=NAME;SharedAccessKey=KEY``
    with an optional ``;EntityPath=HUB`` (kept as ``entity_path``: the hub is the Kafka topic).
    Other clouds' domains (``servicebus.chinacloudapi.cn``...) are accepted. Raises ValueError
    with a message that never repeats any part of the input but the endpoint's host name.
    """
    text = connection_string.strip().strip("\"'").strip()
    parts: dict[str, str] = {}
    for number, part in enumerate((p.strip() for p in text.split(";")), 1):
        if not part:
            continue
        name, sep, value = part.partition("=")
        canonical = _EVENTHUBS_PARTS.get(name.strip().lower())
        if not sep:
            raise ValueError(
                f"not an Event Hubs connection string: part {number} is not Name=value ({_EVENTHUBS_FORMAT})"
            )
        if canonical is None:
            continue  # e.g. TransportType: nothing the Kafka endpoint uses
        if canonical in parts:
            raise ValueError(f"not an Event Hubs connection string: {canonical} appears twice")
        parts[canonical] = value.strip()
    missing = [name for name in ("Endpoint", "SharedAccessKeyName", "SharedAccessKey") if not parts.get(name)]
    if missing:
        raise ValueError(
            f"not an Event Hubs connection string: {', '.join(missing)} missing or empty; "
            f"expected {_EVENTHUBS_FORMAT} (copy it from the namespace's Shared access policies)"
        )
    endpoint = _ENDPOINT.fullmatch(parts["Endpoint"])
    if endpoint is None:
        raise ValueError("the Endpoint of an Event Hubs connection string is sb://NAMESPACE.servicebus.windows.net/")
    return ConnectionProfile(
        kind="eventhubs",
        bootstrap_servers=f"{endpoint.group(1)}:{EVENTHUBS_PORT}",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username=EVENTHUBS_USERNAME,
        sasl_password=SecretStr(text),
        entity_path=parts.get("EntityPath") or None,
    )


# --- profiles and the console's settings --------------------------------------------------------


def active_profile(settings: Settings) -> ConnectionProfile:
    """The profile the settings describe: the local broker unless ``bootstrap_servers`` is set.

    SASL fields are taken only with a SASL protocol and the CA file only with an SSL one
    (Settings tolerates them otherwise; a profile does not). Event Hubs is recognised by the
    username ``$ConnectionString``. Raises ValueError when the settings are not a valid profile.
    """
    if not settings.bootstrap_servers:
        return ConnectionProfile(kind="local", bootstrap_servers=settings.bootstrap)
    protocol = settings.kafka_security_protocol
    sasl = protocol.startswith("SASL_")
    eventhubs = (
        protocol == "SASL_SSL"
        and settings.kafka_sasl_mechanism == "PLAIN"
        and settings.kafka_sasl_username == EVENTHUBS_USERNAME
    )
    entity_path = None
    if eventhubs and settings.kafka_sasl_password is not None:
        try:
            entity_path = profile_from_eventhubs(settings.kafka_sasl_password.get_secret_value()).entity_path
        except ValueError:
            entity_path = None
    return ConnectionProfile(
        kind="eventhubs" if eventhubs else "cluster",
        bootstrap_servers=settings.bootstrap_servers,
        security_protocol=protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism if sasl else None,
        sasl_username=settings.kafka_sasl_username if sasl else None,
        sasl_password=settings.kafka_sasl_password if sasl else None,
        ssl_ca_location=settings.kafka_ssl_ca_location if protocol in ("SSL", "SASL_SSL") else None,
        entity_path=entity_path,
    )


def bootstrap_of(profile: ConnectionProfile) -> str:
    """The profile's bootstrap servers; for a local profile without any, the settings' local broker."""
    if profile.bootstrap_servers:
        return profile.bootstrap_servers
    settings = load_settings()
    return f"{settings.kafka_host}:{settings.kafka_port}"


def client_config_for(profile: ConnectionProfile) -> dict[str, Any]:
    """librdkafka configuration for the profile: the same as ``client_config`` builds from Settings."""
    fields: dict[str, Any] = {
        "bootstrap_servers": bootstrap_of(profile),
        "kafka_security_protocol": profile.security_protocol,
        "kafka_sasl_mechanism": profile.sasl_mechanism,
        "kafka_sasl_username": profile.sasl_username,
        "kafka_sasl_password": profile.sasl_password,
        "kafka_ssl_ca_location": profile.ssl_ca_location,
    }
    # Validated already as a profile: build the Settings without reading the environment or files.
    return client_config(Settings.model_construct(**fields))


def save_profile(profile: ConnectionProfile, secrets_file: Path) -> None:
    """Store the profile as the top-level keys ``PROFILE_KEYS`` of the TOML file, atomically
    (a local profile removes them): see ``save_top_level``."""
    save_top_level(secrets_file, profile.settings_values(), PROFILE_KEYS)


# --- errors of librdkafka clients, explained ----------------------------------------------------

# After one of these, waiting longer does not help: the client would only retry the same. The one
# place that says so: test_connection, the producer's start and the message browser ask
# ``ClientErrors.terminal``. Every broker down is one of them: at a closed port (connection refused)
# librdkafka says so within a second, and a cluster that is not there at start is not waited for.
_TERMINAL = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError._SSL,
    KafkaError._ALL_BROKERS_DOWN,
}
_SSL_FAILED = "SSL handshake failed"  # librdkafka reports some failed handshakes as a transport error
_NOISE = re.compile(r"^\S+/(?:bootstrap|\d+): |\s*\(after \d+ms in state \w+\)")


class ClientErrors:
    """An ``error_cb`` for librdkafka clients that keeps the distinct errors and explains them."""

    def __init__(self, secrets: Iterable[str] = (), keep: int = 20) -> None:
        self.errors: list[KafkaError] = []
        self._seen: set[tuple[int, str]] = set()
        self._secrets = [s for s in secrets if s]
        self._keep = keep

    def __call__(self, error: KafkaError) -> None:
        key = (error.code(), _NOISE.sub("", error.str()))
        if key not in self._seen and len(self.errors) < self._keep:
            self._seen.add(key)
            self.errors.append(error)

    def clear(self) -> None:
        """Forget what was seen (a long-lived client: the next failure has errors of its own)."""
        self.errors.clear()
        self._seen.clear()

    def config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with this callback and librdkafka's own logging off (errors come here instead)."""
        return {**config, "error_cb": self, "log_level": 0}

    @property
    def terminal(self) -> bool:
        """Whether an error seen is one retrying will not fix (a refused login or certificate, every broker down)."""
        return any(e.code() in _TERMINAL or _SSL_FAILED in e.str() for e in self.errors)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def explain(self, bootstrap: str, timeout_s: float, failure: KafkaException | None = None, hint: str = "") -> str:
        """A message a user can act on, from the most telling error seen (no secret in it).

        ``hint`` ends a message that the cluster cannot be reached (not one of a refused login
        or certificate): the caller's advice, e.g. how to start the local broker.
        """
        details = {e.code(): _NOISE.sub("", e.str()) for e in self.errors}
        ssl = next((_NOISE.sub("", e.str()) for e in self.errors if _SSL_FAILED in e.str()), None)
        if KafkaError._AUTHENTICATION in details or KafkaError.SASL_AUTHENTICATION_FAILED in details:
            detail = details.get(KafkaError.SASL_AUTHENTICATION_FAILED) or details[KafkaError._AUTHENTICATION]
            check = "check the SASL mechanism, username and password"
            if re.search(r"supported mechanisms:\s*$", detail):
                check = "the listener offers no SASL mechanism: is it a PLAINTEXT listener? Check the security protocol"
            return self.scrub(f"authentication failed at {bootstrap}: {check} ({detail})")
        if ssl is not None or KafkaError._SSL in details:
            detail = ssl or details[KafkaError._SSL]
            return self.scrub(
                f"SSL handshake with {bootstrap} failed: check the security protocol, that this port is an SSL "
                f"listener and the CA certificate ({detail})"
            )
        if KafkaError._RESOLVE in details:
            reason = f"a host name does not resolve ({details[KafkaError._RESOLVE]})"
        elif any("Connection refused" in detail for detail in details.values()):
            reason = "connection refused (is the broker running? Is the port right?)"
        elif KafkaError._TRANSPORT in details:
            reason = details[KafkaError._TRANSPORT]
        elif (
            failure is not None
            and failure.args
            and isinstance(failure.args[0], KafkaError)
            and failure.args[0].code() not in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT)
        ):
            reason = failure.args[0].str()
        else:
            reason = f"no answer within {timeout_s:g} s (a wrong address or port, a firewall, or the broker is down)"
        message = f"cannot reach Kafka at {bootstrap}: {reason}"
        return self.scrub(f"{message}. {hint}" if hint else message)


class ConnectFailed(Exception):
    """The cluster did not answer, or refused the client; ``str()`` is ``ClientErrors.explain``'s message."""


def wait_for_metadata(
    client: AdminClient | Producer, errors: ClientErrors, bootstrap: str, timeout_s: float, hint: str = ""
) -> ClusterMetadata:
    """The cluster's metadata, asked of ``client`` (whose ``error_cb`` is ``errors``) until it answers.

    Raises ConnectFailed, with the explained reason, after ``timeout_s`` or as soon as librdkafka
    reports something retrying will not fix (``errors.terminal``): a refused login or certificate,
    every broker down (a closed port: about a second). ``hint`` as for ``explain``.
    """
    deadline = time.monotonic() + timeout_s
    last: KafkaException | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ConnectFailed(errors.explain(bootstrap, timeout_s, last, hint))
        try:
            return client.list_topics(timeout=min(0.5, remaining))
        except KafkaException as error:
            last = error
        client.poll(0)  # serves error_cb
        if errors.terminal:
            raise ConnectFailed(errors.explain(bootstrap, timeout_s, last, hint))


# --- testing a profile --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str
    brokers: int
    topics: int  # topics a client sees, without internal ones (__consumer_offsets...)
    elapsed_s: float


def test_connection(profile: ConnectionProfile, timeout_s: float = 10.0) -> ConnectionResult:
    """Fetch the cluster's metadata once; returns within about ``timeout_s`` whatever happens.

    Stops early once librdkafka reports something retrying will not fix (authentication, SSL,
    every broker down). The message says what to check and never holds the password.
    """
    began = time.monotonic()
    secret = profile.sasl_password.get_secret_value() if profile.sasl_password else ""
    errors = ClientErrors(secrets=[secret])
    bootstrap = bootstrap_of(profile)

    def failed(message: str) -> ConnectionResult:
        return ConnectionResult(False, errors.scrub(message), 0, 0, time.monotonic() - began)

    if profile.ssl_ca_location is not None and not profile.ssl_ca_location.is_file():
        return failed(f"the CA certificate file {profile.ssl_ca_location} does not exist")
    try:
        admin = AdminClient(errors.config(client_config_for(profile)))
    except KafkaException as error:
        return failed(f"invalid client configuration: {error.args[0].str() if error.args else error}")
    try:
        metadata = wait_for_metadata(admin, errors, bootstrap, timeout_s)
    except ConnectFailed as error:
        return failed(str(error))
    elapsed = time.monotonic() - began
    topics = [name for name in metadata.topics if not name.startswith("__")]
    message = f"connected to {bootstrap}: {len(metadata.brokers)} broker(s), {len(topics)} topic(s), in {elapsed:.1f} s"
    if profile.entity_path and profile.entity_path not in metadata.topics:
        message += f"; the event hub '{profile.entity_path}' of the connection string is not among the topics"
    return ConnectionResult(True, errors.scrub(message), len(metadata.brokers), len(topics), elapsed)


test_connection.__test__ = False  # type: ignore[attr-defined]  # pytest must not collect it where imported

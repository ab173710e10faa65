import math
import os
import stat
import tomllib
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from pydantic import SecretStr, ValidationError

from backend.kafka.clients import client_config
from backend.kafka.connection import (
    PROFILE_KEYS,
    ClientErrors,
    ConnectionProfile,
    active_profile,
    client_config_for,
    profile_from_eventhubs,
    save_profile,
    saved_password,
)
from backend.settings import Settings
from backend.settings_file import toml_dumps

KEY = "Zm9vYmFyS2V5Q2FuYXJ5+/ab12=="  # a made-up SharedAccessKey: it must never show in a message
CONNECTION_STRING = (
    "Endpoint=sb://tweets-ns.servicebus.windows.net/;"
    f"SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={KEY}"
)
PASSWORD = "pw-canary-7f3e"


pytestmark = pytest.mark.usefixtures("no_outside_settings")


def settings_from(secrets: Path) -> Settings:
    os.environ["TWEETSTREAM_SECRETS_FILE"] = str(secrets)  # restored by the fixture's monkeypatch
    return Settings()


def sasl_profile(**changes) -> ConnectionProfile:
    fields = {
        "kind": "cluster",
        "bootstrap_servers": "kafka-1.example.com:9093, kafka-2.example.com:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "console",
        "sasl_password": SecretStr(PASSWORD),
    }
    return ConnectionProfile(**(fields | changes))


# --- Event Hubs connection strings ---------------------------------------------------------------


def test_an_event_hubs_connection_string_makes_microsofts_kafka_configuration():
    profile = profile_from_eventhubs(CONNECTION_STRING)
    assert profile.kind == "eventhubs"
    assert profile.entity_path is None
    assert client_config_for(profile) == {
        "bootstrap.servers": "tweets-ns.servicebus.windows.net:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "$ConnectionString",
        "sasl.password": CONNECTION_STRING,
    }


def test_entity_path_other_clouds_and_pasting_slips_are_accepted():
    scoped = profile_from_eventhubs(f'  "{CONNECTION_STRING};EntityPath=tweets;"\n')
    assert scoped.entity_path == "tweets"
    assert scoped.sasl_password.get_secret_value() == f"{CONNECTION_STRING};EntityPath=tweets;"
    china = profile_from_eventhubs(
        f"endpoint=sb://ns1.servicebus.chinacloudapi.cn;sharedaccesskeyname=send;sharedaccesskey={KEY};"
        "TransportType=Amqp"
    )
    assert china.bootstrap_servers == "ns1.servicebus.chinacloudapi.cn:9093"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"SharedAccessKeyName=n;SharedAccessKey={KEY}", "Endpoint missing"),
        (f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey={KEY}", "SharedAccessKeyName missing"),
        ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=n", "SharedAccessKey missing"),
        ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=n;SharedAccessKey=", "SharedAccessKey missing"),
        (f"Endpoint=https://ns.servicebus.windows.net/;SharedAccessKeyName=n;SharedAccessKey={KEY}", "sb://NAMESPACE"),
        (f"Endpoint=sb://ns.windows.net/{KEY};SharedAccessKeyName=n;SharedAccessKey={KEY}", "sb://NAMESPACE"),
        (f"{CONNECTION_STRING};SharedAccessKey={KEY}", "SharedAccessKey appears twice"),
        (KEY, "Endpoint, SharedAccessKeyName, SharedAccessKey missing"),  # a bare key: "=" in it, no known name
        (f"Endpoint=sb://ns.servicebus.windows.net/;{KEY.rstrip('=')}", "part 2 is not Name=value"),
        ("", "Endpoint, SharedAccessKeyName, SharedAccessKey missing"),
        ("garbage; more garbage", "is not Name=value"),
    ],
)
def test_malformed_connection_strings_are_refused_without_repeating_the_key(text, reason):
    with pytest.raises(ValueError, match=r"Event Hubs|sb://") as caught:
        profile_from_eventhubs(text)
    assert reason in str(caught.value)
    assert KEY not in str(caught.value) and KEY.rstrip("=") not in str(caught.value)


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bootstrap", "reason"),
    [
        ("", "bootstrap servers are host:port"),
        ("kafka-1.example.com", "'kafka-1.example.com' is not host:port"),
        ("kafka:0", "'kafka:0' needs a port between 1 and 65535"),
        ("kafka:65536", "needs a port between 1 and 65535"),
        ("kafka:http", "needs a port between 1 and 65535"),
        ("a:9092,,b:9092", "bootstrap servers are host:port"),
        ("PLAINTEXT://kafka:9092", "is not host:port"),
        (CONNECTION_STRING, "bootstrap server entry 1 is not host:port"),  # pasted in the wrong field
    ],
)
def test_bad_bootstrap_servers_get_a_clear_message(bootstrap, reason):
    with pytest.raises(ValidationError) as caught:
        ConnectionProfile(bootstrap_servers=bootstrap)
    assert reason in str(caught.value)
    assert KEY not in str(caught.value)


def test_a_local_profile_may_leave_the_address_to_the_settings(monkeypatch):
    monkeypatch.setenv("TWEETSTREAM_KAFKA_PORT", "19092")
    local = ConnectionProfile(kind="local")
    assert client_config_for(local) == {"bootstrap.servers": "127.0.0.1:19092", "security.protocol": "PLAINTEXT"}
    with pytest.raises(ValidationError, match="bootstrap servers are host:port"):
        ConnectionProfile(kind="cluster")


def test_bootstrap_servers_are_normalised():
    profile = ConnectionProfile(bootstrap_servers=" a.example:9092 , 10.0.0.7:19092,[::1]:9092 ")
    assert profile.bootstrap_servers == "a.example:9092,10.0.0.7:19092,[::1]:9092"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sasl_password": None}, "security protocol SASL_SSL needs sasl_password"),
        ({"sasl_mechanism": None, "sasl_username": "  "}, "needs sasl_mechanism, sasl_username"),
        ({"sasl_password": SecretStr("")}, "needs sasl_password"),
        ({"security_protocol": "PLAINTEXT"}, "sasl_mechanism, sasl_username, sasl_password only apply to SASL_"),
        ({"sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"kind": "local"}, "a local profile is the console's own broker"),
        ({"kind": "eventhubs"}, "an Event Hubs profile uses SASL_SSL, mechanism PLAIN"),
        ({"kind": "azure"}, "kind"),
        ({"security_protocol": "SASL_PLAINTEXT", "ssl_ca_location": Path("/ca.pem")}, "only applies to SSL"),
        ({"password": "x"}, "Extra inputs are not permitted"),
        ({"entity_path": "tweets"}, "entity_path (an event hub) only applies to an Event Hubs profile"),
    ],
)
def test_inconsistent_security_settings_are_refused_with_the_reason(changes, reason):
    with pytest.raises(ValidationError) as caught:
        sasl_profile(**changes)
    assert reason in str(caught.value)
    assert PASSWORD not in str(caught.value)  # pydantic would print the whole input otherwise


def test_the_password_never_shows():
    profile = sasl_profile()
    for shown in (repr(profile), str(profile), str(profile.model_dump()), profile.model_dump_json()):
        assert PASSWORD not in shown
    assert KEY not in repr(profile_from_eventhubs(CONNECTION_STRING))
    assert client_config_for(profile)["sasl.password"] == PASSWORD


def test_client_config_is_the_one_settings_give():
    profile = sasl_profile(security_protocol="SASL_SSL", ssl_ca_location=Path("/etc/ssl/ca.pem"))
    settings = Settings(
        bootstrap_servers=profile.bootstrap_servers,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="console",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_ca_location=Path("/etc/ssl/ca.pem"),
    )
    assert client_config_for(profile) == client_config(settings)
    local = ConnectionProfile(kind="local", bootstrap_servers="127.0.0.1:19092")
    assert client_config_for(local) == {"bootstrap.servers": "127.0.0.1:19092", "security.protocol": "PLAINTEXT"}


# --- settings, secrets.toml --------------------------------------------------------------------

FOREIGN = """# Secrets of the tweet stream console. Never committed.
x_bearer_token = "x-token"   # the X API
kafka_heap = "2g"
bootstrap_servers = "old.example:9092"
kafka_sasl_password = "old-password"

[connections.other]
key = 1
when = 2024-05-01T10:00:00Z

[[databricks.clusters]]
name = "a"
"""


def test_save_then_load_round_trips_and_keeps_everything_else(tmp_path):
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text(FOREIGN)
    profile = sasl_profile(ssl_ca_location=tmp_path / "ca.pem")
    save_profile(profile, secrets)

    data = tomllib.loads(secrets.read_text())
    assert data["x_bearer_token"] == "x-token" and data["kafka_heap"] == "2g"
    assert data["connections"] == {"other": {"key": 1, "when": datetime(2024, 5, 1, 10, tzinfo=UTC)}}
    assert data["databricks"] == {"clusters": [{"name": "a"}]}
    assert {key: data[key] for key in PROFILE_KEYS} == {
        "bootstrap_servers": "kafka-1.example.com:9093,kafka-2.example.com:9093",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "console",
        "kafka_sasl_password": PASSWORD,
        "kafka_ssl_ca_location": str(tmp_path / "ca.pem"),
    }
    text = secrets.read_text()
    assert "# Secrets of the tweet stream console" in text and "# the X API" in text  # comments kept
    assert "old-password" not in text
    assert active_profile(settings_from(secrets)) == profile

    save_profile(ConnectionProfile(kind="local", bootstrap_servers="127.0.0.1:9092"), secrets)
    data = tomllib.loads(secrets.read_text())
    assert not set(PROFILE_KEYS) & set(data)
    assert data["x_bearer_token"] == "x-token" and data["connections"]["other"]["key"] == 1
    assert PASSWORD not in secrets.read_text()
    assert active_profile(settings_from(secrets)).kind == "local"


def test_a_new_secrets_file_is_private_and_event_hubs_round_trips(tmp_path):
    secrets = tmp_path / "new" / "secrets.toml"
    profile = profile_from_eventhubs(CONNECTION_STRING + ";EntityPath=tweets")
    save_profile(profile, secrets)
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert active_profile(settings_from(secrets)) == profile
    assert [p.name for p in secrets.parent.iterdir()] == ["secrets.toml"]  # no temporary file left


def test_an_existing_readable_secrets_file_is_made_private(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('kafka_heap = "2g"\n')
    secrets.chmod(0o644)
    save_profile(sasl_profile(), secrets)
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600


def test_a_file_a_line_edit_cannot_handle_is_rewritten_from_its_content(tmp_path):
    secrets = tmp_path / "secrets.toml"
    tricky = (
        'note = """\nbootstrap_servers = "inside a string"\n"""\n'
        "matrix = [\n[1, 2],\n[3, 4],\n]\n"
        'kafka_sasl_username = "old"\n'
        '[t]\nbootstrap_servers = "a key of a table, not ours"\n'
    )
    secrets.write_text(tricky)
    save_profile(sasl_profile(), secrets)
    data = tomllib.loads(secrets.read_text())
    assert data["note"] == 'bootstrap_servers = "inside a string"\n'
    assert data["matrix"] == [[1, 2], [3, 4]]
    assert data["t"] == {"bootstrap_servers": "a key of a table, not ours"}
    assert data["kafka_sasl_username"] == "console"


def test_invalid_toml_is_left_alone(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("this is = = not toml\n")
    with pytest.raises(ValueError, match="is not valid TOML"):
        save_profile(sasl_profile(), secrets)
    assert secrets.read_text() == "this is = = not toml\n"


def test_active_profile_reads_what_the_settings_say():
    assert active_profile(Settings()) == ConnectionProfile(kind="local", bootstrap_servers="127.0.0.1:9092")
    # SASL fields with a protocol that does not use them are ignored, as librdkafka would.
    plain = Settings(bootstrap_servers="k:9092", kafka_sasl_username="u", kafka_ssl_ca_location=Path("/ca.pem"))
    assert active_profile(plain) == ConnectionProfile(bootstrap_servers="k:9092")
    with pytest.raises(ValidationError, match="'nonsense' is not host:port"):
        active_profile(Settings(bootstrap_servers="nonsense"))


def test_the_toml_writer_round_trips_through_tomllib():
    data = {
        "plain": "text",
        "quotes and escapes": 'say "hi"\\ \t\n\r\b\f \x00 \x1f \x7f é ☕',
        "int": -42,
        "big": 2**63 - 1,
        "float": 0.1,
        "exp": 1e300,
        "inf": float("inf"),
        "minus_inf": float("-inf"),
        "yes": True,
        "no": False,
        "day": date(2024, 5, 1),
        "moment": datetime(2024, 5, 1, 10, 30, 5, 123000, tzinfo=UTC),
        "local": datetime(2024, 5, 1, 10, 30),
        "clock": time(7, 32, 1),
        "empty": [],
        "list": [1, 2, 3],
        "mixed": [1, "a", [True, 1.5], {"x": 1, "y": {"z": "w"}}],
        "empty_table": {},
        "a": {"b": {"c": 1, "d": {"e": [1]}}, "x.y": "dotted key"},
        "servers": [{"name": "one", "ports": [1, 2], "tls": {"on": True}}, {"name": "two", "inner": [{"k": 1}]}],
        "ключ": "unicode key",
    }
    text = toml_dumps(data)
    assert tomllib.loads(text) == data
    assert math.isnan(tomllib.loads(toml_dumps({"nan": float("nan")}))["nan"])
    with pytest.raises(TypeError, match="TOML has no value of type bytes"):
        toml_dumps({"b": b"x"})


# --- librdkafka's errors, explained ---------------------------------------------------------------


def errors_of(*errors: tuple[int, str], secrets=()) -> ClientErrors:
    seen = ClientErrors(secrets=secrets)
    for code, text in errors:
        seen(KafkaError(code, text))
    return seen


REFUSED = (KafkaError._TRANSPORT, "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused")


@pytest.mark.parametrize(
    ("errors", "terminal"),
    [
        ([REFUSED], False),  # one broker of several may be down: the others may answer
        ([REFUSED, (KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")], True),
        ([(KafkaError.SASL_AUTHENTICATION_FAILED, "Authentication failed")], True),
        ([(KafkaError._AUTHENTICATION, "SASL handshake failed")], True),
        ([(KafkaError._TRANSPORT, "SSL handshake failed: error:0A00010B:SSL routines::wrong version number")], True),
        ([(KafkaError._TIMED_OUT, "Timed out")], False),
    ],
)
def test_terminal_is_what_retrying_will_not_fix(errors, terminal):
    assert errors_of(*errors).terminal is terminal


def test_a_hint_ends_only_a_cannot_reach_message():
    hint = "For the local one: python -m backend.kafka.local_broker start"
    refused = errors_of(REFUSED, (KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert refused.explain("127.0.0.1:9", 10, hint=hint) == (
        "cannot reach Kafka at 127.0.0.1:9: connection refused (is the broker running? Is the port right?). " + hint
    )
    assert errors_of().explain("h:9092", 10, hint=hint) == (
        "cannot reach Kafka at h:9092: no answer within 10 s (a wrong address or port, a firewall, "
        "or the broker is down). " + hint
    )
    login = errors_of((KafkaError.SASL_AUTHENTICATION_FAILED, "Authentication failed: Invalid credentials"))
    assert login.explain("h:9092", 10, hint=hint) == (
        "authentication failed at h:9092: check the SASL mechanism, username and password "
        "(Authentication failed: Invalid credentials)"
    )


def test_an_explained_message_never_holds_a_secret():
    seen = errors_of((KafkaError._TRANSPORT, f"failed near {PASSWORD}"), secrets=[PASSWORD, ""])
    message = seen.explain("h:9092", 10, hint=f"hint {PASSWORD}")
    assert PASSWORD not in message and "***" in message


# --- a saved password goes only where it was saved for (issue 19, item 2) ---------------------------


def test_a_saved_password_is_reused_only_with_the_servers_protocol_mechanism_and_user_it_was_saved_with():
    saved = ConnectionProfile(
        bootstrap_servers="kafka-1.example.com:9092",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="alice",
        sasl_password=PASSWORD,
    )
    same = saved_password(saved, " kafka-1.example.com:9092 ", "SASL_SSL", "SCRAM-SHA-512", "alice")
    assert same == (saved.sasl_password, None)
    for changed, form in (
        ("bootstrap servers", ("evil.example:9092", "SASL_SSL", "SCRAM-SHA-512", "alice")),
        ("security protocol", ("kafka-1.example.com:9092", "SASL_PLAINTEXT", "SCRAM-SHA-512", "alice")),
        ("SASL mechanism", ("kafka-1.example.com:9092", "SASL_SSL", "PLAIN", "alice")),
        ("SASL username", ("kafka-1.example.com:9092", "SASL_SSL", "SCRAM-SHA-512", "mallory")),
        ("bootstrap servers", ("not a server", "SASL_SSL", "SCRAM-SHA-512", "alice")),
    ):
        password, why = saved_password(saved, *form)
        assert password is None
        assert why is not None and f"the {changed} differ" in why and PASSWORD not in why
    assert saved_password(ConnectionProfile(bootstrap_servers="k:9092"), "k:9092", "PLAINTEXT", None, None) == (
        None,
        None,
    )

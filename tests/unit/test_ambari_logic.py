"""The pure parts of backend/azure/ambari.py: the kafka-env template edit, address lists, messages."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from backend.azure.ambari import (
    IP_ADVERTISING_LINES,
    Ambari,
    gateway_url,
    has_ip_advertising,
    join_addresses,
    with_ip_advertising,
)

pytestmark = pytest.mark.timeout(10)

TEMPLATE = "#!/bin/bash\nexport JAVA_HOME={{java64_home}}\nexport LOG_DIR={{kafka_log_dir}}\n"


def test_the_lines_are_hdinsights_verbatim() -> None:
    assert IP_ADVERTISING_LINES[1] == "IP_ADDRESS=$(hostname -i)"
    assert IP_ADVERTISING_LINES[-1] == (
        'echo "advertised.listeners=PLAINTEXT://$IP_ADDRESS:9092" >> '
        "/usr/hdp/current/kafka-broker/conf/server.properties"
    )


def test_appends_the_lines_at_the_bottom_and_keeps_the_rest() -> None:
    edited = with_ip_advertising(TEMPLATE)
    assert edited.startswith(TEMPLATE)
    assert edited[len(TEMPLATE) :].splitlines() == list(IP_ADVERTISING_LINES)
    assert has_ip_advertising(edited)
    assert not has_ip_advertising(TEMPLATE)


def test_a_template_without_a_final_newline_gets_one_line_break() -> None:
    edited = with_ip_advertising(TEMPLATE.rstrip("\n"))
    assert edited == TEMPLATE + "\n".join(IP_ADVERTISING_LINES) + "\n"


def test_editing_twice_changes_nothing_more() -> None:
    once = with_ip_advertising(TEMPLATE)
    assert with_ip_advertising(once) == once


def test_partial_or_reordered_lines_are_not_configured() -> None:
    partial = TEMPLATE + "\n".join(IP_ADVERTISING_LINES[:3]) + "\n"
    reordered = TEMPLATE + "\n".join(reversed(IP_ADVERTISING_LINES)) + "\n"
    assert not has_ip_advertising(partial)
    assert not has_ip_advertising(reordered)
    # Indented as typed into Ambari's text box: still the documented lines.
    assert has_ip_advertising(TEMPLATE + "".join(f"    {line}\n" for line in IP_ADVERTISING_LINES))


def test_addresses_sorted_numerically_and_without_repeats() -> None:
    ips = {"wn10": "10.0.0.100", "wn2": "10.0.0.14", "wn1": "10.0.0.9", "again": "10.0.0.9"}
    assert join_addresses(ips, 9092) == "10.0.0.9:9092,10.0.0.14:9092,10.0.0.100:9092"
    assert join_addresses({}, 9092) == ""


def test_gateway_and_repr_without_the_password() -> None:
    assert gateway_url("tweetstream-kafka-c093d2") == "https://tweetstream-kafka-c093d2.azurehdinsight.net"
    ambari = Ambari(gateway_url("c1"), "c1", "admin", SecretStr("S3cret-value"))
    assert "S3cret-value" not in repr(ambari)
    assert "S3cret-value" not in str(vars(ambari))
    assert ambari.base == "https://c1.azurehdinsight.net/api/v1/clusters/c1"

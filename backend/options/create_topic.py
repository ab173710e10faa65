"""The create-topic job's options (python -m jobs.create_topic): names, help and rules, once.

Standard library and backend.kafka.topic_names only: the job runs on a Databricks cluster.
"""

from __future__ import annotations

import re

from backend.kafka.topic_names import topic_name_problem
from backend.options.contract import Contract, Option

# A host name or IPv4 address, or an IPv6 address in brackets, then the port.
_SERVER = re.compile(r"(?:\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):(\d{1,5})")


def servers(text: str) -> list[str]:
    """The comma-separated HOST:PORT list, each stripped."""
    return [server.strip() for server in text.split(",")]


def _servers_problem(text: str) -> str | None:
    for server in servers(text):
        match = _SERVER.fullmatch(server)
        if match is None or not 1 <= int(match.group(1)) <= 65535:
            return f"--bootstrap-servers: '{server}' is not HOST:PORT (in '{text}')"
    return None


def _retention_problem(retention_ms: int) -> str | None:
    if retention_ms != -1 and retention_ms < 1:
        return f"--retention-ms is a positive number of milliseconds, or -1 (got {retention_ms})"
    return None


CREATE_TOPIC = Contract(
    prog="python -m jobs.create_topic",
    description="Create a Kafka topic with Kafka's Java AdminClient from the active SparkSession.",
    options=(
        Option(
            "--bootstrap-servers",
            required=True,
            help="HOST:PORT[,HOST:PORT...] of the brokers",
            rule=_servers_problem,
        ),
        Option("--topic", required=True, help="the topic's name", rule=topic_name_problem),
        Option(
            "--partitions",
            int,
            required=True,
            help="at least this many partitions",
            rule=lambda n: None if n >= 1 else f"--partitions must be at least 1 (got {n})",
        ),
        Option(
            "--replication",
            int,
            required=True,
            help="replication factor (3 on HDInsight)",
            # Kafka's replication factor is a Java short.
            rule=lambda n: None if 1 <= n <= 32767 else f"--replication must be between 1 and 32767 (got {n})",
        ),
        Option(
            "--retention-ms",
            int,
            help="retention in ms, -1 for unlimited (default: the broker's)",
            rule=_retention_problem,
        ),
        Option(
            "--timeout",
            float,
            60.0,
            help="seconds to wait for the cluster (default 60)",
            rule=lambda s: None if s > 0 else f"--timeout must be positive (got {s:g})",
        ),
    ),
)

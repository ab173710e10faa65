"""Kafka's rules for topic names (org.apache.kafka.common.internals.Topic), with no dependencies.

Kept apart from backend/kafka/topics.py (which needs confluent-kafka) so that jobs/create_topic.py, which
runs on Databricks where confluent-kafka may be absent, checks names by the same rules.
"""

from __future__ import annotations

import re

# The pipeline's topic unless told otherwise: the jobs, the console's pages and the Azure plan.
DEFAULT_TOPIC = "tweets"
MAX_TOPIC_NAME_LENGTH = 249
TOPIC_NAME_CHARACTER = re.compile(r"[a-zA-Z0-9._-]")
RESERVED_TOPIC_NAMES = frozenset({".", ".."})
_LEGAL_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")


class TopicNameError(ValueError):
    """A topic name that Kafka would refuse."""


def validate_topic_name(name: str) -> str:
    """Return ``name`` when Kafka accepts it as a topic name, else raise TopicNameError."""
    if not name:
        raise TopicNameError("a topic name cannot be empty")
    if name in RESERVED_TOPIC_NAMES:
        raise TopicNameError(f"'{name}' is not allowed as a topic name")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise TopicNameError(f"a topic name has at most {MAX_TOPIC_NAME_LENGTH} characters (this one has {len(name)})")
    if not _LEGAL_TOPIC_NAME.fullmatch(name):
        bad = sorted({c for c in name if not TOPIC_NAME_CHARACTER.fullmatch(c)})
        shown = " ".join(repr(c) for c in bad)
        raise TopicNameError(
            f"topic name '{name}' contains {shown}: only ASCII letters, digits, '.', '_' and '-' are allowed"
        )
    return name


def topic_name_problem(name: str) -> str | None:
    """Why Kafka would refuse ``name`` as a topic name, or None (the jobs' option rules)."""
    try:
        validate_topic_name(name)
    except TopicNameError as error:
        return str(error)
    return None

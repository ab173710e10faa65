"""Azure's naming rules for what the wizard creates, checked before anything is sent. A name that
passes can still be refused at creation (a globally unique name taken elsewhere); the messages say so.
Sources: docs/azure-design.md ("Naming rules").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backend.kafka.topic_names import MAX_TOPIC_NAME_LENGTH, RESERVED_TOPIC_NAMES, TOPIC_NAME_CHARACTER


@dataclass(frozen=True)
class NameRule:
    what: str
    min_length: int
    max_length: int
    allowed: re.Pattern[str]  # one allowed character
    allowed_text: str
    start: re.Pattern[str] | None = None  # the first character
    start_text: str = ""
    end: re.Pattern[str] | None = None  # the last character
    end_text: str = ""
    no_double_hyphen: bool = False
    forbidden: frozenset[str] = frozenset()  # whole names that are refused
    scope: str = "resource group"

    @property
    def text(self) -> str:
        parts = [f"{self.min_length}-{self.max_length} characters", self.allowed_text]
        if self.start_text:
            parts.append(self.start_text)
        if self.end_text:
            parts.append(self.end_text)
        if self.no_double_hyphen:
            parts.append("no two hyphens in a row")
        if self.forbidden:
            parts.append("not " + " or ".join(repr(name) for name in sorted(self.forbidden)))
        return "; ".join(parts)

    def problem(self, value: str) -> str | None:
        """What is wrong with ``value`` under this rule, or None when it complies."""
        if not self.min_length <= len(value) <= self.max_length:
            return f"is {len(value)} characters long"
        bad = sorted({c for c in value if not self.allowed.fullmatch(c)})
        if bad:
            return "has " + ", ".join(repr(c) for c in bad) + " (not allowed)"
        if self.start is not None and not self.start.fullmatch(value[0]):
            return f"starts with {value[0]!r}"
        if self.end is not None and not self.end.fullmatch(value[-1]):
            return f"ends with {value[-1]!r}"
        if self.no_double_hyphen and "--" in value:
            return "has two hyphens in a row"
        if value in self.forbidden:
            return "is a reserved name"
        return None

    def check(self, field: str, value: str) -> str | None:
        """A message naming the field, the value and the rule, or None when the name complies."""
        problem = self.problem(value)
        if problem is None:
            return None
        message = f"{field} = {value!r} {problem}; {self.what} names must be: {self.text}"
        if self.scope == "global":
            message += " (and unique across all of Azure: a name someone else holds fails only at creation)"
        return message


_ALNUM = re.compile(r"[A-Za-z0-9]")
_ALNUM_OR_UNDERSCORE = re.compile(r"[A-Za-z0-9_]")
_NETWORK_CHAR = re.compile(r"[A-Za-z0-9_.-]")
_NETWORK_TEXT = "letters, digits, underscores, periods and hyphens"


def _network_rule(what: str, min_length: int, max_length: int, scope: str) -> NameRule:
    return NameRule(
        what=what,
        min_length=min_length,
        max_length=max_length,
        allowed=_NETWORK_CHAR,
        allowed_text=_NETWORK_TEXT,
        start=_ALNUM,
        start_text="starts with a letter or digit",
        end=_ALNUM_OR_UNDERSCORE,
        end_text="ends with a letter, digit or underscore",
        scope=scope,
    )


RESOURCE_GROUP = NameRule(
    what="resource group",
    min_length=1,
    max_length=90,
    # \w is Unicode-aware in Python as in the spec's pattern: Unicode letters and digits pass.
    allowed=re.compile(r"[-\w.()]"),
    allowed_text="letters (Unicode too), digits, underscores, parentheses, hyphens and periods",
    end=re.compile(r"[^.]"),
    end_text="does not end with a period",
    scope="subscription",
)
VIRTUAL_NETWORK = _network_rule("virtual network", 2, 64, "resource group")
SUBNET = _network_rule("subnet", 1, 80, "virtual network")
PUBLIC_IP = _network_rule("public IP address", 1, 80, "resource group")
NAT_GATEWAY = _network_rule("NAT gateway", 1, 80, "resource group")
NETWORK_SECURITY_GROUP = _network_rule("network security group", 1, 80, "resource group")
VIRTUAL_NETWORK_PEERING = _network_rule("virtual network peering", 1, 80, "virtual network")
# No documented rule: the workspace peering is made on the workspace's managed virtual network.
DATABRICKS_PEERING = _network_rule("Databricks workspace peering", 1, 80, "workspace")
STORAGE_ACCOUNT = NameRule(
    what="storage account",
    min_length=3,
    max_length=24,
    allowed=re.compile(r"[a-z0-9]"),
    allowed_text="lowercase letters and digits only",
    scope="global",
)
BLOB_CONTAINER = NameRule(
    what="blob container",
    min_length=3,
    max_length=63,
    allowed=re.compile(r"[a-z0-9-]"),
    allowed_text="lowercase letters, digits and hyphens",
    start=re.compile(r"[a-z0-9]"),
    start_text="starts with a lowercase letter or digit",
    end=re.compile(r"[a-z0-9]"),
    end_text="ends with a lowercase letter or digit",
    no_double_hyphen=True,
    scope="storage account",
)
HDINSIGHT_CLUSTER = NameRule(
    what="HDInsight cluster",
    min_length=3,
    max_length=59,
    allowed=re.compile(r"[A-Za-z0-9-]"),
    allowed_text="letters, digits and hyphens",
    start=_ALNUM,
    start_text="starts with a letter or digit",
    end=_ALNUM,
    end_text="ends with a letter or digit",
    scope="global",  # NAME.azurehdinsight.net
)
DATABRICKS_WORKSPACE = NameRule(
    what="Databricks workspace",
    min_length=3,
    max_length=64,
    allowed=re.compile(r"[A-Za-z0-9_-]"),
    allowed_text="letters, digits, underscores and hyphens",
    scope="resource group",
)
# Kafka's rule, from backend.kafka.topic_names (what the jobs and the console check too).
KAFKA_TOPIC = NameRule(
    what="Kafka topic",
    min_length=1,
    max_length=MAX_TOPIC_NAME_LENGTH,
    allowed=TOPIC_NAME_CHARACTER,
    allowed_text="letters, digits, periods, underscores and hyphens",
    forbidden=RESERVED_TOPIC_NAMES,
    scope="cluster",
)
SQL_WAREHOUSE = NameRule(
    what="Databricks SQL warehouse",
    min_length=1,
    max_length=100,
    allowed=re.compile(r"[A-Za-z0-9 _-]"),
    allowed_text="letters, digits, spaces, underscores and hyphens",
    scope="workspace",
)
# Unity Catalog securable names: ours is stricter than Databricks' (which also takes quoted names), so each
# one stands unquoted in SQL and in a /Volumes/<catalog>/<schema>/<volume> path.
UNITY_CATALOG = NameRule(
    what="Unity Catalog catalog, schema and volume",
    min_length=1,
    max_length=255,
    allowed=re.compile(r"[a-z0-9_]"),
    allowed_text="lowercase letters, digits and underscores",
    scope="catalog",
)
# Ours, not Azure's: every name derived from the prefix then complies with the rules above.
NAME_PREFIX = NameRule(
    what="name prefix",
    min_length=2,
    max_length=20,
    allowed=re.compile(r"[a-z0-9-]"),
    allowed_text="lowercase letters, digits and hyphens",
    start=re.compile(r"[a-z]"),
    start_text="starts with a lowercase letter",
    end=re.compile(r"[a-z0-9]"),
    end_text="ends with a lowercase letter or digit",
    no_double_hyphen=True,
    scope="plan",
)

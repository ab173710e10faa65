"""Kafka records -> parsed tweets or dead letters: the message schema, the contract's checks as
one SQL expression, and hashtag normalising (pure DataFrame transformations)."""

from __future__ import annotations

from typing import TYPE_CHECKING

# The contract's limits, shared with the producer: a value over MAX_MESSAGE_BYTES is never parsed.
from backend.tweets.contract import (
    EVENT_TIME_MAX_MS,
    EVENT_TIME_MIN_MS,
    MAX_MESSAGE_BYTES,
    REFERENCE_TYPES,
    RFC3339_PATTERN,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# A dead letter keeps the first bytes of its value only (the store cuts it again, in characters).
MAX_RAW_BYTES = 4000

# The topic message contract (docs/design.md) as Spark's JSON reader reads it. Spark turns any
# JSON value into a string when the schema says STRING (7 becomes "7", ["a"] becomes '["a"]'),
# so the fields the contract types are VARIANT leaves, which keep their JSON type for the checks
# in ERROR_SQL. The items of the lists stay STRING: checking each item's type would take a
# higher-order function (exists, transform), and one of those switches Spark's code generation
# off for the whole projection, which made parsing about 3 times slower here. So a referenced
# tweet's type must still be one of three words (only a JSON string can be), but a hashtag or a
# mention written as a number counts as its text ("7") instead of making the record a dead letter.
MESSAGE_SCHEMA = (
    "data STRUCT<"
    "id VARIANT, text VARIANT, created_at VARIANT, author_id VARIANT, lang VARIANT, "
    "entities STRUCT<hashtags ARRAY<STRUCT<tag STRING>>, mentions ARRAY<STRUCT<username STRING>>>, "
    "referenced_tweets ARRAY<STRUCT<type STRING>>"
    ">, "
    "_corrupt_record STRING"
)
JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"}


def _is_string(variant: str) -> str:
    return f"(schema_of_variant({variant}) = 'STRING')"


def _optional_string_check(name: str) -> str:
    leaf = f"message.data.{name}"
    return f"WHEN {leaf} IS NOT NULL AND NOT {_is_string(leaf)} THEN 'data.{name} is not a string'"


def _has_null(array: str) -> str:
    """True when ``array`` holds a NULL (an item without the field), without a higher-order function."""
    return f"(size(array_distinct({array})) > size(array_except({array}, array(CAST(NULL AS STRING)))))"


# Why a record is a dead letter, or NULL when it keeps the contract: the checks of
# backend.tweets.contract.contract_problem (which the producer and the tests use), in the same order
# (the reasons' wording may differ: an empty value is "no data.id string" here, "not JSON"
# there), then one the value alone cannot tell: a record without created_at takes its
# Kafka timestamp as its event time, which must be in the range windows can hold.
# Columns it reads: value (binary), value_text, utf8 (is value_text valid UTF-8), message
# (MESSAGE_SCHEMA), created_at_text, created_at_shaped (it has RFC 3339's shape), created_at_ms.
ERROR_SQL = f"""
CASE
  WHEN value IS NULL THEN 'empty value'
  WHEN length(value) > {MAX_MESSAGE_BYTES}
    THEN concat('oversize: ', length(value), ' bytes, more than {MAX_MESSAGE_BYTES}')
  WHEN NOT utf8 THEN 'not UTF-8'
  WHEN message._corrupt_record IS NOT NULL AND try_parse_json(value_text) IS NULL THEN 'not JSON'
  WHEN message._corrupt_record IS NOT NULL THEN 'not the message schema (an object or a list of the wrong shape)'
  WHEN message.data.id IS NULL OR NOT {_is_string("message.data.id")}
       OR try_variant_get(message.data.id, '$', 'string') = ''
    THEN 'no data.id string'
  {_optional_string_check("text")}
  {_optional_string_check("created_at")}
  {_optional_string_check("author_id")}
  {_optional_string_check("lang")}
  WHEN created_at_text IS NOT NULL AND (NOT created_at_shaped OR created_at_ms IS NULL)
    THEN 'data.created_at is not RFC 3339'
  WHEN NOT created_at_ms BETWEEN {EVENT_TIME_MIN_MS} AND {EVENT_TIME_MAX_MS - 1}
    THEN 'data.created_at is out of range (1970 to 9998)'
  WHEN {_has_null("message.data.entities.hashtags.tag")} THEN 'data.entities.hashtags is malformed'
  WHEN {_has_null("message.data.entities.mentions.username")} THEN 'data.entities.mentions is malformed'
  WHEN size(array_except(message.data.referenced_tweets.type, array{REFERENCE_TYPES})) > 0
    THEN 'data.referenced_tweets is malformed'
  WHEN created_at_text IS NULL AND NOT unix_millis(timestamp) BETWEEN {EVENT_TIME_MIN_MS} AND {EVENT_TIME_MAX_MS - 1}
    THEN 'no data.created_at, and the Kafka timestamp is out of range (1970 to 9998)'
END
"""

# Joins a tweet's hashtags into one string for normalising (no hashtag contains it).
_TAG_SEPARATOR = "\x01"


def normalised_hashtags(tags: Column) -> Column:
    """Distinct, lower-case, without leading ``#``; never NULL.

    All tags at once: join them, rewrite the one string, split it again (for the same reason
    as above, rather than transform() over the list).
    """
    from pyspark.sql import functions as F

    joined = F.lower(F.array_join(tags, _TAG_SEPARATOR))
    stripped = F.regexp_replace(joined, f"(^|{_TAG_SEPARATOR})#+", "$1")
    distinct = F.array_remove(F.array_distinct(F.split(stripped, _TAG_SEPARATOR)), "")
    return F.coalesce(distinct, F.array().cast("array<string>"))


def parse_records(raw: DataFrame) -> DataFrame:
    """Kafka rows -> one row per record: where it came from, ``error`` (NULL when valid), the fields.

    ``raw`` has the Kafka source's columns (value, topic, partition, offset, timestamp).
    Fields: ``event_time`` (created_at, else the Kafka timestamp), ``text``, ``lang`` (``und``
    when missing), ``hashtags`` (distinct, lower-case, without ``#``), ``is_retweet``,
    ``is_reply``, ``is_quote``; ``raw`` holds the start of the value for dead letters only.
    """
    from pyspark.sql import functions as F

    def text_of(leaf: str) -> Column:
        return F.try_variant_get(F.col(f"message.data.{leaf}"), "$", "string")

    def referenced(kind: str) -> Column:
        return F.coalesce(F.array_contains("message.data.referenced_tweets.type", kind), F.lit(False))

    value_text = F.col("value").cast("string")
    decoded = raw.select(
        "topic",
        "partition",
        "offset",
        "timestamp",
        "value",
        value_text.alias("value_text"),
        F.is_valid_utf8(value_text).alias("utf8"),  # once: checking 600 bytes a record shows in a profile
    )
    parseable = (F.length("value") <= MAX_MESSAGE_BYTES) & F.col("utf8")
    # Oversize and invalid UTF-8 values are never handed to the JSON parser.
    parsed = decoded.select(
        "*", F.when(parseable, F.from_json("value_text", MESSAGE_SCHEMA, JSON_OPTIONS)).alias("message")
    )
    # created_at is parsed once, for the checks and the event time (CASE branches share no
    # evaluated expression). regexp_extract rather than RLIKE: Java's "$" also matches before
    # a final newline, Python's fullmatch does not.
    with_text = parsed.select("*", text_of("created_at").alias("created_at_text"))
    timed = with_text.select(
        "*",
        (F.regexp_extract("created_at_text", f"^({RFC3339_PATTERN})", 1) == F.col("created_at_text")).alias(
            "created_at_shaped"
        ),
        F.unix_millis(F.try_to_timestamp("created_at_text")).alias("created_at_ms"),
    )
    checked = timed.withColumn("error", F.expr(ERROR_SQL))
    valid = F.col("error").isNull()
    return checked.select(
        "topic",
        "partition",
        "offset",
        "error",
        F.when(~valid, F.make_valid_utf8(F.substring("value", 1, MAX_RAW_BYTES).cast("string"))).alias("raw"),
        F.coalesce(F.timestamp_millis("created_at_ms"), F.col("timestamp")).alias("event_time"),
        F.when(valid, text_of("text")).alias("text"),
        F.coalesce(F.nullif(text_of("lang"), F.lit("")), F.lit("und")).alias("lang"),
        normalised_hashtags(F.col("message.data.entities.hashtags.tag")).alias("hashtags"),
        referenced("retweeted").alias("is_retweet"),
        referenced("replied_to").alias("is_reply"),
        referenced("quoted").alias("is_quote"),
    )

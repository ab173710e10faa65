"""The Kafka side of the job: the source's security options, a reachability check before Spark
starts, the streaming read, the topic-offsets sampler (for the console's lag on Azure) and what
Spark's data-loss error means."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from backend.aggregates.delta_store import DeltaStore
from backend.options.consumer import ConsumerOptions

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("consumer")

# How Spark's Kafka source says that offsets it had to read are gone from the topic.
_DATA_LOSS = "Some data may have been lost because they are not available in Kafka any more"


def kafka_security_options(settings: Any) -> dict[str, str]:
    """The Kafka source's security options (``kafka.*``) for the settings' cluster."""
    options = {"kafka.security.protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism is not None:
        options["kafka.sasl.mechanism"] = settings.kafka_sasl_mechanism
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if settings.kafka_sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        # Spark redacts option values that contain "password" from its plans and logs.
        options["kafka.sasl.jaas.config"] = (
            # Kafka's JAAS parser reads a quoted string with backslash escapes, but no \\u escapes:
            # non-ASCII characters must stay as they are.
            f"{module} required username={json.dumps(settings.kafka_sasl_username or '', ensure_ascii=False)} "
            f"password={json.dumps(password, ensure_ascii=False)};"
        )
    if settings.kafka_ssl_ca_location is not None:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = str(settings.kafka_ssl_ca_location)
    return options


KAFKA_CHECK_TIMEOUT_S = 10.0


def kafka_problem(options: ConsumerOptions, timeout_s: float = KAFKA_CHECK_TIMEOUT_S) -> str | None:
    """Why the topic's cluster cannot be read (unreachable, login refused), or None when it answers.

    Asked once before Spark starts: Spark's Kafka source retries an unreachable cluster forever
    and reports a wrong password only after its own retries. None also where the console's
    helpers cannot check (a bare cluster without them, a bootstrap list they do not parse).
    """
    try:
        from backend.kafka.connection import ConnectionProfile, active_profile, test_connection
        from backend.settings import load_settings
    except ImportError:
        return None
    try:
        # kafka_options are the settings' (their cluster and its security); else --bootstrap, no security.
        profile = (
            active_profile(load_settings())
            if options.kafka_options
            else ConnectionProfile(bootstrap_servers=options.bootstrap)
        )
    except ValueError:
        return None
    result = test_connection(profile, timeout_s)
    return None if result.ok else result.message


def read_topic(session: SparkSession, options: ConsumerOptions) -> DataFrame:
    reader = (
        session.readStream.format("kafka")
        .option("kafka.bootstrap.servers", options.bootstrap)
        .option("subscribe", options.topic)
        .option("startingOffsets", options.starting_offsets)
        .option("failOnDataLoss", "true" if options.on_data_loss == "fail" else "false")
    )
    for key, value in options.kafka_options.items():
        reader = reader.option(key, value)
    if options.max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(options.max_offsets_per_trigger))
    return reader.load()


def explained(error: str, options: ConsumerOptions) -> str:
    """Spark's error, with what it means and what to do when it is a known one."""
    if _DATA_LOSS in error:
        reason = re.search(r"^Reason: (.+)$", error, re.MULTILINE)
        return (
            f"records the job had not read yet are gone from topic '{options.topic}': aged out by the topic's "
            "retention while the job was stopped or behind (or the topic was deleted, or its partitions changed). "
            "The job stops rather than skip them (--on-data-loss fail). Keep the topic's retention (retention.ms) "
            "longer than the job's pauses; to go on from the earliest records still there, start it with "
            f"--on-data-loss skip. Spark said: {_DATA_LOSS}" + (f"; {reason.group(1).strip()}." if reason else ".")
        )
    return error


# -- the topic's offsets, sampled where the brokers are reachable ------------------------------

# How often --sink delta samples the topic's first and next offsets (the console's lag on Azure).
OFFSETS_SAMPLE_SECONDS = 10.0


def admin_config(options: ConsumerOptions) -> dict[str, Any] | None:
    """librdkafka settings for an admin client of the job's cluster; None when they cannot be made.

    The settings' cluster gets the settings' security (as the Kafka source does); --bootstrap none.
    """
    if not options.kafka_options:
        return {"bootstrap.servers": options.bootstrap}
    try:
        from backend.kafka.connection import active_profile, client_config_for
        from backend.settings import load_settings

        config = client_config_for(active_profile(load_settings()))
    except Exception as error:  # ImportError on a bare cluster, ValueError for settings that are no profile
        log.warning("the topic's offsets will not be sampled: no Kafka client settings (%s)", type(error).__name__)
        return None
    return {**config, "bootstrap.servers": options.bootstrap}


def topic_offsets(admin: Any, topic: str, timeout_s: float = 10.0) -> dict[int, tuple[int, int]]:
    """``{partition: (first offset, next offset)}`` of ``topic``, asked with confluent-kafka's AdminClient."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    metadata = admin.list_topics(topic, timeout=timeout_s).topics[topic]
    if metadata.error is not None:
        raise RuntimeError(f"topic '{topic}': {metadata.error.str()}")
    found: dict[int, list[int]] = {p: [0, 0] for p in metadata.partitions}
    for index, spec in enumerate((OffsetSpec.earliest(), OffsetSpec.latest())):
        answers = admin.list_offsets(
            {TopicPartition(topic, p): spec for p in metadata.partitions}, request_timeout=timeout_s
        )
        for partition, future in answers.items():
            found[partition.partition][index] = future.result(timeout=timeout_s).offset
    return {p: (low, high) for p, (low, high) in found.items()}


def sample_offsets_forever(
    store: DeltaStore, options: ConsumerOptions, stop: threading.Event, every_s: float = OFFSETS_SAMPLE_SECONDS
) -> None:
    """Append the topic's offsets to ``topic_offsets`` every ``every_s`` until ``stop``; failures are logged.

    The console on a laptop cannot reach HDInsight's brokers, the job can: so the job samples them.
    """
    config = admin_config(options)
    if config is None:
        return
    try:
        from confluent_kafka.admin import AdminClient

        # librdkafka would log every failed reconnect to the job's log; the samples' own failures are logged,
        # throttled, below.
        admin = AdminClient({**config, "log_level": 0, "error_cb": lambda _error: None})
    except Exception as error:  # confluent-kafka missing on the cluster, or a setting it refuses
        log.warning("the topic's offsets will not be sampled: %s: %s", type(error).__name__, error)
        return
    failures = 0
    while not stop.is_set():
        try:
            sampled_at = time.time()
            store.record_topic_offsets(options.topic, topic_offsets(admin, options.topic), sampled_at)
            failures = 0
        except Exception as error:  # never fatal: the aggregates go on without the lag
            failures += 1
            if failures in (1, 10) or failures % 60 == 0:  # not a line every 10 s for a long outage
                log.warning("could not sample the offsets of '%s' (%d in a row): %s", options.topic, failures, error)
        stop.wait(every_s)


def start_offsets_sampler(store: DeltaStore, options: ConsumerOptions, stop: threading.Event) -> threading.Thread:
    """The daemon thread of sample_offsets_forever (a daemon: it never holds the job's exit)."""
    thread = threading.Thread(
        target=sample_offsets_forever, args=(store, options, stop), name="topic-offsets", daemon=True
    )
    thread.start()
    return thread

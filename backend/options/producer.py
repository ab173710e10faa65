"""The producer job's options (python -m jobs.producer): names, defaults, help and rules, once.

The rules that need the settings (the X bearer token) take them as the context:
``PRODUCER.validate(values, settings)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.kafka.topic_names import DEFAULT_TOPIC, topic_name_problem
from backend.options.contract import Contract, Option, Values
from backend.tweets.sources import ReplayFileError, check_replay_file

SOURCES = ("synthetic", "replay", "x")
X_MODES = ("stream", "search")
# Events per second when no --rate is given (and no --speed): slow enough to watch on the console's charts.
DEFAULT_RATE = 100.0

DESCRIPTION = (
    "Send tweets to a Kafka topic: key = tweet id, value = the X API v2 JSON envelope. "
    "With neither --count nor --duration it runs until SIGTERM or Ctrl+C, then flushes and exits. "
    "Kafka security (SSL, SASL) comes from the settings (TWEETSTREAM_KAFKA_* variables or "
    ".streamlit/secrets.toml), never from flags. Exit codes: 0 all sent and acknowledged, "
    "1 a runtime error or failed deliveries (kept in failed.jsonl), 2 invalid options."
)


def _at_least(flag: str, minimum: int, text: str | None = None) -> Any:
    return lambda value: None if value >= minimum else text or f"{flag} must be at least {minimum}, not {value}"


def _positive(flag: str) -> Any:
    return lambda value: None if value > 0 else f"{flag} must be positive, not {value:g}"


def rate_of(values: Values) -> float:
    """The events per second the job sends at: --rate, else none with --speed, else DEFAULT_RATE."""
    if values.get("rate") is not None:
        return float(values["rate"])
    return 0.0 if values.get("speed") is not None else DEFAULT_RATE


# How long the producer waits to fill a batch (librdkafka linger.ms); a message's timeout must be longer.
LINGER_MS = 20


def message_timeout_ms(delivery_timeout_s: float) -> int:
    """librdkafka's message.timeout.ms for --delivery-timeout (0 there would mean no timeout at all)."""
    return int(delivery_timeout_s * 1000)


def _timeouts(values: Values, _context: Any) -> str | None:
    if values["delivery_timeout"] <= 0 or values["flush_timeout"] < 0:
        return "--delivery-timeout must be positive and --flush-timeout not negative"
    if message_timeout_ms(values["delivery_timeout"]) <= LINGER_MS:
        # librdkafka refuses to start otherwise ("message.timeout.ms must be greater than linger.ms").
        return f"--delivery-timeout must be more than {LINGER_MS / 1000:g} s, the time the producer fills a batch"
    return None


def _replay(values: Values, _context: Any) -> str | None:
    if values["source"] != "replay":
        if values["file"] is not None or values["loop"] or values["speed"] is not None:
            return "--file, --loop and --speed belong to --source replay"
        return None
    if values["file"] is None:
        return "--source replay needs --file PATH"
    try:
        check_replay_file(Path(values["file"]))
    except ReplayFileError as error:
        return str(error)
    if values["speed"] is not None and values["speed"] <= 0:
        return f"--speed must be positive, not {values['speed']:g}"
    if values["speed"] is not None and values["rate"]:
        return "--speed and --rate exclude each other: choose the original timing or a fixed rate"
    return None


def _x(values: Values, settings: Any) -> str | None:
    """``settings``: the console's (its x_bearer_token); None when unknown, then the token is not checked."""
    if values["source"] != "x":
        return "--query belongs to --source x" if values["query"] is not None else None
    if settings is not None and settings.x_bearer_token is None:
        return "--source x needs the X_BEARER_TOKEN environment variable (an X API v2 bearer token)"
    if values["x_mode"] == "search" and not values["query"]:
        return "--x-mode search needs --query"
    return None


def _synthetic(values: Values, _context: Any) -> str | None:
    if values["source"] != "synthetic" and (values["malformed_rate"] or values["seed"] is not None):
        return "--seed and --malformed-rate belong to --source synthetic"
    return None


_KAFKA = "Kafka"
_WHAT = "what and how much"

PRODUCER = Contract(
    prog="python -m jobs.producer",
    description=DESCRIPTION,
    options=(
        Option("--bootstrap", group=_KAFKA, help="bootstrap servers (default: from settings, the local broker)"),
        Option(
            "--topic",
            default=DEFAULT_TOPIC,
            group=_KAFKA,
            help=f"topic to send to (default: {DEFAULT_TOPIC})",
            rule=topic_name_problem,
        ),
        Option("--create-topic", bool, group=_KAFKA, help="create the topic (4 partitions) when it does not exist"),
        Option(
            "--delivery-timeout",
            float,
            300.0,
            metavar="S",
            group=_KAFKA,
            help="seconds Kafka keeps retrying one message before it counts as failed (default: 300)",
        ),
        Option(
            "--flush-timeout",
            float,
            30.0,
            metavar="S",
            group=_KAFKA,
            help="seconds to wait at the end for outstanding acknowledgements (default: 30); "
            "what is still unacknowledged then counts as failed and is kept in failed.jsonl",
        ),
        Option("--source", choices=SOURCES, default="synthetic", group=_WHAT, help="where tweets come from"),
        Option(
            "--rate",
            float,
            group=_WHAT,
            help=f"events per second (default: {DEFAULT_RATE:g}; with --speed, the file's own timing); "
            "0: as fast as possible",
            rule=lambda rate: None if rate >= 0 else f"--rate must be 0 (no limit) or positive, not {rate:g}",
        ),
        Option("--count", int, group=_WHAT, help="stop after this many events", rule=_at_least("--count", 1)),
        Option(
            "--duration",
            float,
            metavar="S",
            group=_WHAT,
            help="stop after this many seconds",
            rule=_positive("--duration"),
        ),
        Option(
            "--seed",
            int,
            group="--source synthetic",
            help="random seed: the same seed sends the same tweets (default: a new one, printed)",
        ),
        Option(
            "--malformed-rate",
            float,
            0.0,
            metavar="F",
            group="--source synthetic",
            help="fraction of deliberately broken values (not JSON, wrong types, missing id, oversize), default 0",
            rule=lambda f: None if 0 <= f <= 1 else f"--malformed-rate must be between 0 and 1, not {f:g}",
        ),
        Option(
            "--authors",
            int,
            3000,
            group="--source synthetic",
            help="number of distinct authors (default: 3000)",
            rule=_at_least("--authors", 1, "--authors must be at least 1"),
        ),
        Option(
            "--file",
            Path,
            group="--source replay",
            help="JSON Lines or a JSON array of v2 envelopes or v1.1 statuses; gzip allowed",
        ),
        Option("--loop", bool, group="--source replay", help="start the file again at its end (same tweet ids)"),
        Option(
            "--speed",
            float,
            metavar="X",
            group="--source replay",
            help="replay the original timing (created_at gaps, at most 10 s each) X times faster; "
            f"without it, --rate (default: {DEFAULT_RATE:g} a second)",
        ),
        Option(
            "--query",
            group="--source x (bearer token from the X_BEARER_TOKEN environment variable)",
            help='stream rule or search query, e.g. "#Azure lang:en -is:retweet"',
        ),
        Option(
            "--x-mode",
            choices=X_MODES,
            default="stream",
            group="--source x (bearer token from the X_BEARER_TOKEN environment variable)",
            help="stream: the filtered stream (default); search: poll recent search, as smaller access tiers allow",
        ),
        Option("--status-file", Path, group="files", help="default: <state dir>/jobs/producer/status.json"),
    ),
    rules=(_timeouts, _replay, _x, _synthetic),
)

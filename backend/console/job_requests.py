"""What the Producer and Consumer pages ask for, checked by the jobs' own option contracts before a start.

The jobs check their options (and exit 2 when one is wrong) with backend.options; the console
runs the same checks in its own process first, so a wrong setting is refused with the job's own
message and nothing is started.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from backend.kafka.topic_names import DEFAULT_TOPIC
from backend.options import consumer
from backend.options.consumer import CONSUMER, LocalDefaults
from backend.options.consumer_shape import shape_conflict
from backend.options.contract import OptionsError
from backend.options.producer import PRODUCER
from backend.settings import Settings

ProducerSource = Literal["synthetic", "replay", "x"]
# The requests' defaults are the jobs' own.
_PRODUCER = PRODUCER.defaults()
_CONSUMER = CONSUMER.defaults()


class RequestError(ValueError):
    """A request the job would refuse; the message is the job's own reason."""


@dataclass(frozen=True)
class ProducerRequest:
    source: ProducerSource = _PRODUCER["source"]
    topic: str = DEFAULT_TOPIC
    rate: float | None = None  # events per second; 0: as fast as possible; None: the job's default
    count: int | None = None  # stop after this many events; None: until Stop
    create_topic: bool = True
    # --source synthetic
    malformed_rate: float = _PRODUCER["malformed_rate"]
    # --source replay
    file: Path | None = None
    loop: bool = False
    speed: float | None = None
    # --source x
    query: str | None = None
    x_mode: Literal["stream", "search"] = _PRODUCER["x_mode"]

    def values(self) -> dict[str, Any]:
        """The producer's options for this request: those of its source only."""
        values = asdict(self)
        # The contract groups each source's own options under "--source NAME ...".
        for option in PRODUCER.options:
            group = (option.group or "").split()
            if group[:1] == ["--source"] and group[1] != self.source:
                values.pop(option.dest, None)
        if self.malformed_rate == _PRODUCER["malformed_rate"]:
            values.pop("malformed_rate", None)  # the default: left out, as the page's other sources do
        return values

    def arguments(self) -> list[str]:
        return PRODUCER.argv(self.values())


@dataclass(frozen=True)
class ConsumerRequest:
    topic: str = DEFAULT_TOPIC
    starting_offsets: Literal["earliest", "latest"] = _CONSUMER["starting_offsets"]
    window: str = _CONSUMER["window"]
    watermark: str = _CONSUMER["watermark"]
    trigger: str = _CONSUMER["trigger"]
    max_offsets_per_trigger: int | None = None
    on_data_loss: Literal["fail", "skip"] = _CONSUMER["on_data_loss"]

    def values(self) -> dict[str, Any]:
        return asdict(self)

    def arguments(self) -> list[str]:
        return CONSUMER.argv(self.values())


def check_producer(request: ProducerRequest, settings: Settings) -> list[str]:
    """The producer's arguments for ``request``, or RequestError with the producer's own reason."""
    try:
        PRODUCER.validate(request.values(), settings)
    except OptionsError as error:
        raise RequestError(str(error)) from None
    return request.arguments()


def check_consumer(request: ConsumerRequest, settings: Settings) -> list[str]:
    """The consumer's arguments for ``request``, or RequestError with the consumer's own reason."""
    defaults = LocalDefaults(settings.state_dir, settings.bootstrap)
    try:
        options = consumer.validate(request.values(), lambda: defaults)
    except OptionsError as error:
        raise RequestError(str(error)) from None
    # Another window length or topic than the store and checkpoint were written with.
    conflict = shape_conflict(options)
    if conflict is not None:
        raise RequestError(conflict)
    return request.arguments()

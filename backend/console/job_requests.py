"""What the Producer and Consumer pages ask for, as the jobs' command-line options, checked before a start.

The jobs check their own options (and exit 2 when one is wrong); the console runs the same
checks in-process first, so a wrong setting is refused with the job's own message and
nothing is started.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from backend.settings import Settings

ProducerSource = Literal["synthetic", "replay", "x"]


class RequestError(ValueError):
    """A request the job would refuse; the message is the job's own reason."""


@dataclass(frozen=True)
class ProducerRequest:
    source: ProducerSource = "synthetic"
    topic: str = "tweets"
    rate: float = 100.0  # events per second; 0: as fast as possible
    count: int | None = None  # stop after this many events; None: until Stop
    create_topic: bool = True
    # --source synthetic
    malformed_rate: float = 0.0
    # --source replay
    file: Path | None = None
    loop: bool = False
    speed: float | None = None
    # --source x
    query: str | None = None
    x_mode: Literal["stream", "search"] = "stream"

    def arguments(self) -> list[str]:
        args = ["--source", self.source, "--topic", self.topic, "--rate", f"{self.rate:g}"]
        if self.count is not None:
            args += ["--count", str(self.count)]
        if self.create_topic:
            args.append("--create-topic")
        if self.source == "synthetic" and self.malformed_rate:
            args += ["--malformed-rate", f"{self.malformed_rate:g}"]
        if self.source == "replay":
            if self.file is not None:
                args += ["--file", str(self.file)]
            if self.loop:
                args.append("--loop")
            if self.speed is not None:
                args += ["--speed", f"{self.speed:g}"]
        if self.source == "x":
            if self.query:
                args += ["--query", self.query]
            args += ["--x-mode", self.x_mode]
        return args


@dataclass(frozen=True)
class ConsumerRequest:
    topic: str = "tweets"
    starting_offsets: Literal["earliest", "latest"] = "earliest"
    window: str = "1 minute"
    watermark: str = "2 minutes"
    trigger: str = "2 seconds"
    max_offsets_per_trigger: int | None = None
    on_data_loss: Literal["fail", "skip"] = "fail"

    def arguments(self) -> list[str]:
        args = [
            "--topic",
            self.topic,
            "--starting-offsets",
            self.starting_offsets,
            "--window",
            self.window,
            "--watermark",
            self.watermark,
            "--trigger",
            self.trigger,
            "--on-data-loss",
            self.on_data_loss,
        ]
        if self.max_offsets_per_trigger is not None:
            args += ["--max-offsets-per-trigger", str(self.max_offsets_per_trigger)]
        return args


def _argparse_refusal(parse: Callable[[], object]) -> str | None:
    """Run ``parse``; argparse reports a wrong option by printing it and exiting 2: catch both."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            parse()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            lines = stderr.getvalue().strip().splitlines()
            return lines[-1].split(": error: ", 1)[-1] if lines else "invalid options"
    return None


def check_producer(request: ProducerRequest, settings: Settings) -> list[str]:
    """The producer's arguments for ``request``, or RequestError with the producer's own reason."""
    from jobs import producer

    arguments = request.arguments()
    refusal = _argparse_refusal(lambda: producer.parse_options(arguments, settings))
    if refusal is not None:
        raise RequestError(refusal)
    return arguments


def check_consumer(request: ConsumerRequest, settings: Settings) -> list[str]:
    """The consumer's arguments for ``request``, or RequestError with the consumer's own reason."""
    from jobs.consumer import options as consumer
    from jobs.consumer.checkpoint_shape import shape_conflict

    arguments = request.arguments()
    parser = consumer.build_parser()
    parsed: list[argparse.Namespace] = []
    refusal = _argparse_refusal(lambda: parsed.append(parser.parse_args(arguments)))
    if refusal is not None:
        raise RequestError(refusal)
    defaults = consumer.LocalDefaults(settings.state_dir, settings.bootstrap)
    try:
        options = consumer.validate(parsed[0], lambda: defaults)
    except consumer.OptionsError as error:
        raise RequestError(str(error)) from None
    # Another window length or topic than the store and checkpoint were written with.
    conflict = shape_conflict(options)
    if conflict is not None:
        raise RequestError(conflict)
    return arguments

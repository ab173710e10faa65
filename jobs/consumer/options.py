"""The job's command line, from its options contract (backend/options/consumer.py): the one place
that names each option, its default, help and rule for the job, the console and the Azure wizard."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from backend.options.consumer import CONSUMER, ConsumerOptions, LocalDefaults, resolve


def build_parser() -> argparse.ArgumentParser:
    return CONSUMER.build_parser()


def validate(args: argparse.Namespace, defaults: Callable[[], LocalDefaults] | None = None) -> ConsumerOptions:
    """Check the parsed arguments and fill in the defaults; raises OptionsError (its message is the CLI's).

    ``defaults`` gives the local defaults (the settings' bootstrap and state directory); it
    is called only when an option that needs one is missing.
    """
    return resolve(CONSUMER.check(vars(args)), defaults)


def inside(folder: str, name: str) -> str:
    """``folder/name`` for a path or a URI (pathlib would turn ``abfss://`` into ``abfss:/``)."""
    return f"{folder.rstrip('/')}/{name}"

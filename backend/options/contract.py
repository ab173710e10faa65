"""A job's options described once: the CLI's parser, the checks and the argv all come from it.

Standard library only: the jobs run on clusters where little else may be installed, and the
console checks a start in its own process with the same rules (and the same messages) as the job.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Values = Mapping[str, Any]
# One option's rule: its value (never None) -> the problem, or None when it is fine.
Rule = Callable[[Any], str | None]
# A rule over several options: the values and the caller's context (e.g. the settings) -> the problem or None.
CrossRule = Callable[[Values, Any], str | None]


class OptionsError(ValueError):
    """Options a job would refuse; the message is what its CLI prints after ``error: ``."""


@dataclass(frozen=True)
class Option:
    """One command-line option: ``--flag`` (its dest is the flag in snake case)."""

    flag: str
    type: type = str  # str, int, float or Path; bool makes a flag (store_true)
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    group: str | None = None  # the --help section's title; None: the parser's own options
    rule: Rule | None = None
    required: bool = False
    exclusive: str | None = None  # options sharing this name exclude each other (argparse's exclusive group)

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def is_flag(self) -> bool:
        return self.type is bool


@dataclass(frozen=True)
class Contract:
    """A job's options, their rules and the rules across them."""

    prog: str
    description: str
    options: tuple[Option, ...]
    rules: tuple[CrossRule, ...] = ()

    def defaults(self) -> dict[str, Any]:
        return {option.dest: False if option.is_flag else option.default for option in self.options}

    def build_parser(self) -> argparse.ArgumentParser:
        """The CLI's parser; its sections in the order their first option comes."""
        parser = argparse.ArgumentParser(prog=self.prog, description=self.description)
        groups: dict[str | None, Any] = {None: parser}
        exclusive: dict[str, Any] = {}
        for option in self.options:
            if option.group not in groups:
                groups[option.group] = parser.add_argument_group(option.group)
            holder = groups[option.group]
            if option.exclusive is not None:
                if option.exclusive not in exclusive:
                    exclusive[option.exclusive] = holder.add_mutually_exclusive_group()
                holder = exclusive[option.exclusive]
            if option.is_flag:
                holder.add_argument(option.flag, action="store_true", help=option.help)
                continue
            extra: dict[str, Any] = {"required": True} if option.required else {}
            if option.choices is not None:
                extra["choices"] = option.choices
            if option.metavar is not None:
                extra["metavar"] = option.metavar
            if option.default is not None:
                extra["default"] = option.default
            if option.type is not str:
                extra["type"] = option.type
            holder.add_argument(option.flag, help=option.help, **extra)
        return parser

    def parse(self, argv: Sequence[str] | None, context: Any = None) -> dict[str, Any]:
        """The CLI's values, checked; a wrong one ends the process as argparse does (usage, exit 2)."""
        parser = self.build_parser()
        values = vars(parser.parse_args(argv))
        try:
            return self.check(values, context)
        except OptionsError as error:
            parser.error(str(error))  # prints usage and "error: <message>", exits 2

    def validate(self, given: Values, context: Any = None) -> dict[str, Any]:
        """Every option's value (``given`` over the defaults), checked as the CLI would; raises OptionsError."""
        unknown = [key for key in given if key not in {option.dest for option in self.options}]
        if unknown:
            raise OptionsError("unrecognized arguments: " + " ".join(f"--{key.replace('_', '-')}" for key in unknown))
        values = self.defaults()
        for option in self.options:
            if given.get(option.dest) is not None:
                values[option.dest] = _converted(option, given[option.dest])
        missing = [option.flag for option in self.options if option.required and values[option.dest] is None]
        if missing:
            raise OptionsError(f"the following arguments are required: {', '.join(missing)}")
        for name in sorted({option.exclusive for option in self.options if option.exclusive is not None}):
            chosen = [o for o in self.options if o.exclusive == name and o.dest in given and _is_set(values[o.dest])]
            if len(chosen) > 1:
                raise OptionsError(f"argument {chosen[1].flag}: not allowed with argument {chosen[0].flag}")
        return self.check(values, context)

    def check(self, values: Values, context: Any = None) -> dict[str, Any]:
        """The rules of each option, then those across options; raises OptionsError with the first problem."""
        for option in self.options:
            value = values.get(option.dest)
            if option.rule is not None and value is not None:
                problem = option.rule(value)
                if problem is not None:
                    raise OptionsError(problem)
        for rule in self.rules:
            problem = rule(values, context)
            if problem is not None:
                raise OptionsError(problem)
        return dict(values)

    def argv(self, given: Values) -> list[str]:
        """The command line for ``given``: ``--name=value`` each (a value may start with '-'), ``--flag`` when true.

        None and false are left out: the job's default applies.
        """
        arguments = []
        for option in self.options:
            value = given.get(option.dest)
            if value is None or value is False:
                continue
            arguments.append(option.flag if option.is_flag else f"{option.flag}={_written(value)}")
        return arguments


def _is_set(value: Any) -> bool:
    return value is not None and value is not False


def _converted(option: Option, value: Any) -> Any:
    """``value`` as the option's type (a string is converted as argparse does); its choices checked."""
    if option.is_flag:
        if not isinstance(value, bool):
            raise OptionsError(f"argument {option.flag}: ignored explicit argument {value!r}")
        return value
    if isinstance(value, str) and option.type is not str:
        try:
            value = option.type(value)
        except ValueError:
            raise OptionsError(f"argument {option.flag}: invalid {option.type.__name__} value: {value!r}") from None
    if option.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, option.type) or isinstance(value, bool):
        raise OptionsError(f"argument {option.flag}: invalid {option.type.__name__} value: {value!r}")
    if option.choices is not None and value not in option.choices:
        choices = ", ".join(repr(choice) for choice in option.choices)
        raise OptionsError(f"argument {option.flag}: invalid choice: {value!r} (choose from {choices})")
    return value


def _written(value: Any) -> str:
    """A value as the CLI reads it back unchanged: 250.0 as 250, 0.05 as 0.05, a path as its text."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)

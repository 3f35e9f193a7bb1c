"""plldb's task flags: chosen short flags, typed options without defaults, plain parse errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from invoke import Task
from invoke.exceptions import ParseError
from invoke.parser import Argument

_KIND_WORDS = {int: "a whole number", float: "a number"}


class PlldbArgument(Argument):
    """An invoke Argument whose bad values and parse errors name the flag as the user typed it."""

    def __repr__(self) -> str:
        # invoke's parser puts repr(flag) into its own messages ("Flag ... needed value").
        return "--" + self.names[0]

    def set_value(self, value: Any, cast: bool = True) -> None:
        try:
            super().set_value(value, cast)
        except ValueError:
            wanted = _KIND_WORDS.get(self.kind, self.kind.__name__)
            raise ParseError(f"--{self.names[0]} expects {wanted}, not {value!r}") from None


class PlldbTask(Task):
    """A task with deliberate short flags only, and value kinds given where there is no default.

    `short` maps a dashed flag name to its one-letter alias; `kinds` gives the type of an
    option whose default is None (so the task can tell "not given" from the default value).
    """

    def __init__(
        self,
        body: Callable[..., Any],
        short: Mapping[str, str] | None = None,
        kinds: Mapping[str, type] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("auto_shortflags", False)
        super().__init__(body, **kwargs)
        self.short = dict(short or {})
        self.kinds = dict(kinds or {})

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        arguments = []
        for argument in super().get_arguments(ignore_unknown_help):
            name = argument.names[0]
            names = (*argument.names, self.short[name]) if name in self.short else argument.names
            arguments.append(
                PlldbArgument(
                    names=names,
                    kind=self.kinds.get(name, argument.kind),
                    default=argument.default,
                    help=argument.help,
                    positional=argument.positional,
                    optional=argument.optional,
                    incrementable=argument.incrementable,
                    attr_name=argument.attr_name,
                )
            )
        return arguments


def plldb_task(**options: Any) -> Callable[[Callable[..., Any]], PlldbTask]:
    """`@task(...)` for plldb's tasks: `short={"stack-name": "s"}`, `kinds={...}` as PlldbTask."""
    from invoke import task

    return task(klass=PlldbTask, **options)

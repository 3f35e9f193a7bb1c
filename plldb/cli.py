"""The `plldb` console script: an invoke Program over the same collection `inv` uses."""

from __future__ import annotations

import re
import sys

from invoke import Collection, Program
from invoke.exceptions import Exit, ParseError
from invoke.parser import Argument
from invoke.util import Lexicon

from plldb import __version__
from plldb.tasks import build_namespace

# The core flags plldb honours; invoke's others (--pty, --dry, --hide, ...) steer `c.run`,
# which plldb's tasks never call.
_CORE_FLAGS = {
    "help": "show this help, or a command's: plldb COMMAND --help",
    "version": "show plldb's version and exit",
    "list": "list the commands (optionally of one group, e.g. --list bootstrap)",
}
_PARSE_WORDING = (
    (re.compile(r"^Flag (\S+) needed value and was not given one!$"), r"\1 needs a value"),
    (re.compile(r"^Flag (\S+) doesn't take any value!$"), r"\1 takes no value"),
    (re.compile(r"^No idea what '(.*)' is!$"), r"unknown command or option '\1': see plldb --help"),
    (
        re.compile(r"^'(\S+)' did not receive required positional arguments: (.*)$"),
        r"\1 needs \2: see plldb \1 --help",
    ),
)


def join_spaced_tasks(argv: list[str], namespace: Collection) -> list[str]:
    """Let `plldb bootstrap setup` mean `plldb bootstrap.setup`, as invoke spells it."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        collection = namespace.collections.get(token)
        following = argv[index + 1] if index + 1 < len(argv) else None
        if collection is not None and following in collection.task_names:
            joined.append(f"{token}.{following}")
            index += 2
            continue
        joined.append(token)
        index += 1
    return joined


def help_before_positionals(argv: list[str], namespace: Collection) -> list[str]:
    """`plldb replay --help` as `plldb --help replay`: a task's positional argument would
    otherwise take `--help` as its value."""
    for index, token in enumerate(argv[1:], start=1):
        task = argv[index - 1]
        takes_positional = task in namespace.task_names and bool(namespace[task].positional)
        if token in ("--help", "-h") and takes_positional:
            return [*argv[: index - 1], token, task, *argv[index + 1 :]]
    return argv


def parse_error_line(error: ParseError) -> str:
    """invoke's parse error as plldb's one error line."""
    text = str(error)
    for pattern, wording in _PARSE_WORDING:
        if pattern.match(text):
            text = pattern.sub(wording, text)
            break
    return f"plldb: error: {text}"


class PlldbProgram(Program):
    """invoke's Program with plldb's own core flags, help text and error lines."""

    def core_args(self) -> list[Argument]:
        kept = [argument for argument in super().core_args() if argument.name in _CORE_FLAGS]
        for argument in kept:
            argument.help = _CORE_FLAGS[argument.name]
        return kept

    @property
    def args(self) -> Lexicon:
        # invoke's Program reads its other core flags (pty, dry, write-pyc, ...); they keep
        # their defaults here, as if never given, since plldb does not accept them.
        values = Lexicon({argument.name: argument for argument in super().core_args()})
        values.update(self.core[0].args)
        return values

    def parse_core(self, argv: list[str] | None) -> None:
        try:
            super().parse_core(argv)
        except ParseError as error:
            raise Exit(parse_error_line(error), code=1) from None

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as error:
            raise Exit(parse_error_line(error), code=1) from None

    def parse_cleanup(self) -> None:
        try:
            super().parse_cleanup()
        except ParseError as error:
            raise Exit(parse_error_line(error), code=1) from None

    def print_help(self) -> None:
        print(f"Usage: {self.binary} <command> [--options]   (e.g. plldb bootstrap setup)")
        print("")
        self.list_tasks()
        print("Options:")
        print("")
        self.print_columns(self.initial_context.help_tuples())
        print(f"{self.leading_indent}`{self.binary} <command> --help` shows a command's options.")

    def print_task_help(self, name: str) -> None:
        # invoke's header mentions core options and chained tasks, which plldb has not.
        from contextlib import redirect_stdout
        from io import StringIO

        text = StringIO()
        with redirect_stdout(text):
            super().print_task_help(name)
        header, _, rest = text.getvalue().partition("\n")
        options = " [--options]" if "[--options]" in header else ""
        print(f"Usage: {self.binary} {name.replace('.', ' ')}{options}")
        print(rest, end="")


def main(argv: list[str] | None = None) -> None:
    namespace = build_namespace()
    argv = list(sys.argv if argv is None else argv)
    program = PlldbProgram(namespace=namespace, version=__version__, name="plldb", binary="plldb")
    tokens = help_before_positionals(join_spaced_tasks(argv[1:], namespace), namespace)
    program.run([argv[0], *tokens])

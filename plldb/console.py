"""The command layer's output: tqdm progress and notices on stderr, logging setup, error exits."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from invoke.exceptions import Exit

from plldb.errors import DeployError, PlldbError
from plldb.reporting import Reporter

INTERRUPTED_EXIT_CODE = 130


class TqdmReporter(Reporter):
    """Draws a tqdm bar for each task (on a terminal) and writes notices to stderr."""

    @contextlib.contextmanager
    def task(self, label: str, total: int, unit: str = "it") -> Iterator[Callable[[int], None]]:
        from tqdm import tqdm

        bytes_unit = unit == "B"
        with tqdm(
            total=total or None,
            desc=label,
            unit=unit,
            unit_scale=bytes_unit,
            unit_divisor=1024 if bytes_unit else 1000,
            file=sys.stderr,
            leave=False,
            disable=None,  # no bar when stderr is not a terminal; notices still print
        ) as bar:
            yield bar.update

    def notice(self, message: str) -> None:
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)

    def stack_event(self, line: str, failed: bool = False) -> None:
        from tqdm import tqdm

        tqdm.write(("  ! " if failed else "    ") + line, file=sys.stderr)


def attach_printer() -> Any:
    """Backend messages to stdout (info) and stderr (errors, connection news)."""
    from plldb.attach.connection import Listener

    class Printer(Listener):
        def message(self, message: dict[str, Any]) -> None:
            if message["type"] == "info":
                print(message["message"], flush=True)
            elif message["type"] == "error":
                _err(f"backend error: {message['message']}")

        def malformed(self, raw: str | bytes, problem: str) -> None:
            _err(f"ignored a malformed message: {problem}")

        def notice(self, text: str) -> None:
            _err(text)

    return Printer()


def _err(text: str) -> None:
    print(f"plldb: {text}", file=sys.stderr, flush=True)


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("plldb").setLevel(logging.DEBUG if verbose else logging.WARNING)


@contextlib.contextmanager
def user_errors(verbose: bool) -> Iterator[None]:
    """Run a command body so that a user-caused failure ends in one line and a non-zero exit."""
    configure_logging(verbose)
    try:
        yield
    except PlldbError as error:
        if verbose:
            traceback.print_exc(file=sys.stderr)
        if isinstance(error, DeployError):
            for reason in error.reasons:
                print(f"  ! {reason}", file=sys.stderr)
        raise Exit(f"plldb: error: {error}", code=1) from None
    except KeyboardInterrupt:
        raise Exit("plldb: interrupted", code=INTERRUPTED_EXIT_CODE) from None


def print_status(status: Any) -> None:
    """`plldb status` on stdout: one line per session, its functions, then the roles' grants."""
    if not status.sessions:
        print("no debug sessions")
    for session in status.sessions:
        lease = (
            f"lease {session.lease_seconds_left} s left"
            if session.lease_seconds_left is not None
            else "no lease"
        )
        print(
            f"{session.stack_name}\t{session.session_id[:8]}\t{session.status}\t"
            f"since {session.since or '-'}\t{lease}\tby {session.created_by or '-'}"
        )
        for name in session.functions:
            print(f"  instrumented {name}")
    for role, holders in sorted(status.roles.items()):
        print(f"role {role}: PLLDBRelayPolicy held by {len(holders)} function(s)")

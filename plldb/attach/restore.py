"""After detaching: the functions this CLI saw instrumented, and whether they were restored."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from plldb.attach.connection import Listener

log = logging.getLogger(__name__)

# The instrumentation function's progress line for a function it changed (see
# _instrumentation.progress_message): "instrumented 2/5: orders-api".
_INSTRUMENTED = re.compile(r"^instrumented \d+/\d+: (?P<name>\S+)$")
# The variable an instrumented function carries; restoring removes it.
SESSION_VARIABLE = "PLLDB_SESSION_ID"


class InstrumentedFunctions(Listener):
    """Passes everything to `inner`, noting the functions the backend says it instrumented."""

    def __init__(self, inner: Listener) -> None:
        self.inner = inner
        self.names: set[str] = set()

    def message(self, message: dict[str, Any]) -> None:
        if message.get("type") == "info":
            match = _INSTRUMENTED.match(str(message.get("message", "")))
            if match:
                self.names.add(match["name"])
        self.inner.message(message)

    def malformed(self, raw: str | bytes, problem: str) -> None:
        self.inner.malformed(raw, problem)

    def notice(self, text: str) -> None:
        self.inner.notice(text)


@dataclass(frozen=True)
class RestoreReport:
    """What the CLI could see of the backend's restore, when it stopped looking."""

    restored: tuple[str, ...]
    pending: tuple[str, ...] = ()
    unknown: str | None = None  # why the functions could not be read

    def line(self) -> str:
        total = len(self.restored) + len(self.pending)
        if self.unknown is not None:
            return (
                f"the backend restores the {_functions(total)} plldb instrumented "
                f"(not checked: {self.unknown})"
            )
        if not self.pending:
            return f"restored {_functions(total)}"
        return (
            f"restored {len(self.restored)} of {_functions(total)}; the backend is still "
            f"restoring {', '.join(self.pending)} and finishes without plldb"
        )


def _functions(count: int) -> str:
    return f"{count} function" + ("" if count == 1 else "s")


def await_restore(
    lambda_client: Any,
    names: Collection[str],
    session_ids: Collection[str],
    timeout: float = 10.0,
    poll: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RestoreReport:
    """Wait until none of `names` carries one of `session_ids` any more, or `timeout` passes.

    The backend restores after the connection has closed ($disconnect), so the CLI can only
    watch the functions, with the developer's own Lambda read permission.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = clock() + timeout
    pending = sorted(names)
    while True:
        try:
            pending = [name for name in pending if _carries(lambda_client, name, session_ids)]
        except (BotoCoreError, ClientError) as error:
            log.debug("reading the functions after detaching failed", exc_info=True)
            return RestoreReport(tuple(sorted(names)), unknown=_short(error))
        if not pending or clock() >= deadline:
            restored = tuple(sorted(set(names) - set(pending)))
            return RestoreReport(restored, tuple(pending))
        sleep(poll)


def _carries(lambda_client: Any, name: str, session_ids: Collection[str]) -> bool:
    from botocore.exceptions import ClientError

    try:
        configuration = lambda_client.get_function_configuration(FunctionName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False  # deleted meanwhile: nothing left to restore
        raise
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    return variables.get(SESSION_VARIABLE) in session_ids


def _short(error: Exception) -> str:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return code or (str(error).splitlines() or [type(error).__name__])[0]

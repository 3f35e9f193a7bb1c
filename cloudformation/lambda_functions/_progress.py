"""What the instrumentation tells the CLI while it works: counts, skips, failures, the last word.

A connection that is gone or failing never stops the work. Standalone: stdlib and boto3 only.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import _instrumentation as plan
import _protocol
import _sessions
from _common import get_logger
from _grants import describe
from botocore.exceptions import BotoCoreError, ClientError

logger = get_logger(__name__)


def post_progress(connection_id: str, text: str, final: bool = False) -> None:
    """One info message to the CLI (or, `final`, the end of its session)."""
    message = _protocol.session_closed(text) if final else _protocol.info(text)
    try:
        _sessions.post_to_connection(connection_id, _protocol.encode(message))
    except (BotoCoreError, ClientError) as error:
        logger.warning("progress message not delivered: %s", describe(error))


class Progress:
    """Counts finished functions (from several threads) and tells the CLI, when one listens."""

    def __init__(self, verb: str, total: int, connection_id: str | None) -> None:
        self.verb, self.total, self.done = verb, total, 0
        self.connection_id = connection_id if os.environ.get("PLLDB_CALLBACK_URL") else None
        self._lock = threading.Lock()

    def step(self, name: str, outcome: str | None = None) -> None:
        with self._lock:
            self.done += 1
            done = self.done
        verb = outcome or self.verb
        self.say(plan.progress_message(verb, done, self.total, name))

    def say(self, text: str) -> None:
        if self.connection_id:
            post_progress(self.connection_id, text)

    def end(self, text: str) -> None:
        """The last word: the CLI stops, and its disconnect closes the session."""
        if self.connection_id:
            post_progress(self.connection_id, text, final=True)


def summarise(result: dict[str, Any], progress: Progress) -> None:
    """Tell the CLI what it must know beyond the counts: skips, failures, the raised timeout."""
    for name, reason in sorted(result["skipped"].items()):
        progress.say(f"skipped {name}: {reason}")
    for name, error in sorted(result["failed"].items()):
        progress.say(f"failed {name}: {error}")
    for name, warning in sorted(result["warnings"].items()):
        progress.say(f"warning {name}: {warning}")
    if result["notes"]:
        raised = sorted(result["notes"])
        progress.say(
            f"timeout raised to {plan.MAX_TIMEOUT} s on {len(raised)} function(s) "
            f"({', '.join(raised)}); API Gateway REST callers still time out after "
            f"{plan.API_GATEWAY_REST_TIMEOUT} s"
        )

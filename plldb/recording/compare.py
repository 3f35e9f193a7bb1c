"""Recorded and replayed answers side by side: what is compared, and the diff a person reads."""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Any

from plldb.attach.invocation import InvocationResult
from plldb.recording.document import Recording
from plldb.recording.redact import redact

if TYPE_CHECKING:
    from plldb.recording.replay import Replayed


def _view(response: Any = None, error: dict | None = None) -> dict[str, Any]:
    # Tracebacks name files and lines of this machine: the error's type and message decide.
    if error is not None:
        return {"error": {k: error.get(k) for k in ("errorType", "errorMessage")}}
    return {"response": response}


def recorded_view(recording: Recording) -> dict[str, Any]:
    return _view(recording.response, recording.error)


def replayed_view(recording: Recording, result: InvocationResult) -> dict[str, Any]:
    """The replayed answer redacted as the recorded one was, so a redacted value compares equal."""
    rules = recording.redactions
    if result.error is not None:
        return _view(error=redact(result.error, rules, root=False))
    return _view(redact(result.payload, rules))


def _expanded(value: Any) -> Any:
    """JSON text (API Gateway bodies) shown as the structure it holds, so a diff finds the line."""
    if isinstance(value, dict):
        return {key: _expanded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_expanded(item) for item in value]
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return {"(JSON text)": _expanded(json.loads(value))}
        except ValueError:
            return value
    return value


def _lines(value: Any) -> list[str]:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").splitlines(
        keepends=True
    )


def answer_diff(recording: Recording, replayed: dict[str, Any]) -> str:
    """A unified diff of the recorded and replayed answers; empty when they are equal."""
    recorded = recorded_view(recording)
    if recorded == replayed:
        return ""
    before, after = _expanded(recorded), _expanded(replayed)
    if before == after:  # same structure, different text: show the text
        before, after = recorded, replayed
    return "".join(
        difflib.unified_diff(
            _lines(before), _lines(after), f"{recording.path} (recorded)", "replayed"
        )
    )


def describe(replayed: Replayed, compare: bool = True) -> str:
    """What `plldb replay` prints for one recording (stdout)."""
    recording, result = replayed.recording, replayed.result
    where = f"{recording.path} ({recording.function_name})"
    if compare:
        return f"same: {where}\n" if replayed.same else f"different: {where}\n{replayed.diff}"
    answer = _view(result.payload, result.error)
    return f"ran: {where}\n" + "".join(_lines(answer))

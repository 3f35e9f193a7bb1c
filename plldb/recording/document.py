"""One recorded invocation as a JSON document: building it, naming its file, reading it back."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from plldb.attach.invocation import Ran
from plldb.errors import PlldbError
from plldb.recording.redact import NO_RULES, Redactions, redact

FORMAT = "plldb-recording/1"
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class RecordingError(PlldbError):
    """A file that is missing or is not a plldb recording."""


@dataclass(frozen=True)
class Recording:
    path: Path
    document: dict[str, Any]

    @property
    def function_name(self) -> str:
        return self.document["function"]["name"]

    @property
    def logical_id(self) -> str:
        return self.document["function"]["logicalId"]

    @property
    def event(self) -> Any:
        return self.document["event"]

    @property
    def context(self) -> dict[str, Any]:
        return self.document["context"]

    @property
    def request_id(self) -> str:
        return self.document["context"]["awsRequestId"]

    @property
    def timeout_ms(self) -> int:
        return int(self.document["context"]["timeoutMs"])

    @property
    def failed(self) -> bool:
        return "error" in self.document

    @property
    def response(self) -> Any:
        """The recorded answer; None when the handler failed (see `error`)."""
        return self.document.get("response")

    @property
    def error(self) -> dict[str, Any] | None:
        return self.document.get("error")

    @property
    def redactions(self) -> Redactions:
        return Redactions(tuple(self.document.get("redactions", ())))


def timestamp(epoch_seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds: 2026-12-03T17:05:01.123Z."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def file_name(ran: Ran) -> str:
    """20261203T170501.123Z-<function>-<request id's first 8>.json: names sort by time."""
    stamp = timestamp(ran.started_at).replace("-", "").replace(":", "")
    function = _UNSAFE_IN_NAME.sub("_", ran.invocation.function_name)
    request = _UNSAFE_IN_NAME.sub("_", ran.invocation.request_id)[:8]
    return f"{stamp}-{function}-{request}.json"


def _context(ran: Ran) -> dict[str, Any]:
    invocation = ran.invocation
    details = dict(invocation.context)
    details.update(
        {
            "awsRequestId": invocation.request_id,
            "functionName": invocation.function_name,
            "invokedFunctionArn": invocation.invoked_function_arn,
            # The function's own timeout does not reach the CLI (the relay keeps PLLDB_*
            # variables to itself); the time left when it started is what the handler saw.
            "timeoutMs": max(0, invocation.deadline_ms - int(ran.started_at * 1000)),
        }
    )
    details.setdefault("functionVersion", "$LATEST")
    return details


def build(ran: Ran, rules: Redactions = NO_RULES) -> dict[str, Any]:
    """The redacted document for one invocation."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "function": {
            "name": ran.invocation.function_name,
            "logicalId": ran.function.logical_id,
            "handler": ran.function.handler,
        },
        "timestamp": timestamp(ran.started_at),
        "durationMs": round(ran.duration_ms, 3),
        "context": _context(ran),
        "environmentVariables": sorted(ran.invocation.environment),
        "event": redact(ran.invocation.event, rules),
    }
    if ran.result.error is not None:
        document["error"] = ran.result.error
    else:
        document["response"] = redact(ran.result.payload, rules)
    # Headers, keys and regexes anywhere in the file; the JSON paths were for event and answer.
    document = redact(document, rules, root=False)
    document["redactions"] = list(rules.rules)
    return document


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def load(path: Path) -> Recording:
    """Read one recording; RecordingError when missing, not JSON or not a recording."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecordingError(f"{path}: cannot be read: {error}") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise RecordingError(f"{path}: not a plldb recording (not JSON: {error})") from None
    problem = _problem(document)
    if problem:
        raise RecordingError(f"{path}: not a plldb recording ({problem})")
    return Recording(path, document)


def _problem(document: Any) -> str | None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return f'no "format": "{FORMAT}"'
    function = document.get("function")
    if not isinstance(function, dict) or not all(
        isinstance(function.get(key), str) for key in ("name", "logicalId")
    ):
        return "no function name and logical id"
    context = document.get("context")
    if not isinstance(context, dict) or not isinstance(context.get("timeoutMs"), int):
        return "no context with timeoutMs"
    if "event" not in document or ("response" in document) == ("error" in document):
        return "needs an event and exactly one of response or error"
    return None

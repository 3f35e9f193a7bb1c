"""The messages that cross plldb's WebSocket, validated the same way on both ends.

The one definition: Lambda functions and the debugger layer import it as `_protocol` (packaged
into their zips) and the CLI loads this same file through plldb.protocol. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's limit for one message (and post_to_connection)
# API Gateway's limit for one frame a client sends: the CLI never sends a larger message.
MAX_CLIENT_FRAME_BYTES = 32 * 1024
# A relayed event or answer may be up to Lambda's 6 MB; parts carry it compressed.
MAX_PARTS = 512
MAX_ASSEMBLED_BYTES = 16 * 1024 * 1024
_PART_OVERHEAD = 512  # room for a part's own fields around its data

REQUEST, RESPONSE, ERROR, PART = "request", "response", "error", "part"
# The messages that belong to one invocation, and may be split into parts.
INVOCATION_TYPES = (REQUEST, RESPONSE, ERROR)


class ProtocolError(ValueError):
    """A message that is not JSON, too large, of an unknown type, or missing a field."""


def _string(name: str) -> Any:
    def check(message: dict[str, Any]) -> str | None:
        return None if isinstance(message.get(name), str) else f"needs a string {name!r}"

    return check


def _integer(name: str, low: int = 0, high: int | None = None) -> Any:
    def check(message: dict[str, Any]) -> str | None:
        value = message.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            return f"needs an integer {name!r} of at least {low}"
        if high is not None and value > high:
            return f"needs an integer {name!r} of at most {high}"
        return None

    return check


def _present(name: str) -> Any:
    def check(message: dict[str, Any]) -> str | None:
        return None if name in message else f"needs a {name!r} field"

    return check


def _string_map(name: str) -> Any:
    def check(message: dict[str, Any]) -> str | None:
        value = message.get(name, {})
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return f"needs {name!r} to be an object of strings"
        return None

    return check


def _object(name: str) -> Any:
    def check(message: dict[str, Any]) -> str | None:
        value = message.get(name, {})
        return None if isinstance(value, dict) else f"needs {name!r} to be an object"

    return check


def _error_shape(message: dict[str, Any]) -> str | None:
    """An error is either the backend's news ("message") or an invocation's failure."""
    if "requestId" not in message:
        return _string("message")(message)
    for check in (_string("requestId"), _string("errorType"), _string("errorMessage")):
        problem = check(message)
        if problem:
            return problem
    trace = message.get("stackTrace", [])
    if not isinstance(trace, list) or not all(isinstance(line, str) for line in trace):
        return "needs 'stackTrace' to be a list of strings"
    return None


def _part_kind(message: dict[str, Any]) -> str | None:
    if message.get("of") not in INVOCATION_TYPES:
        return f"needs 'of' to be one of {', '.join(INVOCATION_TYPES)}"
    if isinstance(message.get("index"), int) and message["index"] >= message.get("count", 0):
        return "has an 'index' beyond its 'count'"
    return None


# type -> the checks its fields must pass, beyond "type"
CHECKS: dict[str, tuple[Any, ...]] = {
    "keepalive": (),
    "info": (_string("message"),),
    ERROR: (_error_shape,),
    # The backend ends this debugger's session (another attach took over): do not reconnect.
    "session_closed": (_string("message"),),
    # An invocation relayed to the CLI: the event, its deadline (epoch ms) and its context.
    REQUEST: (
        _string("requestId"),
        _string("functionName"),
        _present("event"),
        _integer("deadlineMs"),
        _string_map("environment"),
        _object("context"),
        _string_map("credentials"),
    ),
    # The CLI's answer to a request: the handler's return value.
    RESPONSE: (_string("requestId"), _present("payload")),
    # One slice of a request, response or error too large for one message.
    PART: (
        _string("requestId"),
        _integer("index"),
        _integer("count", 1, MAX_PARTS),
        _string("data"),
        _part_kind,
    ),
}


def parse(raw: str | bytes, limit: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Decode and validate one message; raises ProtocolError saying what is wrong."""
    size = len(raw if isinstance(raw, bytes) else raw.encode("utf-8"))
    if size > limit:
        raise ProtocolError(f"message of {size} bytes exceeds {limit}")
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(f"message is not JSON: {error}") from None
    return validate(message)


def validate(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise ProtocolError("message must be a JSON object")
    kind = message.get("type")
    if kind not in CHECKS:
        known = ", ".join(sorted(CHECKS))
        raise ProtocolError(f"unknown message type {kind!r} (known: {known})")
    for check in CHECKS[kind]:
        problem = check(message)
        if problem:
            raise ProtocolError(f"{kind} message {problem}")
    return message


def encode(message: dict[str, Any]) -> str:
    """Compact JSON; ASCII only, so its length in characters is its size in bytes."""
    return json.dumps(message, separators=(",", ":"))


def info(text: str) -> dict[str, Any]:
    return {"type": "info", "message": text}


def error(text: str) -> dict[str, Any]:
    return {"type": ERROR, "message": text}


def keepalive() -> dict[str, Any]:
    return {"type": "keepalive"}


def session_closed(text: str) -> dict[str, Any]:
    return {"type": "session_closed", "message": text}


def request(
    request_id: str,
    function_name: str,
    event: Any,
    deadline_ms: int,
    environment: dict[str, str] | None = None,
    context: dict[str, Any] | None = None,
    credentials: dict[str, str] | None = None,
) -> dict[str, Any]:
    message = {
        "type": REQUEST,
        "requestId": request_id,
        "functionName": function_name,
        "event": event,
        "deadlineMs": int(deadline_ms),
        "environment": dict(environment or {}),
        "context": dict(context or {}),
    }
    if credentials:
        message["credentials"] = dict(credentials)
    return message


def response(request_id: str, payload: Any) -> dict[str, Any]:
    return {"type": RESPONSE, "requestId": request_id, "payload": payload}


def invocation_error(
    request_id: str, error_type: str, error_message: str, stack_trace: list[str] | None = None
) -> dict[str, Any]:
    return {
        "type": ERROR,
        "requestId": request_id,
        "errorType": error_type,
        "errorMessage": error_message,
        "stackTrace": list(stack_trace or []),
    }


def is_invocation_error(message: dict[str, Any]) -> bool:
    return message.get("type") == ERROR and "requestId" in message


def lambda_error(message: dict[str, Any]) -> dict[str, Any]:
    """The body Lambda's Runtime API takes for a failed invocation."""
    return {
        "errorMessage": message["errorMessage"],
        "errorType": message["errorType"],
        "stackTrace": message.get("stackTrace", []),
    }


# ------------------------------------------------------------------ parts


def frames(message: dict[str, Any], limit: int = MAX_MESSAGE_BYTES) -> list[str]:
    """The encoded message, or its parts when it is larger than `limit` bytes.

    Parts carry the message's JSON compressed and base64-encoded, sliced; each part is a
    message of its own, at most `limit` bytes.
    """
    encoded = encode(message)
    if len(encoded) <= limit:
        return [encoded]
    if message.get("type") not in INVOCATION_TYPES or "requestId" not in message:
        raise ProtocolError(f"a {message.get('type')} message cannot be split into parts")
    packed = base64.b64encode(zlib.compress(encoded.encode("ascii"), 6)).decode("ascii")
    size = max(1, limit - _PART_OVERHEAD - len(message["requestId"]))
    slices = [packed[start : start + size] for start in range(0, len(packed), size)]
    if len(slices) > MAX_PARTS:
        raise ProtocolError(f"message of {len(encoded)} bytes needs more than {MAX_PARTS} parts")
    parts = [
        {
            "type": PART,
            "requestId": message["requestId"],
            "of": message["type"],
            "index": index,
            "count": len(slices),
            "data": data,
        }
        for index, data in enumerate(slices)
    ]
    return [encode(part) for part in parts]


def join(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The message a complete, ordered list of parts carries; validated like any other."""
    packed = "".join(part["data"] for part in parts)
    try:
        compressed = base64.b64decode(packed, validate=True)
        inflater = zlib.decompressobj()
        encoded = inflater.decompress(compressed, MAX_ASSEMBLED_BYTES)
    except (binascii.Error, ValueError, zlib.error) as problem:
        raise ProtocolError(f"parts of {parts[0]['requestId']} do not decode: {problem}") from None
    if inflater.unconsumed_tail:
        raise ProtocolError(f"message in parts exceeds {MAX_ASSEMBLED_BYTES} bytes")
    message = parse(encoded, limit=MAX_ASSEMBLED_BYTES)
    if message["type"] != parts[0]["of"] or message.get("requestId") != parts[0]["requestId"]:
        raise ProtocolError("parts carry a message other than the one they announce")
    return message


class Reassembler:
    """Collects parts until their message is whole; bounded in messages kept at once."""

    def __init__(self, max_pending: int = 64) -> None:
        self.max_pending = max_pending
        self._pending: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}

    def add(self, part: dict[str, Any]) -> dict[str, Any] | None:
        """The whole message once its last part arrives, else None; ProtocolError if they clash."""
        key = (part["requestId"], part["of"])
        received = self._pending.get(key)
        if received is None:
            if len(self._pending) >= self.max_pending:
                self._pending.pop(next(iter(self._pending)))  # the oldest was abandoned
            received = self._pending[key] = {}
        if received and next(iter(received.values()))["count"] != part["count"]:
            del self._pending[key]
            raise ProtocolError(f"parts of {part['requestId']} disagree on their count")
        received[part["index"]] = part
        if len(received) < part["count"]:
            return None
        del self._pending[key]
        return join([received[index] for index in range(part["count"])])

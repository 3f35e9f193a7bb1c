"""The messages that cross plldb's WebSocket, validated the same way on both ends.

The one definition: Lambda functions import it as `_protocol` (packaged into their zips) and
the CLI loads this same file through plldb.protocol. Standard library only.
"""

from __future__ import annotations

import json
from typing import Any

MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket frame limit

# type -> the fields it must carry (each a string), beyond "type"
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "keepalive": (),
    "info": ("message",),
    "error": ("message",),
    # The backend ends this debugger's session (another attach took over): do not reconnect.
    "session_closed": ("message",),
}


class ProtocolError(ValueError):
    """A message that is not JSON, too large, of an unknown type, or missing a field."""


def parse(raw: str | bytes) -> dict[str, Any]:
    """Decode and validate one message; raises ProtocolError saying what is wrong."""
    size = len(raw if isinstance(raw, bytes) else raw.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {size} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(f"message is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError("message must be a JSON object")
    kind = message.get("type")
    if kind not in REQUIRED_FIELDS:
        known = ", ".join(sorted(REQUIRED_FIELDS))
        raise ProtocolError(f"unknown message type {kind!r} (known: {known})")
    for name in REQUIRED_FIELDS[kind]:
        if not isinstance(message.get(name), str):
            raise ProtocolError(f"{kind} message needs a string {name!r}")
    return message


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def info(text: str) -> dict[str, Any]:
    return {"type": "info", "message": text}


def error(text: str) -> dict[str, Any]:
    return {"type": "error", "message": text}


def keepalive() -> dict[str, Any]:
    return {"type": "keepalive"}


def session_closed(text: str) -> dict[str, Any]:
    return {"type": "session_closed", "message": text}

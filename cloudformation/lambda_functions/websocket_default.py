"""WebSocket $default route (messages from the debugger CLI). Standalone: stdlib and boto3."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import _protocol
import _sessions
from _common import get_logger
from botocore.exceptions import BotoCoreError, ClientError

logger = get_logger(__name__)

# Messages the CLI may send; the rest of the protocol flows the other way.
_FROM_CLI = frozenset({"keepalive"})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection_id = (event.get("requestContext") or {}).get("connectionId") or ""
    try:
        message = _protocol.parse(_body(event))
    except _protocol.ProtocolError as problem:
        return _reply_error(connection_id, str(problem))
    kind = message["type"]
    if kind not in _FROM_CLI:
        return _reply_error(connection_id, f"unexpected message type {kind!r} from the debugger")
    logger.debug("%s from connection %s", kind, connection_id)
    return {"statusCode": 200}


def _body(event: dict[str, Any]) -> str | bytes:
    body = event.get("body")
    if body is None:
        return ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return body
    return body


def _reply_error(connection_id: str, problem: str) -> dict[str, Any]:
    logger.info("bad message from connection %s: %s", connection_id, problem)
    if not connection_id:
        return {"statusCode": 200}
    try:
        if not _sessions.post_to_connection(
            connection_id, _protocol.encode(_protocol.error(problem))
        ):
            logger.info("connection %s is gone; the error was not delivered", connection_id)
    except (BotoCoreError, ClientError):
        logger.exception("answering connection %s failed", connection_id)
        return {"statusCode": 500}
    return {"statusCode": 200}

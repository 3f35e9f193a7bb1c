"""WebSocket $default route (messages from the debugger CLI). Standalone: stdlib and boto3."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import _answers
import _protocol
import _sessions
from _common import get_logger, short_id
from botocore.exceptions import BotoCoreError, ClientError

logger = get_logger(__name__)

# Messages the CLI may send; the rest of the protocol flows the other way.
_FROM_CLI = frozenset({"keepalive", _protocol.RESPONSE, _protocol.ERROR, _protocol.PART})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection_id = (event.get("requestContext") or {}).get("connectionId") or ""
    try:
        message = _protocol.parse(_body(event))
    except _protocol.ProtocolError as problem:
        return _reply_error(connection_id, str(problem))
    kind = message["type"]
    if kind not in _FROM_CLI or (kind == _protocol.ERROR and "requestId" not in message):
        return _reply_error(connection_id, f"unexpected message type {kind!r} from the debugger")
    if kind == _protocol.PART and message["of"] == _protocol.REQUEST:
        return _reply_error(connection_id, "the debugger cannot send a request")
    logger.debug("%s from connection %s", kind, connection_id)
    if kind == "keepalive":
        return _heartbeat(connection_id)
    try:
        _store_answer(connection_id, message)
    except _answers.Refused as refusal:
        return _reply_error(connection_id, str(refusal))
    except (BotoCoreError, ClientError):
        logger.exception("storing the answer from connection %s failed", connection_id)
        return {"statusCode": 500}
    return {"statusCode": 200}


def _heartbeat(connection_id: str) -> dict[str, Any]:
    """A keepalive is the CLI's heartbeat: it extends the session's lease."""
    try:
        sessions = [
            session
            for session in _sessions.sessions_of_connection(connection_id)
            if session.get("Status") == _sessions.ACTIVE
        ]
        extended = any(
            _sessions.extend_lease(session["SessionId"], connection_id, _sessions.now())
            for session in sessions
        )
        if not extended:
            # Swept (its lease ran out) or taken over: tell the CLI, which stops instead of
            # debugging a stack that no longer relays to it.
            logger.info("heartbeat from connection %s, which holds no session", connection_id)
            notice = _protocol.session_closed("the session ended: its lease ran out")
            _sessions.post_to_connection(connection_id, _protocol.encode(notice))
    except (BotoCoreError, ClientError):
        logger.exception("extending the lease of connection %s failed", connection_id)
        return {"statusCode": 500}
    return {"statusCode": 200}


def _store_answer(connection_id: str, message: dict[str, Any]) -> None:
    """Keep a response, an invocation error or one of their parts for the waiting relay."""
    session_id = _session_of(connection_id)
    request_id = message["requestId"]
    if message["type"] == _protocol.PART:
        done = _answers.answer_part(
            request_id, session_id, message["index"], message["count"], _protocol.encode(message)
        )
        if done:
            logger.info("answer to %s received in %d parts", request_id, message["count"])
        return
    _answers.answer(request_id, session_id, _protocol.encode(message))
    logger.info("%s to %s from session %s", message["type"], request_id, short_id(session_id))


def _session_of(connection_id: str) -> str:
    if connection_id:
        for session in _sessions.sessions_of_connection(connection_id):
            if session.get("Status") == _sessions.ACTIVE:
                return session["SessionId"]
    raise _answers.Refused("this connection holds no active debugger session")


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

"""WebSocket $connect authorizer on the sessionId query parameter. Standalone: stdlib and boto3."""

from __future__ import annotations

import re
from typing import Any

import _sessions
import _stack_lock
from _common import get_logger, short_id
from botocore.exceptions import BotoCoreError, ClientError

logger = get_logger(__name__)

# Sessions are str(uuid4()); anything else cannot name one, so it is denied without a lookup.
_SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method_arn = event.get("methodArn", "")
    session_id = (event.get("queryStringParameters") or {}).get("sessionId") or ""
    connection_id = (event.get("requestContext") or {}).get("connectionId") or ""
    try:
        session, reason = _authorize(session_id, connection_id)
    except (BotoCoreError, ClientError):
        # An authorizer fails closed: a broken lookup must never let a connection through.
        logger.exception("session %s denied: lookup failed", short_id(session_id))
        return _policy("Deny", method_arn, "plldb")
    if session is None:
        logger.info("session %s denied: %s", short_id(session_id), reason)
        return _policy("Deny", method_arn, "plldb")
    stack_name = session["StackName"]
    logger.info(
        "session %s of stack %s allowed on connection %s",
        short_id(session_id),
        stack_name,
        connection_id,
    )
    return _policy(
        "Allow", method_arn, stack_name, {"sessionId": session_id, "stackName": stack_name}
    )


def _authorize(session_id: str, connection_id: str) -> tuple[dict[str, Any] | None, str]:
    """The session now ACTIVE on this connection, or None and why not."""
    if not session_id:
        return None, "no sessionId in the query string"
    if not connection_id:
        return None, "no connectionId in the request context"
    if not _SESSION_ID.fullmatch(session_id):
        return None, "unknown session"
    session = _sessions.get_session(session_id)
    if session is None:
        return None, "unknown session"
    if session.get("Status") != _sessions.PENDING:
        return None, f"session is not pending (status {session.get('Status')})"
    now = _sessions.now()
    if int(session.get("TTL", 0)) <= now:
        return None, "session expired"
    stack_name = str(session.get("StackName", ""))
    try:
        activated = _stack_lock.activate_holding_stack(session_id, stack_name, connection_id, now)
    except _stack_lock.SessionUnavailable:
        return None, "race lost: another connection activated the session first"
    except _stack_lock.StackHeld:
        return None, f"stack {stack_name} is held by another debugger's session"
    return activated, ""


def _policy(
    effect: str, method_arn: str, principal: str, context: dict[str, str] | None = None
) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}
            ],
        },
    }
    if context is not None:
        policy["context"] = context
    return policy

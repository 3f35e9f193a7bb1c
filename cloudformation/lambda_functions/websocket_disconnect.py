"""WebSocket $disconnect route. Standalone: standard library and boto3 only."""

from __future__ import annotations

from typing import Any

import _sessions
import _stack_lock
from _common import get_logger, short_id
from botocore.exceptions import BotoCoreError, ClientError

logger = get_logger(__name__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection_id = (event.get("requestContext") or {}).get("connectionId") or ""
    if not connection_id:
        logger.warning("$disconnect without a connectionId")
        return {"statusCode": 200}
    try:
        sessions = _sessions.sessions_of_connection(connection_id)
        if not sessions:
            logger.info("connection %s closed; it held no session", connection_id)
        for session in sessions:
            closed = _sessions.close_connection(session["SessionId"], connection_id)
            logger.info(
                "connection %s closed: session %s of stack %s %s",
                connection_id,
                short_id(session["SessionId"]),
                session.get("StackName"),
                "CLOSED" if closed else "already released by another request",
            )
            if closed:
                _stack_lock.release(session.get("StackName", ""), session["SessionId"])
            if closed and not _sessions.start_instrumentation(
                "restore", session["SessionId"], session.get("StackName", "")
            ):
                logger.error("could not start restoring stack %s", session.get("StackName"))
    except (BotoCoreError, ClientError):
        # API Gateway ignores what $disconnect answers; the log is the only place this shows.
        logger.exception("closing the session of connection %s failed", connection_id)
        return {"statusCode": 500}
    return {"statusCode": 200}

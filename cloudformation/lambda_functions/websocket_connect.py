"""WebSocket $connect route. Standalone: standard library and boto3 only."""

from __future__ import annotations

from typing import Any

import _sessions
from _common import get_logger, short_id

logger = get_logger(__name__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # The authorizer already checked the session and made it ACTIVE on this connection.
    request = event.get("requestContext") or {}
    authorizer = request.get("authorizer") or {}
    logger.info(
        "debugger connected to stack %s: session %s, connection %s",
        authorizer.get("stackName", "-"),
        short_id(authorizer.get("sessionId")),
        request.get("connectionId"),
    )
    session_id, stack_name = authorizer.get("sessionId"), authorizer.get("stackName")
    started = bool(session_id and stack_name) and _sessions.start_instrumentation(
        "instrument", session_id, stack_name
    )
    if not started:
        logger.error("could not start instrumenting stack %s", stack_name)
    return {"statusCode": 200}

"""The dead man's switch: on a schedule, ends every ACTIVE session whose CLI went silent.

API Gateway's $disconnect is best effort, so a crashed laptop or a network split can leave a
session ACTIVE and its stack instrumented. A session whose lease ran out (no heartbeat) or whose
connection API Gateway no longer knows (GetConnection answers GoneException) is closed with a
conditional write, and only the writer that closed it starts the restore: a heartbeat or a
$disconnect that got there first wins, and sweeper and CLI never both restore. The restore is
the instrumentation function's own, which releases the relay grants through the ledger.
A CLOSED session that still records functions well after its restore started (the restore
failed, or was never started) gets its restore started again, one sweep at a time.
Standalone: standard library and boto3 only.
"""

from __future__ import annotations

from typing import Any

import _sessions
from _common import get_logger, short_id
from botocore.exceptions import BotoCoreError, ClientError

logger = get_logger(__name__)
# Longer than the instrumentation function's 300 s timeout: a restore still running is not
# started twice.
RESTORE_RETRY_SECONDS = 330


def handler(event: Any, context: Any) -> dict[str, Any]:
    now = _sessions.now()
    swept: list[str] = []
    failed: list[str] = []
    try:
        active = _sessions.active_items()
    except (BotoCoreError, ClientError):
        logger.exception("sweep: listing the active sessions failed")
        active = []
    for session in active:
        try:
            reason, expired = _why_dead(session, now)
            if reason and _end(session, reason, expired, now):
                swept.append(session["SessionId"])
        except (BotoCoreError, ClientError):
            logger.exception("sweeping session %s failed", short_id(session.get("SessionId")))
            failed.append(session["SessionId"])
    retried = _retry_restores(now, failed)
    logger.info(
        "sweep: %d session(s) ended, %d restore(s) started again, %d failed",
        len(swept),
        len(retried),
        len(failed),
    )
    return {"swept": swept, "retried": retried, "failed": failed}


def _retry_restores(now: int, failed: list[str]) -> list[str]:
    """Start again the restore of CLOSED sessions that still record functions."""
    retried: list[str] = []
    try:
        unrestored = _sessions.unrestored_items()
    except (BotoCoreError, ClientError):
        logger.exception("sweep: listing the closed sessions left instrumented failed")
        return retried
    for session in unrestored:
        session_id, stack = session["SessionId"], str(session.get("StackName", ""))
        try:
            if not _sessions.claim_restore_retry(session_id, now, RESTORE_RETRY_SECONDS):
                continue
            if not _sessions.start_instrumentation("restore", session_id, stack):
                raise RuntimeError("the instrumentation function could not be started")
        except (BotoCoreError, ClientError, RuntimeError):
            logger.exception("restarting the restore of session %s failed", short_id(session_id))
            failed.append(session_id)
            continue
        logger.warning(
            "session %s of stack %s is closed but still has %s instrumented: restore started again",
            short_id(session_id),
            stack,
            ", ".join(session["InstrumentedFunctions"]),
        )
        retried.append(session_id)
    return retried


def _why_dead(session: dict[str, Any], now: int) -> tuple[str | None, bool]:
    """Why the session's CLI is gone (None if it may be alive), and whether its lease expired."""
    connection_id = session.get("ConnectionId")
    if not connection_id:
        return "it has no connection", False
    lease = session.get(_sessions.LEASE)
    if isinstance(lease, int) and lease < now:
        return f"its lease ran out {now - lease} s ago", True
    if _sessions.connection_gone(connection_id):
        return "its connection is gone", False
    return None, False


def _end(session: dict[str, Any], reason: str, expired: bool, now: int) -> bool:
    session_id, connection_id = session["SessionId"], session.get("ConnectionId", "")
    if not connection_id:
        closed = _sessions.close_active(session_id)
    elif expired:
        closed = _sessions.close_expired(session_id, connection_id, now)
    else:
        closed = _sessions.close_connection(session_id, connection_id)
    if not closed:
        logger.info("session %s was renewed or closed meanwhile", short_id(session_id))
        return False
    logger.info(
        "session %s of stack %s closed: %s", short_id(session_id), session.get("StackName"), reason
    )
    if connection_id:
        try:  # hang up a CLI that is alive but silent (a blackholed socket), so it knows
            _sessions.delete_connection(connection_id)
        except (BotoCoreError, ClientError):
            logger.warning("could not hang up connection %s", connection_id, exc_info=True)
    if not _sessions.start_instrumentation("restore", session_id, session.get("StackName", "")):
        logger.error("could not start restoring stack %s", session.get("StackName"))
    return True

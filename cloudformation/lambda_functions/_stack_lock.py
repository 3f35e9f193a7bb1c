"""The per-stack lock item in PLLDBSessions: one debugger per stack. Standalone: stdlib and boto3.

The lock is an item of PLLDBSessions keyed `SessionId = "StackLock#<stack>"`, holding `Holder`
(the session that owns the stack), `TTL` and `LockedAt`. It has no StackName and no
ConnectionId, so it never appears in either index. A session takes it when it connects, in the
same transaction that makes it ACTIVE; POST /sessions with `force` hands it to the new session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import _sessions
from botocore.exceptions import ClientError

LOCK_PREFIX = "StackLock#"


@dataclass(frozen=True)
class Holder:
    """Who holds a stack's lock: a session that is still PENDING or ACTIVE and unexpired."""

    session: dict[str, Any]

    @property
    def active(self) -> bool:
        return self.session.get("Status") == _sessions.ACTIVE


def lock_key(stack_name: str) -> dict[str, Any]:
    return {"SessionId": {"S": LOCK_PREFIX + stack_name}}


def read_lock(stack_name: str) -> dict[str, Any] | None:
    answer = _sessions.dynamodb().get_item(
        TableName=_sessions.table_name(), Key=lock_key(stack_name), ConsistentRead=True
    )
    return _sessions.plain(answer["Item"]) if "Item" in answer else None


def live_holder(lock: dict[str, Any] | None, at: int, besides: str = "") -> Holder | None:
    """The session holding `lock` at `at`, unless it is `besides`, gone, closed or expired.

    The holder's own item decides: a lock left behind by a session that closed without releasing
    it (a lost $disconnect of a session closed by other means) holds nothing.
    """
    if lock is None or int(lock.get("TTL", 0)) <= at or lock.get("Holder") in (None, besides):
        return None
    session = _sessions.get_session(str(lock["Holder"]))
    if session is None or int(session.get("TTL", 0)) <= at:
        return None
    if session.get("Status") not in (_sessions.PENDING, _sessions.ACTIVE):
        return None
    return Holder(session)


def _lock_put(stack_name: str, session_id: str, at: int, expires: int) -> dict[str, Any]:
    return {
        "TableName": _sessions.table_name(),
        "Item": {
            **lock_key(stack_name),
            "Holder": {"S": session_id},
            "TTL": {"N": str(expires)},
            "LockedAt": {"S": _sessions.iso(at)},
        },
    }


def _unchanged(lock: dict[str, Any] | None) -> dict[str, Any]:
    """The condition that the lock is still as read: the write loses any race to change it."""
    if lock is None:
        return {
            "ConditionExpression": "attribute_not_exists(#id)",
            "ExpressionAttributeNames": {"#id": "SessionId"},
        }
    return {
        "ConditionExpression": "#holder = :seen",
        "ExpressionAttributeNames": {"#holder": "Holder"},
        "ExpressionAttributeValues": {":seen": {"S": str(lock["Holder"])}},
    }


def reserve(stack_name: str, session_id: str, at: int, expires: int) -> None:
    """Hand the stack to a new session before it connects (`force`): the last forcer wins."""
    _sessions.dynamodb().put_item(**_lock_put(stack_name, session_id, at, expires))


class StackHeld(Exception):
    """Another live session holds the stack."""


class SessionUnavailable(Exception):
    """The session is no longer PENDING and unexpired (another handshake, or it expired)."""


def activate_holding_stack(
    session_id: str, stack_name: str, connection_id: str, at: int
) -> dict[str, Any]:
    """PENDING -> ACTIVE on this connection and the stack's lock taken, in one transaction.

    Raises StackHeld when another live session holds the lock, SessionUnavailable when the
    session itself cannot be activated.
    """
    lock = read_lock(stack_name)
    if live_holder(lock, at, besides=session_id) is not None:
        raise StackHeld(stack_name)
    expires = at + _sessions.ACTIVE_TTL_SECONDS
    activation = _sessions.activation_update(session_id, connection_id, at)
    put = {**_lock_put(stack_name, session_id, at, expires), **_unchanged(lock)}
    try:
        _sessions.dynamodb().transact_write_items(
            TransactItems=[{"Update": activation}, {"Put": put}]
        )
    except ClientError as error:
        if _sessions.error_code(error) != "TransactionCanceledException":
            raise
        reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            raise SessionUnavailable(session_id) from None
        raise StackHeld(stack_name) from None
    session = _sessions.get_session(session_id)
    if session is None:  # deleted between the write and this read: treat as lost
        raise SessionUnavailable(session_id)
    return session


def release(stack_name: str, session_id: str) -> bool:
    """Drop the stack's lock if this session still holds it; False if it did not."""
    try:
        _sessions.dynamodb().delete_item(
            TableName=_sessions.table_name(),
            Key=lock_key(stack_name),
            ConditionExpression="#holder = :me",
            ExpressionAttributeNames={"#holder": "Holder"},
            ExpressionAttributeValues={":me": {"S": session_id}},
        )
    except ClientError as error:
        if _sessions.is_condition_failure(error):
            return False
        raise
    return True

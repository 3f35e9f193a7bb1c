"""What plldb changed: per function (the session's recorded originals) and per role (who holds
the relay grant). Instrument, restore, detach and the sweeper all read and write it here.

Both live in PLLDBSessions. A function's original sits in its session's item (map
`Instrumented`); a role's holders sit in an item of their own, keyed `grant:ROLE_ARN`, whose
string set `Holders` names every "SESSION_ID/FUNCTION" relying on PLLDBRelayPolicy there.
Standalone: standard library and boto3 only.
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any

import _sessions
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

INSTRUMENTED = "Instrumented"  # the session item's map: function name -> recorded original
GRANT_PREFIX = "grant:"
HOLDERS = "Holders"
# While the last holder detaches the policy, nobody may become a holder: otherwise a new
# holder's attach (a no-op, the policy is still there) could be followed by the old detach.
DETACHING, DETACH_TOKEN = "DetachingUntil", "DetachToken"
DETACH_SECONDS = 30  # a releaser that dies mid-detach blocks new holders no longer than this

_serializer, _deserializer = TypeSerializer(), TypeDeserializer()

# The instrumentation workers all write into one session item; taking turns costs a few
# milliseconds against seconds of waiting for Lambda, and spares the item concurrent writes.
ITEM_LOCK = threading.Lock()


# ------------------------------------------------------------------ per function


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {name: _plain(inner) for name, inner in value.items()}
    if isinstance(value, (list, set)):
        return [_plain(inner) for inner in value]
    return value


def _get(key: str) -> dict[str, Any] | None:
    answer = _sessions.dynamodb().get_item(
        TableName=_sessions.table_name(), Key={"SessionId": {"S": key}}, ConsistentRead=True
    )
    if "Item" not in answer:
        return None
    return {name: _plain(_deserializer.deserialize(v)) for name, v in answer["Item"].items()}


def load_session(session_id: str) -> dict[str, Any] | None:
    """The session item with its recorded originals, as plain Python values."""
    return _get(session_id)


def recorded(session_id: str) -> dict[str, dict[str, Any]]:
    """Function name -> recorded original, for what the session still has instrumented."""
    return dict(((load_session(session_id) or {}).get(INSTRUMENTED)) or {})


def ensure_map(session_id: str) -> None:
    _sessions.dynamodb().update_item(
        TableName=_sessions.table_name(),
        Key={"SessionId": {"S": session_id}},
        UpdateExpression="SET #map = if_not_exists(#map, :empty)",
        ConditionExpression="attribute_exists(SessionId)",
        ExpressionAttributeNames={"#map": INSTRUMENTED},
        ExpressionAttributeValues={":empty": {"M": {}}},
    )


def record(session_id: str, name: str, original: dict[str, Any]) -> bool:
    """Keep a function's original; False if one is already kept or the session was closed."""
    with ITEM_LOCK:
        try:
            _sessions.dynamodb().update_item(
                TableName=_sessions.table_name(),
                Key={"SessionId": {"S": session_id}},
                UpdateExpression="SET #map.#name = :original",
                ConditionExpression="attribute_not_exists(#map.#name) AND #s <> :closed",
                ExpressionAttributeNames={"#map": INSTRUMENTED, "#name": name, "#s": "Status"},
                ExpressionAttributeValues={
                    ":original": _serializer.serialize(original),
                    ":closed": {"S": _sessions.CLOSED},
                },
            )
        except ClientError as error:
            if _sessions.is_condition_failure(error):
                return False
            raise
        return True


def forget(session_id: str, name: str) -> None:
    with ITEM_LOCK:
        _sessions.dynamodb().update_item(
            TableName=_sessions.table_name(),
            Key={"SessionId": {"S": session_id}},
            UpdateExpression="REMOVE #map.#name",
            ConditionExpression="attribute_exists(SessionId)",
            ExpressionAttributeNames={"#map": INSTRUMENTED, "#name": name},
        )


def session_status(session_id: str) -> str | None:
    with ITEM_LOCK:
        return (load_session(session_id) or {}).get("Status")


# ------------------------------------------------------------------ per role


def holder(session_id: str, function_name: str) -> str:
    return f"{session_id}/{function_name}"


def _grant_key(role_arn: str) -> dict[str, Any]:
    return {"SessionId": {"S": GRANT_PREFIX + role_arn}}


def hold(role_arn: str, who: str) -> bool:
    """Add a holder of the role's grant; False while the last holder is detaching (retry)."""
    now = _sessions.now()
    try:
        _sessions.dynamodb().update_item(
            TableName=_sessions.table_name(),
            Key=_grant_key(role_arn),
            UpdateExpression="ADD #holders :who SET #role = :role",
            ConditionExpression="attribute_not_exists(#until) OR #until < :now",
            ExpressionAttributeNames={"#holders": HOLDERS, "#role": "Role", "#until": DETACHING},
            ExpressionAttributeValues={
                ":who": {"SS": [who]},
                ":role": {"S": role_arn},
                ":now": {"N": str(now)},
            },
        )
    except ClientError as error:
        if _sessions.is_condition_failure(error):
            return False
        raise
    return True


def release(role_arn: str, who: str) -> bool:
    """Remove a holder; True when nobody holds the grant any more (the caller may detach)."""
    answer = _sessions.dynamodb().update_item(
        TableName=_sessions.table_name(),
        Key=_grant_key(role_arn),
        UpdateExpression="DELETE #holders :who SET #role = :role",
        ExpressionAttributeNames={"#holders": HOLDERS, "#role": "Role"},
        ExpressionAttributeValues={":who": {"SS": [who]}, ":role": {"S": role_arn}},
        ReturnValues="ALL_NEW",
    )
    return not answer.get("Attributes", {}).get(HOLDERS, {}).get("SS")


def begin_detach(role_arn: str) -> str | None:
    """A token if this caller may detach now (no holders, nobody else detaching); else None."""
    now, token = _sessions.now(), str(uuid.uuid4())
    try:
        _sessions.dynamodb().update_item(
            TableName=_sessions.table_name(),
            Key=_grant_key(role_arn),
            UpdateExpression="SET #until = :until, #token = :token",
            ConditionExpression=(
                "attribute_not_exists(#holders) AND (attribute_not_exists(#until) OR #until < :now)"
            ),
            ExpressionAttributeNames={
                "#holders": HOLDERS,
                "#until": DETACHING,
                "#token": DETACH_TOKEN,
            },
            ExpressionAttributeValues={
                ":until": {"N": str(now + DETACH_SECONDS)},
                ":token": {"S": token},
                ":now": {"N": str(now)},
            },
        )
    except ClientError as error:
        if _sessions.is_condition_failure(error):
            return None
        raise
    return token


def end_detach(role_arn: str, token: str) -> bool:
    """Let holders in again; False if this detach outlived DETACH_SECONDS and another began."""
    try:
        _sessions.dynamodb().update_item(
            TableName=_sessions.table_name(),
            Key=_grant_key(role_arn),
            UpdateExpression="REMOVE #until, #token",
            ConditionExpression="#token = :token",
            ExpressionAttributeNames={"#until": DETACHING, "#token": DETACH_TOKEN},
            ExpressionAttributeValues={":token": {"S": token}},
        )
    except ClientError as error:
        if _sessions.is_condition_failure(error):
            return False
        raise
    return True


def holders(role_arn: str) -> set[str]:
    return set((_get(GRANT_PREFIX + role_arn) or {}).get(HOLDERS) or ())

"""PLLDBDebugger access for $default: the debugger's answers, kept for the relay that waits.

A request item (written by the relay runtime) names its session; an answer is accepted only from
a connection that holds that session, and only once. A one-message answer lands in the item's
`Answer`; an answer in parts lands one item per part (`<RequestId>#<index>`) and the request
item counts them, turning ANSWERED with the last. Standalone: standard library and boto3.
"""

from __future__ import annotations

import os
from typing import Any

import _sessions
from botocore.exceptions import ClientError

PENDING, ANSWERED = "PENDING", "ANSWERED"
PART_TTL_SECONDS = 900


class Refused(Exception):
    """The answer does not belong to this connection's session, or was already given."""


def table_name() -> str:
    return os.environ["DEBUGGER_TABLE"]


def part_key(request_id: str, index: int) -> str:
    return f"{request_id}#{index}"


def _conditional_update(request_id: str, session_id: str, **arguments: Any) -> dict[str, Any]:
    names = {"#s": "Status", "#session": "SessionId", **arguments.pop("names", {})}
    values = {
        ":pending": {"S": PENDING},
        ":session": {"S": session_id},
        **arguments.pop("values", {}),
    }
    try:
        return _sessions.dynamodb().update_item(
            TableName=table_name(),
            Key={"RequestId": {"S": request_id}},
            ConditionExpression="#session = :session AND #s = :pending",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            **arguments,
        )
    except ClientError as error:
        if _sessions.is_condition_failure(error):
            raise Refused(
                f"request {request_id} is not awaiting an answer from this debugger session"
            ) from None
        raise


def answer(request_id: str, session_id: str, encoded: str) -> None:
    """Store a whole answer (a response or an invocation error message) and mark it ANSWERED."""
    _conditional_update(
        request_id,
        session_id,
        UpdateExpression="SET #s = :answered, Answer = :answer",
        values={":answered": {"S": ANSWERED}, ":answer": {"S": encoded}},
    )


def answer_part(request_id: str, session_id: str, index: int, count: int, encoded: str) -> bool:
    """Store one part; True when it was the last one and the request is now ANSWERED."""
    item = (
        _sessions.dynamodb()
        .get_item(TableName=table_name(), Key={"RequestId": {"S": request_id}}, ConsistentRead=True)
        .get("Item")
        or {}
    )
    if (
        item.get("SessionId", {}).get("S") != session_id
        or item.get("Status", {}).get("S") != PENDING
    ):
        raise Refused(f"request {request_id} is not awaiting an answer from this debugger session")
    _sessions.dynamodb().put_item(
        TableName=table_name(),
        Item={
            "RequestId": {"S": part_key(request_id, index)},
            "Part": {"S": encoded},
            "TTL": {"N": str(_sessions.now() + PART_TTL_SECONDS)},
        },
    )
    counted = _conditional_update(
        request_id,
        session_id,
        UpdateExpression="ADD PartsReceived :one SET PartCount = :count",
        values={":one": {"N": "1"}, ":count": {"N": str(count)}},
        ReturnValues="UPDATED_NEW",
    )
    if int(counted["Attributes"]["PartsReceived"]["N"]) < count:
        return False
    _conditional_update(
        request_id,
        session_id,
        UpdateExpression="SET #s = :answered",
        values={":answered": {"S": ANSWERED}},
    )
    return True

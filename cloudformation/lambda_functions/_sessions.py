"""PLLDBSessions table access shared by plldb's Lambda functions. Standalone: stdlib and boto3."""

from __future__ import annotations

import functools
import json
import os
import time
import uuid
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

PENDING, ACTIVE, CLOSED = "PENDING", "ACTIVE", "CLOSED"
STACK_INDEX = "GSI-StackName"
CONNECTION_INDEX = "GSI-ConnectionId"
DEFAULT_TTL_SECONDS = 3600
# An active session lives as long as API Gateway keeps a connection open (2 hours), so a long
# debugging session still blocks a second attach and its item is not expired under it.
ACTIVE_TTL_SECONDS = 7200
# The CLI's heartbeats push LeaseUntil forward; past it the relay treats the session as gone
# and the sweeper restores and closes it ($disconnect is best effort).
LEASE = "LeaseUntil"
DEFAULT_LEASE_SECONDS = 60
# When a restore of a CLOSED session was last started; the sweeper starts it again for a session
# that still records functions long after (a restore that failed, or never ran).
RESTORE_STARTED = "RestoreStartedAt"

# The functions time out after 10 s; botocore's 60 s default read timeout would outlive them.
CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
)


@functools.cache
def dynamodb() -> Any:
    return boto3.client("dynamodb", config=CLIENT_CONFIG)


@functools.cache
def management_api() -> Any:
    """The WebSocket API's @connections endpoint (post_to_connection, delete_connection)."""
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=os.environ["PLLDB_CALLBACK_URL"],
        config=CLIENT_CONFIG,
    )


@functools.cache
def lambda_client() -> Any:
    return boto3.client("lambda", config=CLIENT_CONFIG)


def start_instrumentation(action: str, session_id: str, stack_name: str) -> bool:
    """Ask the instrumentation function, asynchronously, to instrument or restore a stack.

    Asynchronous so the WebSocket handshake stays fast; False (and a log line by the caller)
    when it could not be started, since a debugger without instrumentation still connects.
    """
    function = os.environ.get("PLLDB_INSTRUMENTATION_FUNCTION")
    if not function:
        return False
    payload = {"action": action, "sessionId": session_id, "stackName": stack_name}
    try:
        lambda_client().invoke(
            FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode()
        )
    except ClientError:
        return False
    return True


def table_name() -> str:
    return os.environ["SESSIONS_TABLE"]


def ttl_seconds() -> int:
    return int(os.environ.get("SESSION_TTL_SECONDS", DEFAULT_TTL_SECONDS))


def lease_seconds() -> int:
    return int(os.environ.get("SESSION_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


def now() -> int:
    return int(time.time())


def iso(epoch_seconds: int) -> str:
    """ISO 8601 UTC with second precision, e.g. 2026-11-22T03:50:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_condition_failure(error: ClientError) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as Python values; session items hold only strings and numbers."""
    values: dict[str, Any] = {}
    for name, value in item.items():
        if "S" in value:
            values[name] = value["S"]
        elif "N" in value:
            values[name] = int(value["N"])
    return values


def get_session(session_id: str) -> dict[str, Any] | None:
    answer = dynamodb().get_item(
        TableName=table_name(), Key={"SessionId": {"S": session_id}}, ConsistentRead=True
    )
    return plain(answer["Item"]) if "Item" in answer else None


def _query(**arguments: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    paginator = dynamodb().get_paginator("query")
    for page in paginator.paginate(TableName=table_name(), **arguments):
        items.extend(plain(item) for item in page.get("Items", []))
    return items


def active_sessions(stack_name: str, at: int) -> list[dict[str, Any]]:
    """ACTIVE sessions of a stack that have not expired at `at` (epoch seconds)."""
    return _query(
        IndexName=STACK_INDEX,
        KeyConditionExpression="#stack = :stack AND #ttl > :now",
        FilterExpression="#s = :active",
        ExpressionAttributeNames={"#stack": "StackName", "#ttl": "TTL", "#s": "Status"},
        ExpressionAttributeValues={
            ":stack": {"S": stack_name},
            ":now": {"N": str(at)},
            ":active": {"S": ACTIVE},
        },
    )


def sessions_of_stack(stack_name: str) -> list[dict[str, Any]]:
    """Every session item of a stack still in the table, whatever its state; `Instrumented`
    is True when it still records functions to restore."""
    items: list[dict[str, Any]] = []
    paginator = dynamodb().get_paginator("query")
    for page in paginator.paginate(
        TableName=table_name(),
        IndexName=STACK_INDEX,
        KeyConditionExpression="#stack = :stack",
        ExpressionAttributeNames={"#stack": "StackName"},
        ExpressionAttributeValues={":stack": {"S": stack_name}},
    ):
        for raw in page.get("Items", []):
            items.append(_with_instrumented(raw))
    return items


def _with_instrumented(raw: dict[str, Any]) -> dict[str, Any]:
    """plain, plus `Instrumented`: True when it still records functions to restore, and
    `Functions`/`Roles`: the names and roles it records."""
    item = plain(raw)
    recorded = raw.get("Instrumented", {}).get("M") or {}
    item["Instrumented"] = bool(recorded)
    item["InstrumentedFunctions"] = sorted(recorded)
    item["Roles"] = sorted(
        {str(value.get("M", {}).get("Role", {}).get("S", "")) for value in recorded.values()} - {""}
    )
    return item


def _scan(**arguments: Any) -> list[dict[str, Any]]:
    """Every raw item of the sessions table that the scan's filter lets through."""
    paginator = dynamodb().get_paginator("scan")
    pages = paginator.paginate(TableName=table_name(), **arguments)
    return [raw for page in pages for raw in page.get("Items", [])]


def all_sessions() -> list[dict[str, Any]]:
    """Every session item of every stack (not the ledger's grant items)."""
    found = _scan(
        FilterExpression="attribute_exists(#s)", ExpressionAttributeNames={"#s": "Status"}
    )
    return [_with_instrumented(raw) for raw in found]


def grant_holders(role_arn: str) -> list[str]:
    """Who holds the relay grant on a role, from the ledger's item (see _ledger)."""
    answer = dynamodb().get_item(
        TableName=table_name(), Key={"SessionId": {"S": "grant:" + role_arn}}, ConsistentRead=True
    )
    return sorted(answer.get("Item", {}).get("Holders", {}).get("SS", []))


def close_pending(session_id: str) -> bool:
    """PENDING -> CLOSED, so its id can no longer connect; False if it was not PENDING."""
    return _close(session_id, "#s = :pending", {":pending": {"S": PENDING}})


def sessions_of_connection(connection_id: str) -> list[dict[str, Any]]:
    return _query(
        IndexName=CONNECTION_INDEX,
        KeyConditionExpression="#conn = :conn",
        ExpressionAttributeNames={"#conn": "ConnectionId"},
        ExpressionAttributeValues={":conn": {"S": connection_id}},
    )


def create_session(
    stack_name: str,
    at: int,
    lifetime: int,
    functions: list[str] | None = None,
    function_role: bool = False,
    created_by: str | None = None,
) -> dict[str, Any]:
    """A new PENDING session expiring `lifetime` seconds after `at`; returns the stored item.

    `functions` (name patterns, `attach --function`) narrows what gets instrumented;
    `function_role` (`attach --function-role`) lets the relay hand the debugger the function
    role's credentials with each invocation.
    """
    session = {
        "SessionId": str(uuid.uuid4()),
        "StackName": stack_name,
        "TTL": at + lifetime,
        "Status": PENDING,
        "CreatedAt": iso(at),
    }
    if functions:
        session["Functions"] = json.dumps(functions)
    if function_role:
        session["FunctionRole"] = 1
    if created_by:
        session["CreatedBy"] = created_by  # the caller's IAM ARN, for `plldb status`
    dynamodb().put_item(
        TableName=table_name(),
        Item={
            name: {"N": str(value)} if isinstance(value, int) else {"S": value}
            for name, value in session.items()
        },
        ConditionExpression="attribute_not_exists(#id)",
        ExpressionAttributeNames={"#id": "SessionId"},
    )
    return session


def activation_update(session_id: str, connection_id: str, at: int) -> dict[str, Any]:
    """The conditional update that makes a PENDING, unexpired session ACTIVE on a connection."""
    return {
        "TableName": table_name(),
        "Key": {"SessionId": {"S": session_id}},
        "UpdateExpression": (
            "SET #s = :active, #conn = :conn, #activated = :activated, #ttl = :expires, "
            "#lease = :lease"
        ),
        "ConditionExpression": "#s = :pending AND #ttl > :now",
        "ExpressionAttributeNames": {
            "#s": "Status",
            "#conn": "ConnectionId",
            "#activated": "ActivatedAt",
            "#ttl": "TTL",
            "#lease": LEASE,
        },
        "ExpressionAttributeValues": {
            ":active": {"S": ACTIVE},
            ":pending": {"S": PENDING},
            ":conn": {"S": connection_id},
            ":activated": {"S": iso(at)},
            ":now": {"N": str(at)},
            ":expires": {"N": str(at + ACTIVE_TTL_SECONDS)},
            ":lease": {"N": str(at + lease_seconds())},
        },
    }


def activate(session_id: str, connection_id: str, at: int) -> dict[str, Any] | None:
    """PENDING and unexpired -> ACTIVE on this connection, atomically; None if that no longer holds.

    Two handshakes racing with one session id both pass a read, but only one passes the condition.
    """
    try:
        answer = dynamodb().update_item(
            **activation_update(session_id, connection_id, at), ReturnValues="ALL_NEW"
        )
    except ClientError as error:
        if is_condition_failure(error):
            return None
        raise
    return plain(answer["Attributes"])


def _close(
    session_id: str,
    condition: str,
    values: dict[str, Any],
    names: dict[str, str] | None = None,
) -> bool:
    # Status and TTL are DynamoDB reserved words, hence the attribute names everywhere.
    try:
        dynamodb().update_item(
            TableName=table_name(),
            Key={"SessionId": {"S": session_id}},
            UpdateExpression="SET #s = :closed, #restore = :closed_at REMOVE #conn",
            ConditionExpression=condition,
            ExpressionAttributeNames={
                "#s": "Status",
                "#conn": "ConnectionId",
                "#restore": RESTORE_STARTED,
                **(names or {}),
            },
            ExpressionAttributeValues={
                ":closed": {"S": CLOSED},
                ":closed_at": {"N": str(now())},
                **values,
            },
        )
    except ClientError as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def extend_lease(session_id: str, connection_id: str, at: int) -> bool:
    """A heartbeat: the lease runs `lease_seconds()` from `at`; False if this connection no
    longer holds an ACTIVE session (the sweeper closed it, or a takeover did)."""
    try:
        dynamodb().update_item(
            TableName=table_name(),
            Key={"SessionId": {"S": session_id}},
            UpdateExpression="SET #lease = :lease",
            ConditionExpression="#s = :active AND #conn = :conn",
            ExpressionAttributeNames={"#lease": LEASE, "#s": "Status", "#conn": "ConnectionId"},
            ExpressionAttributeValues={
                ":lease": {"N": str(at + lease_seconds())},
                ":active": {"S": ACTIVE},
                ":conn": {"S": connection_id},
            },
        )
    except ClientError as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def close_expired(session_id: str, connection_id: str, at: int) -> bool:
    """CLOSED if this connection still holds it and its lease ran out before `at`; a heartbeat
    that extended the lease meanwhile wins, and so does a $disconnect that closed it first."""
    return _close(
        session_id,
        "#conn = :conn AND #lease < :now",
        {":conn": {"S": connection_id}, ":now": {"N": str(at)}},
        {"#lease": LEASE},
    )


def close_active(session_id: str) -> bool:
    """ACTIVE -> CLOSED without its connection; False if it was not ACTIVE any more."""
    return _close(session_id, "#s = :active", {":active": {"S": ACTIVE}})


def close_connection(session_id: str, connection_id: str) -> bool:
    """CLOSED without its connection, if this connection still holds it; False otherwise."""
    return _close(session_id, "#conn = :conn", {":conn": {"S": connection_id}})


def delete_connection(connection_id: str) -> bool:
    """Hang up a WebSocket connection; False if it was already gone."""
    try:
        management_api().delete_connection(ConnectionId=connection_id)
    except ClientError as error:
        if error_code(error) == "GoneException":
            return False
        raise
    return True


def connection_gone(connection_id: str) -> bool:
    """GetConnection answers GoneException (410): API Gateway no longer holds the connection."""
    try:
        management_api().get_connection(ConnectionId=connection_id)
    except ClientError as error:
        if error_code(error) == "GoneException":
            return True
        raise
    return False


def active_items() -> list[dict[str, Any]]:
    """Every ACTIVE session, of any stack."""
    found = _scan(
        FilterExpression="#s = :active",
        ExpressionAttributeNames={"#s": "Status"},
        ExpressionAttributeValues={":active": {"S": ACTIVE}},
        ConsistentRead=True,
    )
    return [plain(raw) for raw in found]


def unrestored_items() -> list[dict[str, Any]]:
    """CLOSED sessions that still record instrumented functions (their restore failed or is
    still running), with `Instrumented` as in _with_instrumented."""
    found = _scan(
        FilterExpression="#s = :closed AND attribute_exists(Instrumented)",
        ExpressionAttributeNames={"#s": "Status"},
        ExpressionAttributeValues={":closed": {"S": CLOSED}},
        ConsistentRead=True,
    )
    return [item for item in map(_with_instrumented, found) if item["Instrumented"]]


def claim_restore_retry(session_id: str, at: int, after_seconds: int) -> bool:
    """Take the turn to start a CLOSED session's restore again, if none was started in the last
    `after_seconds`; False if another sweep took it, or the last start is too recent."""
    try:
        dynamodb().update_item(
            TableName=table_name(),
            Key={"SessionId": {"S": session_id}},
            UpdateExpression="SET #restore = :at",
            ConditionExpression=(
                "#s = :closed AND (attribute_not_exists(#restore) OR #restore < :cutoff)"
            ),
            ExpressionAttributeNames={"#s": "Status", "#restore": RESTORE_STARTED},
            ExpressionAttributeValues={
                ":closed": {"S": CLOSED},
                ":at": {"N": str(at)},
                ":cutoff": {"N": str(at - after_seconds)},
            },
        )
    except ClientError as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def post_to_connection(connection_id: str, data: str | bytes) -> bool:
    """Send one message to a connection; False if it was already gone."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        management_api().post_to_connection(ConnectionId=connection_id, Data=payload)
    except ClientError as error:
        if error_code(error) == "GoneException":
            return False
        raise
    return True

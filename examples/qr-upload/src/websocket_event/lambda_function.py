"""WebSocket and S3 events of the QR upload example: tell the waiting browser its upload arrived.

Standalone Lambda code: the standard library and boto3 only. It handles:

- S3 ObjectCreated records for `session-uploads/<sessionId>/...`: the session becomes UPLOADED
  with its `uploadKey`, and a subscribed connection gets
  `{"type": "uploaded", "sessionId", "uploadKey"}`;
- API Gateway WebSocket events (CONNECT, DISCONNECT, MESSAGE): the message
  `{"action": "subscribe", "sessionId": ...}` stores the connection on the session.

Environment: SESSIONS_TABLE_NAME, and WS_API_ENDPOINT as
`{api}.execute-api.{region}.amazonaws.com/{stage}`.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import unquote_plus

UPLOAD_PREFIX = "session-uploads/"
UPLOADED = "UPLOADED"

# Built on first use, never at import (see the HTTP API function).
_clients: dict[str, Any] = {}


def lambda_handler(event: dict, context: Any) -> dict:
    if "Records" in event:
        for record in event["Records"]:
            if record.get("eventSource") == "aws:s3":
                handle_upload(record)
            else:
                print(f"websocket-event: ignored a record from {record.get('eventSource')}")
        return {"statusCode": 200}
    request = event.get("requestContext") or {}
    event_type = request.get("eventType")
    connection_id = request.get("connectionId", "")
    if event_type == "MESSAGE":
        return handle_message(connection_id, event.get("body"))
    if event_type in {"CONNECT", "DISCONNECT"}:
        print(f"websocket-event: {event_type.lower()} {connection_id}")
        return {"statusCode": 200}
    print(f"websocket-event: ignored an event of unknown shape ({sorted(event)})")
    return {"statusCode": 400}


def handle_upload(record: dict) -> None:
    """Mark the session an upload belongs to UPLOADED and notify its connection, if any."""
    from botocore.exceptions import ClientError

    key = unquote_plus(record["s3"]["object"]["key"])  # S3 event keys are URL-encoded
    parts = key.split("/")
    if not key.startswith(UPLOAD_PREFIX) or len(parts) < 3 or not parts[1]:
        print(f"websocket-event: ignored upload {key} (not a session upload)")
        return
    session_id = parts[1]
    try:
        item = _table().update_item(
            Key={"sessionId": session_id},
            UpdateExpression="SET #status = :uploaded, uploadKey = :key",
            # An upload for an unknown session must not create a session.
            ConditionExpression="attribute_exists(sessionId)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":uploaded": UPLOADED, ":key": key},
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        print(f"websocket-event: upload {key} for unknown session {session_id}")
        return
    print(f"websocket-event: session {session_id} uploaded {key}")
    if item.get("wsConnectionId"):
        notify(item["wsConnectionId"], session_id, key)


def handle_message(connection_id: str, body: str | None) -> dict:
    """Subscribe a connection to a session; an upload already done is announced at once."""
    from botocore.exceptions import ClientError

    try:
        message = json.loads(body or "")
    except json.JSONDecodeError:
        print(f"websocket-event: {connection_id} sent a body that is not JSON")
        return {"statusCode": 400}
    if not isinstance(message, dict):
        message = {}
    session_id = message.get("sessionId")
    if message.get("action") != "subscribe" or not isinstance(session_id, str):
        print(f"websocket-event: {connection_id} sent an unknown message")
        return {"statusCode": 400}
    try:
        item = _table().update_item(
            Key={"sessionId": session_id},
            UpdateExpression="SET wsConnectionId = :connection",
            ConditionExpression="attribute_exists(sessionId)",
            ExpressionAttributeValues={":connection": connection_id},
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        print(f"websocket-event: {connection_id} subscribed to unknown session {session_id}")
        return {"statusCode": 404}
    print(f"websocket-event: {connection_id} subscribed to session {session_id}")
    if item.get("status") == UPLOADED and item.get("uploadKey"):
        notify(connection_id, session_id, item["uploadKey"])
    return {"statusCode": 200}


def notify(connection_id: str, session_id: str, upload_key: str) -> None:
    """Post the upload to the connection; a connection already closed is not an error."""
    from botocore.exceptions import ClientError

    data = json.dumps({"type": "uploaded", "sessionId": session_id, "uploadKey": upload_key})
    try:
        _management_api().post_to_connection(ConnectionId=connection_id, Data=data.encode())
    except ClientError as error:
        if error.response["Error"]["Code"] != "GoneException":
            raise
        print(f"websocket-event: connection {connection_id} is gone")
        return
    print(f"websocket-event: notified {connection_id} of session {session_id}")


def _management_api() -> Any:
    if "management" not in _clients:
        import boto3

        endpoint = os.environ["WS_API_ENDPOINT"]
        # The template gives host and stage; a full URL (an offline stand-in) is used as it is.
        if "://" not in endpoint:
            endpoint = f"https://{endpoint}"
        _clients["management"] = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    return _clients["management"]


def _table() -> Any:
    if "table" not in _clients:
        import boto3

        _clients["table"] = boto3.resource("dynamodb").Table(os.environ["SESSIONS_TABLE_NAME"])
    return _clients["table"]

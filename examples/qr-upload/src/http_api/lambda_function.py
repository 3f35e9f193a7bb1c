"""HTTP API of the QR upload example: create an upload session, read its status.

Standalone Lambda code: the standard library and boto3 only. It answers API Gateway proxy
events of both kinds, HTTP API (payload 2.0) and REST (payload 1.0):

    POST /sessions              -> 201 {"sessionId", "uploadUrl", "uploadKey", "expiresAt"}
    GET  /sessions/{sessionId}  -> 200 {"sessionId", "status", "expiresAt"[, "uploadKey"]}

Environment: SESSIONS_TABLE_NAME, UPLOAD_BUCKET_NAME.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from decimal import Decimal
from typing import Any

SESSION_SECONDS = 1800
UPLOAD_URL_SECONDS = 900
UPLOAD_PREFIX = "session-uploads"
AWAITING_SCAN = "AWAITING_SCAN"

# An HTTP API with a named stage puts the stage in front of the path (/dev/sessions).
_SESSIONS = re.compile(r"^(?:/[^/]+)?/sessions/?$")
_ONE_SESSION = re.compile(r"^(?:/[^/]+)?/sessions/(?P<session_id>[^/]+)/?$")
_HEADERS = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}

# Built on first use, never at import: a cold start that fails no request costs nothing, and
# tests can start moto before the first client exists.
_clients: dict[str, Any] = {}


class BadRequest(Exception):
    """The caller sent something we cannot read."""


def lambda_handler(event: dict, context: Any) -> dict:
    method, path = _route(event)
    try:
        if _SESSIONS.match(path):
            if method != "POST":
                return _answer(405, {"message": "Method not allowed"}, Allow="POST")
            return create_session(_json_body(event))
        match = _ONE_SESSION.match(path)
        if match:
            if method != "GET":
                return _answer(405, {"message": "Method not allowed"}, Allow="GET")
            session_id = (event.get("pathParameters") or {}).get("sessionId")
            return get_session(session_id or match.group("session_id"))
    except BadRequest as error:
        print(f"http-api: bad request {method} {path}: {error}")
        return _answer(400, {"message": str(error)})
    print(f"http-api: no route for {method} {path}")
    return _answer(404, {"message": "Not found"})


def create_session(body: dict) -> dict:
    """Store a session awaiting its upload and hand out a presigned PUT URL for it."""
    now = int(time.time())
    session_id = str(uuid.uuid4())
    upload_key = f"{UPLOAD_PREFIX}/{session_id}/{uuid.uuid4()}.jpg"
    expires_at = now + SESSION_SECONDS
    _table().put_item(
        Item={
            "sessionId": session_id,
            "status": AWAITING_SCAN,
            "createdAt": now,
            "expiresAt": expires_at,
        }
    )
    upload_url = _client("s3").generate_presigned_url(
        "put_object",
        Params={
            "Bucket": os.environ["UPLOAD_BUCKET_NAME"],
            "Key": upload_key,
            "ContentType": "image/jpeg",
        },
        ExpiresIn=UPLOAD_URL_SECONDS,
    )
    print(f"http-api: created session {session_id}")
    return _answer(
        201,
        {
            "sessionId": session_id,
            "uploadUrl": upload_url,
            "uploadKey": upload_key,
            "expiresAt": expires_at,
        },
    )


def get_session(session_id: str) -> dict:
    """The session's status; an expired session is gone even before TTL deletes it."""
    item = _table().get_item(Key={"sessionId": session_id}, ConsistentRead=True).get("Item")
    if not item or int(item.get("expiresAt", 0)) <= int(time.time()):
        print(f"http-api: session {session_id} not found")
        return _answer(404, {"message": "Session not found"})
    print(f"http-api: session {session_id} is {item.get('status')}")
    answer = {
        "sessionId": session_id,
        "status": item.get("status"),
        "expiresAt": item.get("expiresAt"),
    }
    if item.get("uploadKey"):
        answer["uploadKey"] = item["uploadKey"]
    return _answer(200, answer)


def _route(event: dict) -> tuple[str, str]:
    http = (event.get("requestContext") or {}).get("http")
    if http:  # payload 2.0
        return http.get("method", "").upper(), event.get("rawPath") or http.get("path", "")
    return (event.get("httpMethod") or "").upper(), event.get("path") or ""


def _json_body(event: dict) -> dict:
    body = event.get("body")
    if not body:
        return {}
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as error:
            raise BadRequest("body is not valid base64 UTF-8") from error
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError as error:
        raise BadRequest(f"body is not valid JSON: {error.msg}") from error
    if not isinstance(parsed, dict):
        raise BadRequest("body must be a JSON object")
    return parsed


def _answer(status: int, body: dict, **headers: str) -> dict:
    return {
        "statusCode": status,
        "headers": {**_HEADERS, **headers},
        "body": json.dumps(body, default=_json_default),
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):  # DynamoDB numbers
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _client(service: str) -> Any:
    if service not in _clients:
        import boto3
        from botocore.config import Config

        # SigV4 presigned URLs work in every region, including those that reject SigV2.
        config = Config(signature_version="s3v4") if service == "s3" else None
        _clients[service] = boto3.client(service, config=config)
    return _clients[service]


def _table() -> Any:
    if "table" not in _clients:
        import boto3

        _clients["table"] = boto3.resource("dynamodb").Table(os.environ["SESSIONS_TABLE_NAME"])
    return _clients["table"]

"""Management REST API (POST /sessions). Standalone: standard library and boto3 only."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from typing import Any

import _caller_rights
import _protocol
import _sessions
import _stack_lock
import boto3
from _common import get_logger, json_response, redacted, short_id
from botocore.exceptions import BotoCoreError, ClientError

logger = get_logger(__name__)

SESSIONS_RESOURCE = "/sessions"
DETACH_RESOURCE = "/sessions/detach"
# What CloudFormation accepts as a stack name, or a stack's ARN (which names it too).
_STACK_NAME = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}")
_STACK_ARN = re.compile(
    r"arn:aws[-a-z]*:cloudformation:[a-z0-9-]+:\d{12}:stack/[A-Za-z][-A-Za-z0-9]{0,127}/[-\w]+"
)


class BadRequest(Exception):
    """The request cannot be served as sent; the message goes back to the caller."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@functools.cache
def cloudformation() -> Any:
    return boto3.client("cloudformation", config=_sessions.CLIENT_CONFIG)


@functools.cache
def iam() -> Any:
    return boto3.client("iam", config=_sessions.CLIENT_CONFIG)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.debug("event: %s", json.dumps(redacted(event), default=str))
    resource = event.get("resource") or event.get("path") or ""
    method = str(event.get("httpMethod") or "").upper()
    resource = resource.rstrip("/")
    if resource not in (SESSIONS_RESOURCE, DETACH_RESOURCE):
        logger.info("%s %s: not found", method, resource)
        return json_response(404, {"message": "Not found"})
    allowed = "GET, POST" if resource == SESSIONS_RESOURCE else "POST"
    if method not in allowed.split(", "):
        logger.info("%s %s: method not allowed", method, resource)
        return json_response(405, {"message": "Method not allowed"}, {"Allow": allowed})
    try:
        if method == "GET":
            return status(event)
        if resource == DETACH_RESOURCE:
            return detach(event)
        return create_session(event)
    except BadRequest as refusal:
        logger.info("POST %s refused (%d): %s", resource, refusal.status, refusal.message)
        body = {"message": refusal.message}
        if refusal.code:
            body["code"] = refusal.code
        return json_response(refusal.status, body)
    except (BotoCoreError, ClientError):
        logger.exception("POST %s failed", resource)
        return json_response(500, {"message": "Internal error"})


def create_session(event: dict[str, Any]) -> dict[str, Any]:
    stack, force, functions, function_role = _read_request(event)
    stack_name, stack_arn = _existing_stack(stack)
    # Before anything about the stack's debugger is said or done (force hangs it up).
    _authorize_caller(event, stack_name, stack_arn, functions, function_role)
    now = _sessions.now()
    active = _sessions.active_sessions(stack_name, now)
    # The index is eventually consistent; the lock item is read consistently and names the
    # session that holds the stack even when the index does not list it yet.
    holder = _stack_lock.live_holder(_stack_lock.read_lock(stack_name), now)
    if holder is not None and holder.active:
        listed = {item["SessionId"] for item in active}
        active += [holder.session] if holder.session["SessionId"] not in listed else []
    if not force:
        refusal = _conflict(stack_name, active, holder)
        if refusal is not None:
            return refusal
    for item in active:
        _take_over(item)
    caller = ((event.get("requestContext") or {}).get("identity") or {}).get("userArn")
    session = _sessions.create_session(
        stack_name, now, _sessions.ttl_seconds(), functions, function_role, caller
    )
    if force:
        # A PENDING session created earlier must not connect before this one and keep the stack.
        _stack_lock.reserve(stack_name, session["SessionId"], now, int(session["TTL"]))
    logger.info("session %s created for stack %s", short_id(session["SessionId"]), stack_name)
    return json_response(
        201,
        {
            "sessionId": session["SessionId"],
            "expiresAt": session["TTL"],
            "leaseSeconds": _sessions.lease_seconds(),
        },
    )


def detach(event: dict[str, Any]) -> dict[str, Any]:
    """POST /sessions/detach: end the stack's sessions (or one) and restore what they changed,
    with no live connection needed. Idempotent: a session already restored restores nothing."""
    body = _body_object(event)
    stack = body.get("stackName")
    if not isinstance(stack, str) or not (
        _STACK_NAME.fullmatch(stack) or _STACK_ARN.fullmatch(stack)
    ):
        raise BadRequest(400, "stackName must be a stack name or ARN")
    only = body.get("sessionId")
    if only is not None and (
        not isinstance(only, str) or not re.fullmatch(r"[-0-9a-f]{8,36}", only)
    ):
        raise BadRequest(400, "sessionId must be a session id or its first 8 characters")
    stack_name, _ = _existing_stack(stack)
    sessions = [
        item
        for item in _sessions.sessions_of_stack(stack_name)
        if only is None or item["SessionId"].startswith(only)
    ]
    if only is not None and not sessions:
        raise BadRequest(404, f"Stack {stack_name} has no session {only}")
    if len(sessions) > 1 and only is not None:
        raise BadRequest(400, f"{only} names {len(sessions)} sessions: give more of the id")
    closed, restoring = [], []
    for item in sessions:
        if item.get("Status") == _sessions.ACTIVE:
            _take_over(item, "plldb detach ended this session", restore=False)
            closed.append(item["SessionId"])
        elif item.get("Status") == _sessions.PENDING and _sessions.close_pending(item["SessionId"]):
            closed.append(item["SessionId"])
        needs_restore = item.get("Instrumented") or item.get("Status") == _sessions.ACTIVE
        if needs_restore and _sessions.start_instrumentation(
            "restore", item["SessionId"], stack_name
        ):
            restoring.append(item["SessionId"])
    logger.info(
        "detach of stack %s: %d session(s) closed, %d restoring",
        stack_name,
        len(closed),
        len(restoring),
    )
    return json_response(
        200,
        {
            "stackName": stack_name,
            "closed": [short_id(i) for i in closed],
            "restoring": [short_id(i) for i in restoring],
        },
    )


def status(event: dict[str, Any]) -> dict[str, Any]:
    """GET /sessions[?stackName=X]: the sessions still open or still recording functions, who
    opened them, their lease, what they instrumented, and who holds each role's relay grant."""
    stack = (event.get("queryStringParameters") or {}).get("stackName")
    if stack is not None and not _STACK_NAME.fullmatch(str(stack)):
        raise BadRequest(400, "stackName must be a stack name")
    items = _sessions.sessions_of_stack(stack) if stack else _sessions.all_sessions()
    now = _sessions.now()
    shown = [i for i in items if i.get("Status") != _sessions.CLOSED or i.get("Instrumented")]
    roles = sorted({role for item in shown for role in item["Roles"]})
    body = {
        "sessions": [
            {
                # A PENDING id still opens a connection: never shown whole, to anyone.
                "sessionId": short_id(item["SessionId"]),
                "stackName": item.get("StackName"),
                "status": item.get("Status"),
                "createdBy": item.get("CreatedBy"),
                "since": item.get("ActivatedAt") or item.get("CreatedAt"),
                "leaseSecondsLeft": (
                    max(0, item[_sessions.LEASE] - now) if _sessions.LEASE in item else None
                ),
                "functions": item["InstrumentedFunctions"],
            }
            for item in sorted(
                shown, key=lambda i: (i.get("StackName", ""), i.get("CreatedAt", ""))
            )
        ],
        "roles": {
            role: [short_id(holder) + holder[36:] for holder in _sessions.grant_holders(role)]
            for role in roles
        },
    }
    return json_response(200, body)


def _body_object(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body")
    try:
        if event.get("isBase64Encoded") and raw:
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        body = json.loads(raw) if raw else None
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise BadRequest(400, "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "Request body must be a JSON object with a stackName")
    return body


def _conflict(
    stack_name: str, active: list[dict[str, Any]], holder: _stack_lock.Holder | None
) -> dict[str, Any] | None:
    """The 409 for a stack another debugger holds (or is taking over), or None if it is free."""
    if active:
        since = min(item.get("ActivatedAt") or item.get("CreatedAt", "") for item in active)
        message = f"Stack {stack_name} already has a debugger attached since {since}"
        logger.info("%s (session %s)", message, short_id(active[0].get("SessionId")))
        return json_response(409, {"message": message, "activeSince": since})
    if holder is not None:
        message = f"Stack {stack_name} is being taken over by another plldb attach (--force)"
        logger.info("%s (session %s)", message, short_id(holder.session.get("SessionId")))
        return json_response(409, {"message": message})
    return None


_MAX_FUNCTION_GLOBS = 20


def _read_request(event: dict[str, Any]) -> tuple[str, bool, list[str], bool]:
    """Stack name, force flag, function globs and the function-role opt-in of the request;
    BadRequest (400) if malformed."""
    raw = event.get("body")
    if raw is None or raw == "":
        raise BadRequest(400, "Request body must be a JSON object with a stackName")
    try:
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        body = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(400, "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "Request body must be a JSON object with a stackName")
    stack = body.get("stackName")
    if not isinstance(stack, str) or not stack:
        raise BadRequest(400, "stackName must be a non-empty string")
    if not (_STACK_NAME.fullmatch(stack) or _STACK_ARN.fullmatch(stack)):
        raise BadRequest(
            400,
            "stackName must start with a letter and hold only letters, digits and hyphens "
            "(at most 128 characters), or be a stack ARN",
        )
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise BadRequest(400, "force must be true or false")
    functions = body.get("functions", [])
    if (
        not isinstance(functions, list)
        or len(functions) > _MAX_FUNCTION_GLOBS
        or not all(isinstance(glob, str) and 0 < len(glob) <= 256 for glob in functions)
    ):
        raise BadRequest(
            400,
            f"functions must be a list of at most {_MAX_FUNCTION_GLOBS} non-empty name patterns",
        )
    function_role = body.get("functionRole", False)
    if not isinstance(function_role, bool):
        raise BadRequest(400, "functionRole must be true or false")
    return stack, force, functions, function_role


def _existing_stack(stack: str) -> tuple[str, str]:
    """The stack's own name (an ARN is resolved to it) and ARN; BadRequest (404) if none."""
    missing = BadRequest(404, f"Stack {stack} does not exist")
    try:
        stacks = cloudformation().describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        if _sessions.error_code(error) == "ValidationError" and "does not exist" in message:
            raise missing from None
        raise
    if not stacks or stacks[0].get("StackStatus") == "DELETE_COMPLETE":
        raise missing
    return str(stacks[0]["StackName"]), str(stacks[0]["StackId"])


def _authorize_caller(
    event: dict[str, Any], stack_name: str, stack_arn: str, globs: list[str], function_role: bool
) -> None:
    """BadRequest (403) unless the caller could change the functions the session would cover."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    account_id = stack_arn.split(":")[4]
    try:
        source = _caller_rights.principal(identity, account_id, iam())
        wanted = _caller_rights.wanted(
            cloudformation(), _sessions.lambda_client(), stack_arn, globs, function_role
        )
        _caller_rights.check(iam(), source, stack_name, wanted)
    except _caller_rights.NotAllowed as refusal:
        raise BadRequest(403, str(refusal), "CallerNotAuthorized") from None
    except ClientError as error:
        if _sessions.error_code(error) != "NoSuchEntity":
            raise
        message = f"The caller's IAM identity no longer exists: {identity.get('userArn')}"
        raise BadRequest(403, message, "CallerNotAuthorized") from None


def _take_over(
    item: dict[str, Any],
    reason: str = "another plldb attach took over this stack (--force)",
    restore: bool = True,
) -> None:
    """Hang up the debugger holding a session and close the session, for `force` or detach."""
    session_id = item["SessionId"]
    connection_id = item.get("ConnectionId")
    if connection_id:
        # Said before hanging up, so the other CLI stops instead of reconnecting to take it back.
        notice = _protocol.session_closed(reason)
        _sessions.post_to_connection(connection_id, _protocol.encode(notice))
    if connection_id and not _sessions.delete_connection(connection_id):
        logger.info("connection of session %s was already gone", short_id(session_id))
    closed = _sessions.close_active(session_id)
    logger.info(
        "session %s of stack %s %s (taken over with force)",
        short_id(session_id),
        item.get("StackName"),
        "closed" if closed else "was no longer active",
    )
    # Its $disconnect finds the session closed already and restores nothing: restore here, so
    # the functions are not left instrumented if the new session never connects. A new session
    # that does connect re-instruments from the functions' own records, whatever the order.
    if (
        restore
        and closed
        and not _sessions.start_instrumentation(
            "restore", session_id, str(item.get("StackName", ""))
        )
    ):
        logger.error("could not start restoring stack %s", item.get("StackName"))

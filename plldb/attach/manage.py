"""`plldb status` and `plldb detach`: the management API's calls that need no WebSocket."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from plldb.attach import sessions
from plldb.attach.discovery import discover_management_api
from plldb.attach.errors import (
    AttachError,
    ManagementApiUnavailableError,
    ManagementApiUnreachableError,
    SessionRequestError,
)
from plldb.aws import AwsTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetachResult:
    """What the backend did: sessions it closed, and sessions whose restore it started."""

    stack_name: str
    closed: list[str] = field(default_factory=list)
    restoring: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SessionStatus:
    session_id: str
    stack_name: str
    status: str
    created_by: str | None
    since: str | None
    lease_seconds_left: int | None
    functions: list[str]


@dataclass(frozen=True)
class Status:
    sessions: list[SessionStatus]
    roles: dict[str, list[str]]  # role ARN -> holders of its relay grant ("SESSION/FUNCTION")


def detach(
    target: AwsTarget,
    stack_name: str,
    session_id: str | None = None,
    management_api_url: str | None = None,
    http: Any = None,
) -> DetachResult:
    """POST /sessions/detach, signed like POST /sessions; idempotent."""
    body: dict[str, Any] = {"stackName": stack_name}
    if session_id:
        body["sessionId"] = session_id
    payload = _call(target, management_api_url, "POST", "/detach", http, json=body)
    return DetachResult(
        str(payload.get("stackName") or stack_name),
        [str(i) for i in payload.get("closed") or []],
        [str(i) for i in payload.get("restoring") or []],
    )


def status(
    target: AwsTarget,
    stack_name: str | None = None,
    management_api_url: str | None = None,
    http: Any = None,
) -> Status:
    """GET /sessions[?stackName=X]: sessions, their lease and functions; the roles' grants."""
    params = {"stackName": stack_name} if stack_name else None
    payload = _call(target, management_api_url, "GET", "", http, params=params)
    found = [
        SessionStatus(
            str(item.get("sessionId", "")),
            str(item.get("stackName", "")),
            str(item.get("status", "")),
            item.get("createdBy"),
            item.get("since"),
            item.get("leaseSecondsLeft"),
            [str(name) for name in item.get("functions") or []],
        )
        for item in payload.get("sessions") or []
        if isinstance(item, dict)
    ]
    roles = payload.get("roles") if isinstance(payload.get("roles"), dict) else {}
    return Status(found, {str(k): [str(h) for h in v or []] for k, v in roles.items()})


def _call(
    target: AwsTarget,
    management_api_url: str | None,
    method: str,
    path: str,
    http: Any,
    **arguments: Any,
) -> dict[str, Any]:
    import requests

    base = discover_management_api(target, management_api_url)
    client = http or requests
    try:
        response = client.request(
            method,
            sessions.sessions_url(base) + path,
            auth=sessions._signer(target, base),
            timeout=sessions.DEFAULT_TIMEOUT,
            headers={"Accept": "application/json"},
            **arguments,
        )
    except requests.RequestException as error:
        raise ManagementApiUnreachableError(
            f"Cannot reach the management API at {base}: {sessions._reason(error)}"
        ) from error
    payload = sessions._json_object(response.content) or {}
    status = response.status_code
    if status == 200:
        return payload
    message = sessions._message(payload or None, response.content)
    if status == 403:
        error_type = (response.headers.get("x-amzn-ErrorType") or "").split(":")[0] or None
        raise sessions._forbidden(message, error_type, base, target.region, target.account_id)
    if status == 429 or status >= 500:
        raise ManagementApiUnavailableError(f"The management API at {base} failed (HTTP {status})")
    if 400 <= status < 500:
        raise SessionRequestError(message or f"the management API refused (HTTP {status})", status)
    raise AttachError(f"Unexpected answer from the management API at {base} (HTTP {status})")

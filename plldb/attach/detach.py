"""`plldb detach`: end a stack's debug sessions and restore its functions, without a connection."""

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


def detach(
    target: AwsTarget,
    stack_name: str,
    session_id: str | None = None,
    management_api_url: str | None = None,
    http: Any = None,
) -> DetachResult:
    """POST /sessions/detach, signed like POST /sessions; idempotent."""
    import requests

    base = discover_management_api(target, management_api_url)
    body: dict[str, Any] = {"stackName": stack_name}
    if session_id:
        body["sessionId"] = session_id
    client = http or requests
    try:
        response = client.post(
            sessions.sessions_url(base) + "/detach",
            json=body,
            auth=sessions._signer(target, base),
            timeout=sessions.DEFAULT_TIMEOUT,
            headers={"Accept": "application/json"},
        )
    except requests.RequestException as error:
        raise ManagementApiUnreachableError(
            f"Cannot reach the management API at {base}: {sessions._reason(error)}"
        ) from error
    payload = sessions._json_object(response.content) or {}
    status = response.status_code
    if status == 200:
        return DetachResult(
            str(payload.get("stackName") or stack_name),
            [str(i) for i in payload.get("closed") or []],
            [str(i) for i in payload.get("restoring") or []],
        )
    message = sessions._message(payload or None, response.content)
    if status == 403:
        error_type = (response.headers.get("x-amzn-ErrorType") or "").split(":")[0] or None
        raise sessions._forbidden(message, error_type, base, target.region, target.account_id)
    if status == 429 or status >= 500:
        raise ManagementApiUnavailableError(f"The management API at {base} failed (HTTP {status})")
    if 400 <= status < 500:
        raise SessionRequestError(message or f"detach refused (HTTP {status})", status)
    raise AttachError(f"Unexpected answer from the management API at {base} (HTTP {status})")

"""Creates debugging sessions through the management REST API: POST /sessions, signed with SigV4."""

from __future__ import annotations

import datetime
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from plldb.attach.errors import (
    AttachError,
    ManagementApiForbiddenError,
    ManagementApiUnavailableError,
    ManagementApiUnreachableError,
    SessionConflictError,
    SessionRequestError,
)
from plldb.aws import AwsTarget, aws_errors
from plldb.errors import ConfigurationError

log = logging.getLogger(__name__)

SERVICE = "execute-api"
# (connect, read) seconds: API Gateway gives an integration 29 s, so a read of 30 s is enough.
DEFAULT_TIMEOUT = (10.0, 30.0)
_SHORT_ID = 8
_EXECUTE_API_HOST = re.compile(
    r"^(?P<api>[a-z0-9]+)\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<cn>\.cn)?$"
)
# x-amzn-ErrorType values of API Gateway's 403s that mean the credentials themselves failed.
_REJECTED_CREDENTIALS = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignatureException",
    "ExpiredTokenException",
}
_CALLER_NOT_AUTHORIZED = "CallerNotAuthorized"
_MISSING_TOKEN = "MissingAuthenticationTokenException"  # noqa: S105 - an error type
# urllib3 starts its messages with the connection object: "HTTPConnection(host=..., port=...): "
_CONNECTION_PREFIX = re.compile(r"^(?:<[^>]*>|\w+\([^)]*\)): ")


@dataclass(frozen=True)
class Session:
    """A session the management API created; its id works for one WebSocket connection."""

    # Kept out of repr: the id is a bearer secret until it is used.
    session_id: str = field(repr=False)
    expires_at: int | None = None
    # Without a heartbeat within this many seconds the backend's sweeper ends the session.
    lease_seconds: int | None = None

    @property
    def short_id(self) -> str:
        return short_id(self.session_id)


@dataclass(frozen=True)
class ExecuteApiUrl:
    """The parts of an `https://{api}.execute-api.{region}.amazonaws.com/{stage}` address."""

    api_id: str
    region: str
    stage: str | None
    partition: str


def short_id(session_id: str) -> str:
    """The form of a session id fit for output and logs: its first 8 characters."""
    return f"{session_id[:_SHORT_ID]}…"


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def parse_execute_api_url(url: str) -> ExecuteApiUrl | None:
    """The API id, region and stage of a default execute-api URL; None for a custom domain."""
    parts = urlsplit(url)
    match = _EXECUTE_API_HOST.match((parts.hostname or "").lower())
    if match is None:
        return None
    segments = [segment for segment in parts.path.split("/") if segment]
    region = match["region"]
    return ExecuteApiUrl(
        api_id=match["api"],
        region=region,
        stage=segments[0] if segments else None,
        partition="aws-cn" if match["cn"] else partition_of(region),
    )


def sessions_url(management_api_url: str) -> str:
    return management_api_url.rstrip("/") + "/sessions"


def invoke_permission(management_api_url: str, region: str, account_id: str) -> str:
    """What the caller needs to create sessions, as a sentence fragment naming the resource."""
    parsed = parse_execute_api_url(management_api_url)
    if parsed is None:
        return f"execute-api:Invoke on the API behind {sessions_url(management_api_url)}"
    resource = (
        f"arn:{parsed.partition}:execute-api:{parsed.region or region}:{account_id}:"
        f"{parsed.api_id}/{parsed.stage or '*'}/POST/sessions"
    )
    return f"execute-api:Invoke on {resource}"


def session_from_response(
    status: int,
    body: bytes | str,
    *,
    management_api_url: str,
    stack_name: str,
    region: str,
    account_id: str,
    error_type: str | None = None,
    now: datetime.datetime | None = None,
) -> Session:
    """The session a POST /sessions answer carries, or the AttachError that explains it."""
    payload = _json_object(body)
    message = _message(payload, body)
    if status in (200, 201):
        session_id = payload.get("sessionId") if payload else None
        if not isinstance(session_id, str) or not session_id:
            raise AttachError(
                f"The management API at {management_api_url} answered HTTP {status} without a "
                "session id: is it plldb's management API? Run `plldb bootstrap setup` to update it"
            )
        expires_at = payload.get("expiresAt")
        lease = payload.get("leaseSeconds")
        return Session(
            session_id=session_id,
            expires_at=expires_at if isinstance(expires_at, int) else None,
            lease_seconds=lease if isinstance(lease, int) and lease > 0 else None,
        )
    if status == 409:
        since = payload.get("activeSince") if payload else None
        if isinstance(since, str) and since:
            text = f"Stack {stack_name} already has a debugger attached since {since}"
            text += _ago(since, now)
        else:
            text = message or f"Stack {stack_name} already has a debugger attached"
        raise SessionConflictError(f"{text}: use --force to take over", since)
    if status == 403 and payload is not None and payload.get("code") == _CALLER_NOT_AUTHORIZED:
        # plldb's own refusal, not API Gateway's: the caller may not debug these functions.
        raise SessionRequestError(message or "The management API refused the session", status)
    if status == 403:
        raise _forbidden(message, error_type, management_api_url, region, account_id)
    if status == 429 or status >= 500:
        raise ManagementApiUnavailableError(
            f"The management API at {management_api_url} failed (HTTP {status}): "
            f"{message or 'no details'}"
        )
    if 400 <= status < 500:
        raise SessionRequestError(
            message or f"The management API refused the session (HTTP {status})", status
        )
    raise AttachError(
        f"Unexpected answer from the management API at {management_api_url} (HTTP {status}): "
        f"{message or 'no details'}"
    )


def _request_body(
    stack_name: str, force: bool, functions: Sequence[str], function_role: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {"stackName": stack_name, "force": force}
    if functions:
        body["functions"] = list(functions)  # instrument only these (globs)
    if function_role:
        body["functionRole"] = True  # the relay sends the function role's credentials
    return body


def create_session(
    target: AwsTarget,
    management_api_url: str,
    stack_name: str,
    force: bool = False,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    http: Any = None,
    functions: Sequence[str] = (),
    function_role: bool = False,
) -> Session:
    """POST /sessions with the target's credentials; http is a requests.Session (default: new)."""
    import requests

    url = sessions_url(management_api_url)
    auth = _signer(target, management_api_url)
    client = http or requests
    log.debug("POST %s for stack %s (force=%s)", url, stack_name, force)
    try:
        response = client.post(
            url,
            json=_request_body(stack_name, force, functions, function_role),
            auth=auth,
            timeout=timeout,
            headers={"Accept": "application/json"},
        )
    except requests.RequestException as error:
        raise ManagementApiUnreachableError(
            f"Cannot reach the management API at {management_api_url}: {_reason(error)}"
        ) from error
    error_type = (response.headers.get("x-amzn-ErrorType") or "").split(":")[0] or None
    session = session_from_response(
        response.status_code,
        response.content,
        management_api_url=management_api_url,
        stack_name=stack_name,
        region=target.region,
        account_id=target.account_id,
        error_type=error_type,
    )
    log.debug("session %s created, expires at %s", session.short_id, session.expires_at)
    return session


def signing_region(management_api_url: str, default_region: str) -> str:
    """API Gateway checks the signature against its own region, which its default URL names."""
    parsed = parse_execute_api_url(management_api_url)
    return parsed.region if parsed else default_region


def _signer(target: AwsTarget, management_api_url: str) -> Any:
    from requests_aws4auth import AWS4Auth

    # Read for every request: SSO and assumed-role credentials are refreshed underneath.
    with aws_errors("reading AWS credentials to sign the request to the management API"):
        credentials = target.session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    if frozen is None or not frozen.access_key or not frozen.secret_key:
        raise ConfigurationError(
            "No usable AWS credentials to sign the request to the management API: set "
            "AWS_PROFILE, run `aws configure` or `aws sso login`, or export AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY"
        )
    return AWS4Auth(
        frozen.access_key,
        frozen.secret_key,
        signing_region(management_api_url, target.region),
        SERVICE,
        session_token=frozen.token or None,
    )


def _forbidden(
    message: str,
    error_type: str | None,
    management_api_url: str,
    region: str,
    account_id: str,
) -> ManagementApiForbiddenError:
    said = f"API Gateway said: {message}" if message else "API Gateway gave no reason"
    if error_type == _MISSING_TOKEN or message == "Missing Authentication Token":
        text = (
            f"The management API at {management_api_url} has no POST /sessions (HTTP 403, "
            f"{message or error_type}): check the URL, or run `plldb bootstrap setup` to update "
            "the plldb stack"
        )
    elif error_type in _REJECTED_CREDENTIALS or "security token" in message.lower():
        text = (
            f"The management API rejected the AWS credentials (HTTP 403, {error_type or 'denied'}"
            f"); {said}: refresh the credentials (and check the clock), then run again"
        )
    else:
        text = (
            f"The management API refused the credentials of account {account_id} (HTTP 403): "
            f"they may lack {invoke_permission(management_api_url, region, account_id)}; {said}"
        )
    return ManagementApiForbiddenError(text, error_type)


def _json_object(body: bytes | str) -> dict[str, Any] | None:
    try:
        payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _message(payload: dict[str, Any] | None, body: bytes | str) -> str:
    """API Gateway's and the backend's error text: "message" (or "Message"), else the raw body."""
    if payload is not None:
        for key in ("message", "Message"):
            if isinstance(payload.get(key), str):
                return " ".join(payload[key].split())
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text[:200] + ("…" if len(text) > 200 else "")


def _ago(iso: str, now: datetime.datetime | None) -> str:
    """' (12 minutes ago)' for an ISO 8601 time, or '' when it cannot be read."""
    try:
        since = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if since.tzinfo is None:
        since = since.replace(tzinfo=datetime.timezone.utc)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    minutes = int((now - since).total_seconds() // 60)
    if minutes < 0:
        return ""
    if minutes < 1:
        return " (less than a minute ago)"
    if minutes < 120:
        return f" ({minutes} minute{'s' if minutes != 1 else ''} ago)"
    return f" ({minutes // 60} hours ago)"


def _reason(error: Exception) -> str:
    """What went wrong, without urllib3's wrapping ("HTTPConnectionPool(...): Max retries...")."""
    import requests

    if isinstance(error, requests.Timeout):
        return "the request timed out"
    inner: object = error.args[0] if error.args else error
    inner = getattr(inner, "reason", None) or inner  # urllib3's MaxRetryError
    args = getattr(inner, "args", ())
    if len(args) == 2 and isinstance(args[1], BaseException):  # ("Connection aborted.", cause)
        inner = args[1]
    text = str(inner)
    return _CONNECTION_PREFIX.sub("", text) or type(error).__name__

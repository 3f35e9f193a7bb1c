"""What a handler is given and what it gives back: the invocation, its context, its result."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plldb.attach.local_source import LocalFunction

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Invocation:
    request_id: str
    function_name: str
    event: Any
    deadline_ms: int
    invoked_function_arn: str = ""
    environment: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    context: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    credentials: Mapping[str, str] | None = None

    def __repr__(self) -> str:
        # Environment and credentials may hold secrets; keep them out of logs and tracebacks.
        return f"Invocation(request_id={self.request_id!r}, function_name={self.function_name!r})"


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    payload: Any = None
    error: dict | None = None


@dataclass(frozen=True)
class Ran:
    """What the invoker saw of one invocation it ran locally: for `attach --record`."""

    invocation: Invocation
    function: LocalFunction
    result: InvocationResult
    started_at: float  # seconds since the epoch
    duration_ms: float


@dataclass
class CognitoIdentity:
    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


@dataclass
class Client:
    installation_id: str | None = None
    app_title: str | None = None
    app_version_name: str | None = None
    app_version_code: str | None = None
    app_package_name: str | None = None


@dataclass
class ClientContext:
    client: Client | None = None
    custom: Any = None
    env: Any = None


def _client_context(value: Any) -> ClientContext | None:
    if isinstance(value, str):
        value = json.loads(value) if value else None
    if not isinstance(value, Mapping):
        return None
    client = value.get("client")
    return ClientContext(
        client=Client(**{k: client.get(k) for k in Client.__dataclass_fields__})
        if isinstance(client, Mapping)
        else None,
        custom=value.get("custom"),
        env=value.get("env"),
    )


class LambdaContext:
    """The `context` argument of a handler, as Lambda's Python runtime builds it."""

    def __init__(self, invocation: Invocation) -> None:
        details = invocation.context
        identity = details.get("identity") or {}
        self.function_name = invocation.function_name
        self.function_version = str(details.get("functionVersion", "$LATEST"))
        self.invoked_function_arn = invocation.invoked_function_arn
        self.memory_limit_in_mb = int(details.get("memoryLimitInMB", 128))
        self.aws_request_id = invocation.request_id
        self.log_group_name = details.get("logGroupName", f"/aws/lambda/{invocation.function_name}")
        self.log_stream_name = details.get("logStreamName", "")
        self.identity = CognitoIdentity(
            identity.get("cognitoIdentityId"), identity.get("cognitoIdentityPoolId")
        )
        self.client_context = _client_context(details.get("clientContext"))
        self._deadline_ms = invocation.deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, message: str) -> None:
        # The handler's own output, as Lambda's context.log writes it.
        sys.stdout.write(message)

    def __repr__(self) -> str:
        return (
            f"LambdaContext(function_name={self.function_name!r}, "
            f"aws_request_id={self.aws_request_id!r})"
        )

"""Plain descriptions of what the offline cloud serves, shared by its parts.

The catalog (built from deployed templates) produces these; the Lambda front and the API
Gateway stand-in consume them. No AWS calls here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class InvokeResult:
    """What Lambda's Invoke API answers."""

    status_code: int  # 200 for RequestResponse (also when the function failed), 202 for Event
    payload: bytes  # the function's JSON result, or Lambda's error JSON on failure
    function_error: str | None = None  # "Unhandled" when the function raised, timed out or crashed


class Invoker(Protocol):
    """Runs a deployed function; `function` is a name, a full ARN or a partial ARN."""

    def __call__(self, function: str, payload: bytes) -> InvokeResult: ...


@dataclass(frozen=True)
class Authorizer:
    """A REQUEST Lambda authorizer of a WebSocket API."""

    function: str
    identity_source: tuple[str, ...] = ()  # e.g. ("route.request.querystring.sessionId",)


@dataclass(frozen=True)
class WebSocketRoute:
    function: str
    authorization: str = "NONE"  # "NONE" or "CUSTOM"
    two_way: bool = False  # a `$default` route response: the integration's body goes back


@dataclass(frozen=True)
class WebSocketApi:
    api_id: str
    stage: str
    name: str = ""
    route_selection_expression: str = "$request.body.action"
    routes: dict[str, WebSocketRoute] = field(default_factory=dict)  # by route key
    authorizer: Authorizer | None = None


@dataclass(frozen=True)
class RestMethod:
    function: str
    authorization: str = "NONE"  # "NONE" or "AWS_IAM"


@dataclass(frozen=True)
class RestApi:
    api_id: str
    stage: str
    name: str = ""
    # (resource path such as "/sessions" or "/items/{id}", HTTP method or "ANY") -> method
    methods: dict[tuple[str, str], RestMethod] = field(default_factory=dict)

"""API Gateway's wire shapes: the events it sends to functions and how it reads their answers."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from plldb.local.specs import InvokeResult

INTERNAL_SERVER_ERROR = "Internal server error"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PROXY_RESPONSE_KEYS = frozenset(
    {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
)
_CONTEXT_VALUE_TYPES = (str, int, float, bool)


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an HTTP request (a WebSocket handshake or a REST call) that events carry."""

    headers: tuple[tuple[str, str], ...] = ()  # in the order and case the client sent them
    query: tuple[tuple[str, str], ...] = ()  # decoded (name, value) pairs, repeats kept

    def header(self, name: str) -> str | None:
        """The last value of a header, matched without regard to case."""
        wanted = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == wanted:
                found = value
        return found


@dataclass(frozen=True)
class WebSocketConnection:
    """What API Gateway knows about one WebSocket connection; every route event repeats it."""

    api_id: str
    stage: str
    connection_id: str
    connected_at: int  # epoch milliseconds
    domain_name: str  # "127.0.0.1:PORT"
    source_ip: str = "127.0.0.1"
    user_agent: str = ""


@dataclass(frozen=True)
class AuthorizerDecision:
    """A Lambda authorizer's answer, read against the ARN of the route being authorized."""

    allowed: bool
    principal_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    def request_context(self, integration_latency_ms: int = 0) -> dict[str, Any]:
        """`requestContext.authorizer` of later events: principalId and the context, flattened."""
        flattened: dict[str, Any] = dict(self.context)
        flattened["principalId"] = self.principal_id
        flattened["integrationLatency"] = integration_latency_ms
        return flattened


@dataclass(frozen=True)
class Outcome:
    """An invocation as an integration sees it: the function's JSON result, or why it failed."""

    ok: bool
    value: Any = None
    error: str = ""


@dataclass(frozen=True)
class RestRequest:
    """A REST call matched to a resource and method of a deployed stage."""

    api_id: str
    stage: str
    resource: str  # "/items/{id}"
    path: str  # "/items/42", without the stage
    http_method: str
    request: HttpRequest
    path_parameters: dict[str, str]
    body: bytes
    domain_name: str
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


@dataclass(frozen=True)
class ProxyResponse:
    """A Lambda proxy integration's answer, ready to be written as an HTTP response."""

    status_code: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def now_ms() -> int:
    return int(time.time() * 1000)


def request_time(epoch_ms: int) -> str:
    """API Gateway's `requestTime`, such as "09/Apr/2015:12:34:56 +0000" (locale-independent)."""
    moment = time.gmtime(epoch_ms / 1000)
    month = _MONTHS[moment.tm_mon - 1]
    return (
        f"{moment.tm_mday:02d}/{month}/{moment.tm_year}:{time.strftime('%H:%M:%S', moment)} +0000"
    )


def method_arn(region: str, account_id: str, api_id: str, stage: str, route: str) -> str:
    """The execute-api ARN an authorizer's policy is checked against; `route` has no leading /."""
    return f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{route}"


def header_maps(
    pairs: Iterable[tuple[str, str]],
) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """`headers` (last value wins) and `multiValueHeaders`, both None when there are none."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return (single or None), (multi or None)


def websocket_request_context(
    connection: WebSocketConnection,
    route_key: str,
    event_type: str,
    request_id: str,
    epoch_ms: int,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(epoch_ms),
        "messageDirection": "IN",
        "stage": connection.stage,
        "connectedAt": connection.connected_at,
        "requestTimeEpoch": epoch_ms,
        "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
        "requestId": request_id,
        "domainName": connection.domain_name,
        "connectionId": connection.connection_id,
        "apiId": connection.api_id,
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return context


def _handshake_fields(request: HttpRequest) -> dict[str, Any]:
    headers, multi_headers = header_maps(request.headers)
    query, multi_query = header_maps(request.query)
    return {
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
    }


def authorizer_request_event(
    connection: WebSocketConnection,
    request: HttpRequest,
    arn: str,
    request_id: str,
    epoch_ms: int,
) -> dict[str, Any]:
    """The REQUEST authorizer event of a `$connect`."""
    return {
        "type": "REQUEST",
        "methodArn": arn,
        **_handshake_fields(request),
        "stageVariables": {},
        "requestContext": websocket_request_context(
            connection, "$connect", "CONNECT", request_id, epoch_ms
        ),
    }


def connect_event(
    connection: WebSocketConnection,
    request: HttpRequest,
    request_id: str,
    epoch_ms: int,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        **_handshake_fields(request),
        "requestContext": websocket_request_context(
            connection, "$connect", "CONNECT", request_id, epoch_ms, authorizer
        ),
        "isBase64Encoded": False,
    }


def message_event(
    connection: WebSocketConnection,
    route_key: str,
    data: str | bytes,
    request_id: str,
    message_id: str,
    epoch_ms: int,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    context = websocket_request_context(
        connection, route_key, "MESSAGE", request_id, epoch_ms, authorizer
    )
    context["messageId"] = message_id
    binary = isinstance(data, bytes)
    return {
        "requestContext": context,
        "body": base64.b64encode(data).decode("ascii") if binary else data,
        "isBase64Encoded": binary,
    }


def disconnect_event(
    connection: WebSocketConnection,
    status_code: int,
    reason: str,
    request_id: str,
    epoch_ms: int,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    context = websocket_request_context(
        connection, "$disconnect", "DISCONNECT", request_id, epoch_ms, authorizer
    )
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    headers = {"Host": connection.domain_name, "x-api-key": "", "X-Forwarded-For": ""}
    return {
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }


def error_frame(message: str, connection_id: str, request_id: str) -> str:
    """What API Gateway sends a WebSocket client when its message could not be handled."""
    return json.dumps({"message": message, "connectionId": connection_id, "requestId": request_id})


def select_route(expression: str, data: str | bytes, route_keys: Iterable[str]) -> str | None:
    """The route a message goes to: the one its selection value names, else `$default`, else None.

    Only `$request.body.<path>` expressions (optionally written `${...}`) look inside messages;
    a message that is not a JSON object, or binary, goes to `$default`.
    """
    keys = set(route_keys)
    chosen = _selection_value(expression, data)
    if chosen is not None and chosen in keys and chosen not in ("$connect", "$disconnect"):
        return chosen
    return "$default" if "$default" in keys else None


def _selection_value(expression: str, data: str | bytes) -> str | None:
    expression = expression.strip()
    if expression.startswith("${") and expression.endswith("}"):
        expression = "$" + expression[2:-1]
    prefix = "$request.body."
    if not expression.startswith(prefix) or isinstance(data, bytes):
        return None
    try:
        value: Any = json.loads(data)
    except ValueError:
        return None
    for name in expression[len(prefix) :].split("."):
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value)


def missing_identity_sources(sources: Iterable[str], request: HttpRequest) -> list[str]:
    """The identity sources (`route.request.header.X`, `route.request.querystring.Y`) absent.

    API Gateway answers 401 without calling the authorizer when any is missing or empty.
    """
    missing = []
    query = dict(request.query)
    for source in sources:
        if source.startswith("route.request.header."):
            value = request.header(source[len("route.request.header.") :])
        elif source.startswith("route.request.querystring."):
            value = query.get(source[len("route.request.querystring.") :])
        else:
            continue  # stage variables and context sources are always there
        if not value:
            missing.append(source)
    return missing


def evaluate_authorizer_result(result: Any, arn: str) -> AuthorizerDecision:
    """Read an authorizer's policy for `arn`: allowed when an Allow matches and no Deny does.

    Raises ValueError for an answer API Gateway would reject as malformed (it then says 500).
    """
    if not isinstance(result, dict):
        raise ValueError("the authorizer returned no JSON object")
    document = result.get("policyDocument")
    if not isinstance(document, dict):
        raise ValueError("the authorizer's answer has no policyDocument")
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise ValueError("policyDocument.Statement is neither an object nor a list")
    context = result.get("context") or {}
    if not isinstance(context, dict) or not all(
        isinstance(value, _CONTEXT_VALUE_TYPES) for value in context.values()
    ):
        raise ValueError("the authorizer's context must map names to strings, numbers or booleans")
    principal = result.get("principalId")
    allowed = denied = False
    for statement in statements:
        if not isinstance(statement, dict):
            raise ValueError("a policy statement is not an object")
        if not _covers(statement.get("Action"), "execute-api:Invoke"):
            continue
        if not _covers(statement.get("Resource"), arn):
            continue
        effect = str(statement.get("Effect", "")).lower()
        allowed = allowed or effect == "allow"
        denied = denied or effect == "deny"
    return AuthorizerDecision(
        allowed=allowed and not denied,
        principal_id=None if principal is None else str(principal),
        context=context,
    )


def _covers(patterns: Any, value: str) -> bool:
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list):
        return False
    return any(isinstance(pattern, str) and wildcard_match(pattern, value) for pattern in patterns)


def wildcard_match(pattern: str, value: str) -> bool:
    """IAM-style matching: `*` is any run of characters, `?` is one character; case matters."""
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def read_invoke_result(result: InvokeResult) -> Outcome:
    """Turn Lambda's Invoke answer into the integration's view: a JSON value, or a failure."""
    if result.function_error or not 200 <= result.status_code < 300:
        return Outcome(ok=False, error=_error_summary(result))
    if not result.payload:
        return Outcome(ok=True, value=None)
    try:
        return Outcome(ok=True, value=json.loads(result.payload))
    except ValueError:
        return Outcome(ok=False, error="the function's result is not JSON")


def _error_summary(result: InvokeResult) -> str:
    try:
        error = json.loads(result.payload)
    except ValueError:
        error = None
    if isinstance(error, dict) and ("errorType" in error or "errorMessage" in error):
        return f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
    kind = result.function_error or f"HTTP {result.status_code}"
    return f"{kind}: {result.payload[:200].decode('utf-8', 'replace')}"


def connect_status(value: Any) -> int:
    """The HTTP status a `$connect` integration's result asks for (no statusCode means 200)."""
    if isinstance(value, dict) and "statusCode" in value:
        try:
            return int(value["statusCode"])
        except (TypeError, ValueError):
            return 500
    return 200


def route_reply(value: Any) -> str | bytes | None:
    """What a two-way route sends back: the integration result's body (None: send nothing)."""
    if isinstance(value, dict):
        body = value.get("body")
        if body is None:
            return None
        if not isinstance(body, str):
            body = json.dumps(body)
        if value.get("isBase64Encoded"):
            try:
                return base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                return body
        return body
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def iam_identity(
    access_key: str, account_id: str, user_arn: str, source_ip: str, user_agent: str
) -> dict[str, Any]:
    """`requestContext.identity` of a call signed with IAM credentials."""
    identity = anonymous_identity(source_ip, user_agent)
    identity.update(
        accessKey=access_key, accountId=account_id, caller=access_key, user=access_key,
        userArn=user_arn,
    )  # fmt: skip
    return identity


def anonymous_identity(source_ip: str, user_agent: str) -> dict[str, Any]:
    return {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "sourceIp": source_ip,
        "principalOrgId": None,
        "accessKey": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": user_agent,
        "user": None,
    }


def rest_proxy_event(
    call: RestRequest,
    account_id: str,
    identity: Mapping[str, Any],
    request_id: str,
    extended_request_id: str,
    epoch_ms: int,
) -> dict[str, Any]:
    """The Lambda proxy (payload format 1.0) event of a REST API call."""
    headers, multi_headers = header_maps(call.request.headers)
    query, multi_query = header_maps(call.request.query)
    body: str | None
    encoded = False
    if not call.body:
        body = None
    else:
        try:
            body = call.body.decode("utf-8")
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(call.body).decode("ascii"), True
    return {
        "resource": call.resource,
        "path": call.path,
        "httpMethod": call.http_method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": dict(call.path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": _resource_id(call.resource),
            "resourcePath": call.resource,
            "httpMethod": call.http_method,
            "extendedRequestId": extended_request_id,
            "requestTime": request_time(epoch_ms),
            "path": f"/{call.stage}{call.path}",
            "accountId": account_id,
            "protocol": call.protocol,
            "stage": call.stage,
            "domainPrefix": call.domain_name.split(".")[0],
            "requestTimeEpoch": epoch_ms,
            "requestId": request_id,
            "identity": dict(identity),
            "domainName": call.domain_name,
            "apiId": call.api_id,
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def _resource_id(resource: str) -> str:
    # A stable six-character id per resource path, like the ids API Gateway gives resources.
    return format(binascii.crc32(resource.encode()) & 0xFFFFFF, "06x")


def parse_proxy_response(value: Any) -> ProxyResponse:
    """Read a Lambda proxy integration's result; ValueError where API Gateway would answer 502."""
    if not isinstance(value, dict):
        raise ValueError("the result is not a JSON object")
    extra = set(value) - _PROXY_RESPONSE_KEYS
    if extra:
        raise ValueError(f"the result has fields API Gateway does not accept: {sorted(extra)}")
    if "statusCode" not in value:
        raise ValueError("the result has no statusCode")
    try:
        status = int(value["statusCode"])
    except (TypeError, ValueError) as error:
        raise ValueError("statusCode is not an integer") from error
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode {status} is not an HTTP status")
    headers: list[tuple[str, str]] = []
    single = value.get("headers") or {}
    multi = value.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise ValueError("headers and multiValueHeaders must be objects")
    for name, values in multi.items():
        if not isinstance(values, list):
            raise ValueError(f"multiValueHeaders[{name!r}] is not a list")
        headers.extend((name, _header_text(item)) for item in values)
    seen = {name.lower() for name, _ in headers}
    headers.extend(
        (name, _header_text(item)) for name, item in single.items() if name.lower() not in seen
    )
    body = value.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        if value.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError) as error:
                raise ValueError("body is not valid base64") from error
        else:
            data = body.encode("utf-8")
    else:
        raise ValueError("body is not a string")
    return ProxyResponse(status_code=status, headers=tuple(headers), body=data)


def _header_text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        raise ValueError("header values must be strings, numbers or booleans")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

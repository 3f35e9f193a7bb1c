"""Which operation an HTTP request calls, and with which input, read with botocore's models."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from plldb.local.gateway.sigv4 import SignedRequest


class UnknownOperationError(LookupError):
    """The request matches no operation of the service's model."""


@dataclass(frozen=True)
class Operation:
    service: str  # the botocore service name ("dynamodb", "lambda", ...)
    name: str  # the API operation ("PutItem", "Invoke", ...)
    params: dict[str, Any]  # top-level input members by their model names


def read_operation(service: str, request: SignedRequest) -> Operation:
    """The operation and its top-level input members; raises UnknownOperationError."""
    model = _service_model(service)
    protocol = model.metadata.get("protocol")
    if protocol == "json":
        target = request.header("X-Amz-Target") or ""
        name = target.rpartition(".")[2]
        params = json.loads(request.body or b"{}")
        return Operation(service, _known(model, name), params if isinstance(params, dict) else {})
    if protocol in ("query", "ec2"):
        fields = dict(parse_qsl(request.query, keep_blank_values=True))
        if request.body:
            fields.update(
                parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
            )
        name = fields.pop("Action", "")
        fields.pop("Version", None)
        return Operation(service, _known(model, name), fields)
    return _read_rest(service, model, request)


def _known(model: Any, name: str) -> str:
    if name not in model.operation_names:
        raise UnknownOperationError(f"{model.service_name}: no operation {name!r}")
    return name


def _read_rest(service: str, model: Any, request: SignedRequest) -> Operation:
    query = parse_qsl(request.query, keep_blank_values=True)
    best: tuple[int, str, dict[str, str]] | None = None
    for name, method, pattern, literal, required_query in _routes(service):
        if method != request.method.upper():
            continue
        match = pattern.fullmatch(request.path)
        if match is None or not required_query <= {key for key, _ in query}:
            continue
        score = literal + 100 * len(required_query)
        if best is None or score > best[0]:
            best = (score, name, {k: unquote(v) for k, v in match.groupdict().items()})
    if best is None:
        raise UnknownOperationError(f"{service}: no operation for {request.method} {request.path}")
    _, name, by_location = best
    operation = model.operation_model(name)
    params: dict[str, Any] = {}
    has_payload = (
        operation.input_shape is not None and "payload" in operation.input_shape.serialization
    )
    if not has_payload and request.body.strip().startswith(b"{"):
        try:
            body = json.loads(request.body)
        except ValueError:
            body = {}
        params.update(body if isinstance(body, dict) else {})
    members = operation.input_shape.members if operation.input_shape else {}
    query_values = dict(query)
    for member, shape in members.items():
        location = shape.serialization.get("location")
        where = shape.serialization.get("name", member)
        if location == "uri" and where in by_location:
            params[member] = by_location[where]
        elif location == "querystring" and where in query_values:
            params[member] = query_values[where]
        elif location == "header" and request.header(where) is not None:
            params[member] = request.header(where)
    return Operation(service, name, params)


def _service_model(service: str) -> Any:
    # moto's own cached copy: each model (MBs of JSON for some services) is parsed once
    from moto.core.utils import get_service_model

    return get_service_model(service)


@functools.cache
def _routes(service: str) -> list[tuple[str, str, re.Pattern[str], int, frozenset[str]]]:
    model = _service_model(service)
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        path, _, query = http.get("requestUri", "/").partition("?")
        regex, literal = "", 0
        for piece in re.split(r"(\{[^}]+\})", path):
            if piece.startswith("{"):
                label = re.sub(r"\W", "_", piece.strip("{}+"))
                regex += f"(?P<{label}>.+)" if piece.endswith("+}") else f"(?P<{label}>[^/]+)"
            else:
                regex += re.escape(piece)
                literal += len(piece)
        required = frozenset(key for key, _ in parse_qsl(query, keep_blank_values=True))
        routes.append(
            (name, http.get("method", "POST"), re.compile(regex + "/?"), literal, required)
        )
    return routes

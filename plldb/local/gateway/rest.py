"""REST APIs of the API Gateway stand-in: routing, SigV4 checks and Lambda proxy integrations."""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from plldb.local.gateway import events, sigv4
from plldb.local.gateway.arns import execute_api_arn
from plldb.local.httpserver import LoopbackHTTPServer
from plldb.local.service import Service
from plldb.local.specs import Invoker, RestApi, RestMethod

logger = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "123456789012"
_POLL_INTERVAL = 0.05  # seconds; how long stop() waits for the HTTP server loop to notice
_LITERAL, _PARAMETER, _GREEDY = 2, 1, 0  # how specific a resource segment is


@dataclass(frozen=True)
class RouteMatch:
    """The resource and method a request path reaches, with its path parameters."""

    resource: str
    http_method: str  # as declared: "GET", or "ANY"
    method: RestMethod
    path_parameters: dict[str, str]


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def match_route(
    methods: Mapping[tuple[str, str], RestMethod], http_method: str, path: str
) -> RouteMatch | None:
    """Find the most specific resource with this method (or ANY) that matches a decoded path.

    Literal segments beat `{param}` segments, which beat `{proxy+}`; an exact method beats ANY.
    """
    segments = _segments(path)
    best: tuple[tuple[int, ...], int, RouteMatch] | None = None
    for (resource, declared), method in methods.items():
        declared = declared.upper()
        if declared not in (http_method.upper(), "ANY"):
            continue
        matched = _match_resource(_segments(resource), segments)
        if matched is None:
            continue
        ranks, parameters = matched
        key = (ranks, 1 if declared != "ANY" else 0)
        if best is None or key > best[:2]:
            best = (ranks, key[1], RouteMatch(resource, declared, method, parameters))
    return None if best is None else best[2]


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _match_resource(
    template: list[str], segments: list[str]
) -> tuple[tuple[int, ...], dict[str, str]] | None:
    ranks: list[int] = []
    parameters: dict[str, str] = {}
    for index, part in enumerate(template):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[index:]
            if index != len(template) - 1 or not rest:
                return None
            parameters[part[1:-2]] = "/".join(rest)
            ranks.append(_GREEDY)
            return tuple(ranks), parameters
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            parameters[part[1:-1]] = segments[index]
            ranks.append(_PARAMETER)
        elif part == segments[index]:
            ranks.append(_LITERAL)
        else:
            return None
    if len(template) != len(segments):
        return None
    return tuple(ranks), parameters


def _json_error(status: int, error_type: str, message: str) -> HttpAnswer:
    body = json.dumps({"message": message}).encode()
    headers = (("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type))
    return HttpAnswer(status, headers, body)


class RestGateway(Service):
    """Serves deployed REST API stages at http://127.0.0.1:PORT/{api_id}/{stage}/...

    AWS_IAM methods check the caller's SigV4 signature against the known credentials; a valid
    caller appears in requestContext.identity with userArn "arn:aws:iam::{account}:user/{key id}"
    (the offline cloud knows access keys, not user names, so the key id stands in for both).
    """

    def __init__(
        self,
        invoke: Invoker,
        region: str,
        credentials: dict[str, str],
        account_id: str = DEFAULT_ACCOUNT,
        authorizer: Callable[[sigv4.SignedRequest, str], Any] | None = None,
    ) -> None:
        """`authorizer(request, execute-api ARN)`, under IAM enforcement, checks the signature of
        any known key and execute-api:Invoke (plldb/local/iam/gateway.py) instead of
        `credentials`; it gives a verdict and the caller's ARN."""
        self._invoke = invoke
        self._authorizer = authorizer
        self.region = region
        self.account_id = account_id
        self._credentials = dict(credentials)
        self._apis: dict[str, RestApi] = {}
        self._lock = threading.Lock()
        self._server: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> RestGateway:
        if self._server is not None:
            return self
        server = _HttpServer(self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            args=(_POLL_INTERVAL,),
            name="plldb-rest-gateway",
            daemon=True,
        )
        self._thread.start()
        logger.info("REST gateway listening on http://127.0.0.1:%d", self.port)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def add_api(self, api: RestApi) -> None:
        with self._lock:
            self._apis[api.api_id] = api

    def remove_api(self, api_id: str) -> None:
        with self._lock:
            self._apis.pop(api_id, None)

    def url(self, api_id: str) -> str:
        with self._lock:
            api = self._apis[api_id]
        return f"http://127.0.0.1:{self.port}/{api.api_id}/{api.stage}"

    def handle(
        self,
        method: str,
        target: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
        source_ip: str = "127.0.0.1",
        protocol: str = "HTTP/1.1",
    ) -> HttpAnswer:
        """Answer one HTTP request as API Gateway would; `target` is the raw request target."""
        request_id = str(uuid.uuid4())
        answer = self._answer(method, target, headers, body, source_ip, protocol, request_id)
        return HttpAnswer(
            answer.status, (*answer.headers, ("x-amzn-RequestId", request_id)), answer.body
        )

    def _answer(
        self,
        method: str,
        target: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
        source_ip: str,
        protocol: str,
        request_id: str,
    ) -> HttpAnswer:
        parts = urlsplit(target)
        api_id, _, rest = parts.path.lstrip("/").partition("/")
        stage, _, resource_path = rest.partition("/")
        with self._lock:
            api = self._apis.get(api_id)
        if api is None or api.stage != stage:
            return _json_error(403, "ForbiddenException", "Forbidden")
        path = "/" + unquote(resource_path)
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        route = match_route(api.methods, method, path)
        if route is None:
            return _json_error(403, sigv4.MISSING_TOKEN, "Missing Authentication Token")
        signed = sigv4.SignedRequest(method, parts.path, parts.query, headers, body)
        request = events.HttpRequest(headers=headers, query=_query_pairs(parts.query))
        user_agent = request.header("User-Agent") or ""
        if route.method.authorization.upper() == "AWS_IAM":
            verdict, user_arn = self._verify(signed, api, method, path)
            if not verdict.ok:
                logger.info("%s %s refused: %s", method, target, verdict.error_type)
                return _json_error(403, verdict.error_type or "", verdict.message or "")
            identity = events.iam_identity(
                verdict.access_key or "", self.account_id, user_arn, source_ip, user_agent
            )
        else:
            identity = events.anonymous_identity(source_ip, user_agent)
        call = events.RestRequest(
            api_id=api.api_id,
            stage=api.stage,
            resource=route.resource,
            path=path,
            http_method=method,
            request=request,
            path_parameters=route.path_parameters,
            body=body,
            domain_name=f"127.0.0.1:{self.port}",
            source_ip=source_ip,
            protocol=protocol,
        )
        event = events.rest_proxy_event(
            call, self.account_id, identity, request_id, _extended_id(), events.now_ms()
        )
        return self._integrate(route.method.function, event)

    def _verify(
        self, signed: sigv4.SignedRequest, api: RestApi, method: str, path: str
    ) -> tuple[sigv4.Verdict, str]:
        if self._authorizer is None:
            verdict = sigv4.verify(signed, self._credentials, self.region)
            return verdict, f"arn:aws:iam::{self.account_id}:user/{verdict.access_key}"
        arn = execute_api_arn(self.region, self.account_id, api.api_id, api.stage, method, path)
        caller = self._authorizer(signed, arn)
        return caller.verdict, caller.arn or ""

    def _integrate(self, function: str, event: dict[str, Any]) -> HttpAnswer:
        try:
            result = self._invoke(function, json.dumps(event).encode())
        except Exception:
            logger.exception("invoking %s failed", function)
            return _internal_error()
        outcome = events.read_invoke_result(result)
        if not outcome.ok:
            logger.warning("%s failed: %s", function, outcome.error)
            return _internal_error()
        try:
            response = events.parse_proxy_response(outcome.value)
        except ValueError as error:
            logger.warning("%s gave a malformed Lambda proxy response: %s", function, error)
            return _internal_error()
        headers = response.headers
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers = (*headers, ("Content-Type", "application/json"))
        return HttpAnswer(response.status_code, headers, response.body)


def _internal_error() -> HttpAnswer:
    return _json_error(502, "InternalServerErrorException", events.INTERNAL_SERVER_ERROR)


def _query_pairs(query: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_qsl(query, keep_blank_values=True))


def _extended_id() -> str:
    return base64.b64encode(os.urandom(11)).decode("ascii")


class _HttpServer(LoopbackHTTPServer):
    def __init__(self, gateway: RestGateway) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.gateway = gateway


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real front
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _HttpServer

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        answer = self.server.gateway.handle(
            self.command,
            self.path,
            tuple(self.headers.items()),
            body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "Bad Content-Length")
            return None
        return self.rfile.read(length) if length > 0 else b""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

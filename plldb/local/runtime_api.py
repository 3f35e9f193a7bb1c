"""The Lambda Runtime API (2018-06-01) that one execution environment's runtime polls for work."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from plldb.local.httpserver import LoopbackHTTPServer

logger = logging.getLogger(__name__)

_PREFIX = "/2018-06-01/runtime"
_ANSWER = re.compile(rf"^{_PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")


@dataclass(frozen=True)
class Outcome:
    """How an invocation ended: the function's result, or Lambda's error JSON."""

    body: bytes
    error_type: str | None = None  # None when the function returned; else the errorType

    @property
    def failed(self) -> bool:
        return self.error_type is not None


@dataclass
class Invocation:
    """One event on its way through an execution environment."""

    request_id: str
    payload: bytes
    invoked_arn: str
    timeout: float
    trace_id: str
    client_context: str | None = None
    delivered_at: float | None = None  # time.monotonic() when the runtime took it
    outcome: Outcome | None = None
    done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def resolve(self, outcome: Outcome) -> bool:
        """Records the first outcome only: a late answer after a timeout does not count."""
        with self._lock:
            if self.outcome is not None:
                return False
            self.outcome = outcome
        self.done.set()
        return True


def error_outcome(body: bytes, type_header: str | None) -> Outcome:
    """An error as the runtime posted it; a body that is not Lambda's JSON shape gets wrapped."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and "errorType" in document:
        return Outcome(body=body, error_type=str(document["errorType"]))
    error_type = type_header or "Runtime.Unknown"
    message = body.decode("utf-8", "replace") or "Unknown application error occurred"
    wrapped = {"errorMessage": message, "errorType": error_type}
    return Outcome(body=json.dumps(wrapped).encode(), error_type=error_type)


class RuntimeApi:
    """Serves /next, /response, /error and /init/error on 127.0.0.1 for a single runtime process.

    Lambda runs one invocation at a time per environment, so there is one slot: `submit` fills
    it, the runtime's long-polling `/next` takes it, and its answer resolves it.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._condition = threading.Condition()
        self._pending: Invocation | None = None  # submitted, not yet taken by /next
        self._current: Invocation | None = None  # taken by /next, not yet answered
        self._init_error: Outcome | None = None
        self._closed = False
        self._server = LoopbackHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"runtime-api-{label}", daemon=True
        )

    @property
    def address(self) -> str:
        """host:port, the value of AWS_LAMBDA_RUNTIME_API."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> RuntimeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Releases a waiting /next at once; the server itself winds down in the background."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        if not self._thread.is_alive():  # shutdown() would wait forever for a loop never started
            self._server.server_close()
            return
        # shutdown() waits up to serve_forever's poll interval (0.5 s); stopping many
        # environments one after another must not add that up.
        threading.Thread(target=self._close, name=f"{self._thread.name}-stop", daemon=True).start()

    def _close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def submit(self, invocation: Invocation) -> None:
        with self._condition:
            if self._pending is not None or self._current is not None:
                raise RuntimeError(f"environment {self.label} is already busy")
            if self._init_error is not None:
                invocation.resolve(self._init_error)
                return
            self._pending = invocation
            self._condition.notify_all()

    def abandon(self, outcome: Outcome) -> None:
        """Ends whatever invocation is in flight with `outcome` (runtime exited, timed out)."""
        with self._condition:
            invocations = [self._pending, self._current]
            self._pending = self._current = None
        for invocation in invocations:
            if invocation is not None:
                invocation.resolve(outcome)

    def in_flight(self) -> Invocation | None:
        with self._condition:
            return self._current or self._pending

    # Called from the HTTP handler threads.

    def _next(self) -> Invocation | None:
        with self._condition:
            while self._pending is None and not self._closed:
                self._condition.wait()
            if self._closed:
                return None
            invocation, self._pending = self._pending, None
            invocation.delivered_at = time.monotonic()
            self._current = invocation
            return invocation

    def _answer(self, request_id: str, outcome: Outcome) -> bool:
        with self._condition:
            invocation = self._current
            if invocation is None or invocation.request_id != request_id:
                return False
            self._current = None
        invocation.resolve(outcome)
        return True

    def _fail_init(self, outcome: Outcome) -> None:
        with self._condition:
            self._init_error = outcome
        self.abandon(outcome)


def _handler_for(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the runtime keeps its connection open between calls
        disable_nagle_algorithm = True  # headers and body go out as two writes

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("%s: " + format, api.label, *args)

        def do_GET(self) -> None:
            if self.path != f"{_PREFIX}/invocation/next":
                self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": "unknown path"})
                return
            invocation = api._next()
            if invocation is None:  # the environment is shutting down
                self.close_connection = True
                self._reply(HTTPStatus.GONE, {"errorMessage": "environment stopped"})
                return
            deadline_ms = int((time.time() + invocation.timeout) * 1000)
            headers = {
                # awslambdaric needs all of these: it hangs without the content type and
                # crashes without the trace id.
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": invocation.invoked_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            }
            if invocation.client_context:
                headers["Lambda-Runtime-Client-Context"] = invocation.client_context
            self._send(HTTPStatus.OK, invocation.payload, headers)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            type_header = self.headers.get("Lambda-Runtime-Function-Error-Type")
            if self.path == f"{_PREFIX}/init/error":
                api._fail_init(error_outcome(body, type_header))
                self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
                return
            match = _ANSWER.match(self.path)
            if match is None:
                self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": "unknown path"})
                return
            if match["kind"] == "response":
                outcome = Outcome(body=body)
            else:
                outcome = error_outcome(body, type_header)
            if api._answer(match["id"], outcome):
                self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
            else:
                message = f"Invalid request ID: {match['id']}"
                self._reply(
                    HTTPStatus.BAD_REQUEST,
                    {"errorMessage": message, "errorType": "InvalidRequestID"},
                )

        def _reply(self, status: HTTPStatus, document: dict[str, str]) -> None:
            self._send(status, json.dumps(document).encode(), {"Content-Type": "application/json"})

        def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the runtime was killed while we answered
                self.close_connection = True

    return Handler

"""A Runtime API proxy: the runtime asks it for work, and it decides which invocations to relay.

Each `GET .../invocation/next` from the runtime is answered by fetching the next invocation from
Lambda's Runtime API and offering it to the relay. The relay either answers it itself (the
answer goes straight to Lambda and the proxy fetches the next one) or declines, and then the
runtime gets the invocation and runs the function's own handler. Every other call passes through
unchanged. Standard library only.
"""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger("plldb.relay")

NEXT_PATH = "/2018-06-01/runtime/invocation/next"
# Headers a call to the Runtime API carries that matter to it; the rest is transport.
_FORWARDED_REQUEST_HEADERS = (
    "Content-Type",
    "Lambda-Runtime-Function-Error-Type",
    "Lambda-Runtime-Function-XRay-Error-Cause",
    "Lambda-Runtime-Function-Error-Body",
)
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


@dataclass(frozen=True)
class Invocation:
    """One invocation as the Runtime API handed it out."""

    request_id: str
    deadline_ms: int
    invoked_function_arn: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


@dataclass(frozen=True)
class Answer:
    """What the relay got for an invocation: a response body, or an error body and its type."""

    body: bytes
    error_type: str | None = None


# Returns None to let the runtime run the invocation itself.
Relay = Callable[[Invocation], "Answer | None"]


class Upstream:
    """Lambda's Runtime API, reached over plain HTTP on the sandbox's loopback."""

    def __init__(self, address: str) -> None:
        self.address = address

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(self.address)  # no timeout: /next long-polls
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            return answer.status, answer.getheaders(), answer.read()
        finally:
            connection.close()

    def next_invocation(self) -> tuple[int, list[tuple[str, str]], bytes]:
        return self.call("GET", NEXT_PATH)

    def answer(self, request_id: str, answer: Answer) -> int:
        if answer.error_type is None:
            path = f"/2018-06-01/runtime/invocation/{request_id}/response"
            headers = {"Content-Type": "application/json"}
        else:
            path = f"/2018-06-01/runtime/invocation/{request_id}/error"
            headers = {
                "Content-Type": "application/json",
                "Lambda-Runtime-Function-Error-Type": answer.error_type,
            }
        status, _, _ = self.call("POST", path, answer.body, headers)
        return status


def invocation_from(headers: list[tuple[str, str]], body: bytes) -> Invocation:
    def header(name: str) -> str:
        lowered = name.lower()
        return next((value for key, value in headers if key.lower() == lowered), "")

    deadline = header("Lambda-Runtime-Deadline-Ms")
    return Invocation(
        request_id=header("Lambda-Runtime-Aws-Request-Id"),
        deadline_ms=int(deadline) if deadline.isdigit() else 0,
        invoked_function_arn=header("Lambda-Runtime-Invoked-Function-Arn"),
        headers=tuple(headers),
        body=body,
    )


class RuntimeProxy:
    """Serves the Runtime API to the runtime on 127.0.0.1, relaying what `relay` takes."""

    def __init__(self, upstream_address: str, relay: Relay) -> None:
        self.upstream = Upstream(upstream_address)
        self.relay = relay
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The runtime keeps its connection open: with Nagle on, a body written after the
            # headers waits for the runtime's delayed ACK (about 40 ms, twice per invocation).
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                if self.path == NEXT_PATH:
                    self._send(*proxy.next_for_runtime())
                else:
                    self._send(*proxy.upstream.call("GET", self.path))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {
                    name: self.headers[name]
                    for name in _FORWARDED_REQUEST_HEADERS
                    if self.headers.get(name) is not None
                }
                self._send(*proxy.upstream.call("POST", self.path, body, headers))

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_HEADERS:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="plldb-proxy", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def next_for_runtime(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """The next invocation the relay does not answer itself (or the Runtime API's refusal)."""
        while True:
            status, headers, body = self.upstream.next_invocation()
            if status != 200:
                return status, headers, body
            invocation = invocation_from(headers, body)
            try:
                answer = self.relay(invocation)
            except Exception:  # a relay bug must never cost the invocation: run it here
                logger.exception("plldb relay failed; the function's own handler runs")
                answer = None
            if answer is None:
                return status, headers, body
            self.upstream.answer(invocation.request_id, answer)

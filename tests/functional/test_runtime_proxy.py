"""The relay runtime's Runtime API proxy against a stand-in Runtime API, and its start-up rules."""

from __future__ import annotations

import http.client
import importlib
import json
import queue
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from plldb.resources import cloudformation_dir

RELAY_DIR = cloudformation_dir() / "layer" / "plldb_relay"
FUNCTIONS_DIR = cloudformation_dir() / "lambda_functions"
NEXT = "/2018-06-01/runtime/invocation/next"


@pytest.fixture
def relay_modules(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.syspath_prepend(str(FUNCTIONS_DIR))
    monkeypatch.syspath_prepend(str(RELAY_DIR))
    names = ("runtime_proxy", "relay", "debugger_link", "_protocol")
    for name in names:
        sys.modules.pop(name, None)
    yield {name: importlib.import_module(name) for name in ("runtime_proxy", "relay")}
    for name in names:
        sys.modules.pop(name, None)


class RuntimeApi:
    """Lambda's Runtime API as the proxy sees it: hands out queued events, records answers."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.answers: queue.Queue[tuple[str, dict[str, str], bytes]] = queue.Queue()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                request_id, body = api.events.get(timeout=10)
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", "1800000000000")
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:fn")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-0-0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                api.answers.put((self.path, dict(self.headers), self.rfile.read(length)))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def runtime_api() -> Iterator[RuntimeApi]:
    api = RuntimeApi()
    yield api
    api.stop()


def call(address: str, method: str, path: str, body: bytes = b"", headers=None):
    connection = http.client.HTTPConnection(address, timeout=10)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def test_declined_invocations_reach_the_runtime_and_its_answers_pass_through(
    relay_modules, runtime_api
):
    proxy = relay_modules["runtime_proxy"].RuntimeProxy(runtime_api.address, lambda _: None)
    proxy.start()
    try:
        runtime_api.events.put(("req-1", b'{"n": 1}'))
        status, headers, body = call(proxy.address, "GET", NEXT)
        assert (status, body) == (200, b'{"n": 1}')
        assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
        assert headers["Lambda-Runtime-Trace-Id"] == "Root=1-0-0"
        error_headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Function-Error-Type": "Unhandled",
        }
        path = "/2018-06-01/runtime/invocation/req-1/error"
        assert call(proxy.address, "POST", path, b'{"errorType": "E"}', error_headers)[0] == 202
        posted_path, posted_headers, posted = runtime_api.answers.get(timeout=5)
        assert (posted_path, posted) == (path, b'{"errorType": "E"}')
        assert posted_headers["Lambda-Runtime-Function-Error-Type"] == "Unhandled"
    finally:
        proxy.stop()


def test_relayed_invocations_are_answered_by_the_relay_and_never_reach_the_runtime(
    relay_modules, runtime_api
):
    runtime_proxy = relay_modules["runtime_proxy"]
    seen: list[Any] = []

    def relay(invocation: Any) -> Any:
        seen.append(invocation)
        if invocation.request_id == "req-1":
            return runtime_proxy.Answer(b'{"local": true}')
        if invocation.request_id == "req-2":
            return runtime_proxy.Answer(b'{"errorType": "KeyError"}', error_type="KeyError")
        raise RuntimeError("a relay bug")  # must cost nothing: the runtime gets it

    proxy = runtime_proxy.RuntimeProxy(runtime_api.address, relay)
    proxy.start()
    try:
        for request_id in ("req-1", "req-2", "req-3"):
            runtime_api.events.put((request_id, json.dumps({"id": request_id}).encode()))
        status, headers, body = call(proxy.address, "GET", NEXT)
        assert (status, body) == (200, b'{"id": "req-3"}')
        assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-3"  # the first two were relayed
        first = runtime_api.answers.get(timeout=5)
        second = runtime_api.answers.get(timeout=5)
        assert first[0].endswith("/req-1/response") and first[2] == b'{"local": true}'
        assert second[0].endswith("/req-2/error")
        assert second[1]["Lambda-Runtime-Function-Error-Type"] == "KeyError"
        assert [invocation.deadline_ms for invocation in seen] == [1_800_000_000_000] * 3
        assert seen[0].invoked_function_arn == "arn:fn"
    finally:
        proxy.stop()


def test_the_runtime_starts_as_if_plldb_were_not_there(relay_modules):
    relay = relay_modules["relay"]
    environ = {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/bootstrap",
        "PLLDB_ORIGINAL_EXEC_WRAPPER": "/opt/bin/own-wrapper",
        "PLLDB_SESSION_ID": "s",
        "PLLDB_CALLBACK_URL": "https://x",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "TABLE": "orders",
    }
    assert relay.runtime_environment(environ, "127.0.0.1:5555") == {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/own-wrapper",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:5555",
        "TABLE": "orders",
    }
    command = relay.runtime_command(["/var/runtime/bootstrap"], environ)
    assert command == [str(relay.layers_root() / "bin" / "own-wrapper"), "/var/runtime/bootstrap"]
    assert relay.runtime_command(["/var/runtime/bootstrap"], {}) == ["/var/runtime/bootstrap"]
    without = {k: v for k, v in environ.items() if k != "PLLDB_ORIGINAL_EXEC_WRAPPER"}
    assert "AWS_LAMBDA_EXEC_WRAPPER" not in relay.runtime_environment(without, "a:1")

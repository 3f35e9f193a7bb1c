"""POST /sessions over real HTTP: SigV4 signing (checked like API Gateway does) and failures."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from plldb.attach.errors import (
    ManagementApiForbiddenError,
    ManagementApiUnreachableError,
    SessionConflictError,
    SessionRequestError,
)
from plldb.attach.sessions import Session, create_session
from plldb.aws import AwsTarget
from plldb.errors import ConfigurationError
from plldb.local.gateway import sigv4

REGION = "eu-west-1"
ACCOUNT = "123456789012"
KEYS = {"AKIDPLLDBTEST": "secret-key-for-tests"}


class FakeManagementApi:
    """Checks the signature with the offline cloud's verifier, then answers as scripted."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        # (status, body), or a callable giving one per request
        self.answer: Any = (201, {"sessionId": "sid-1", "expiresAt": 1700003600})
        self.hang = threading.Event()
        self.release = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                signed = sigv4.SignedRequest(
                    method="POST",
                    path=parts.path,
                    query=parts.query,
                    headers=tuple(self.headers.items()),
                    body=body,
                )
                verdict = sigv4.verify(signed, KEYS, REGION)
                api.requests.append(
                    {
                        "path": parts.path,
                        "body": json.loads(body),
                        "verdict": verdict,
                        "token": self.headers.get("X-Amz-Security-Token"),
                    }
                )
                if api.hang.is_set():
                    api.release.wait(2)
                    return
                if not verdict.ok:
                    self._send(403, {"message": verdict.message}, verdict.error_type)
                    return
                self._send(*(api.answer() if callable(api.answer) else api.answer))

            def _send(self, status: int, body: dict, error_type: str | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api1/prod"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeManagementApi]:
    server = FakeManagementApi()
    yield server
    server.stop()


def target(key: str = "AKIDPLLDBTEST", token: str | None = None) -> AwsTarget:
    session = boto3.Session(
        aws_access_key_id=key,
        aws_secret_access_key=KEYS.get(key, "wrong-secret"),
        aws_session_token=token,
        region_name=REGION,
    )
    return AwsTarget(session=session, account_id=ACCOUNT, region=REGION)


def test_the_request_is_signed_for_execute_api_and_carries_the_stack(api):
    session = create_session(target(), api.url, "orders")
    assert session == Session("sid-1", 1700003600)
    (request,) = api.requests
    assert request["path"] == "/api1/prod/sessions"
    assert request["body"] == {"stackName": "orders", "force": False}
    assert request["verdict"].ok, request["verdict"].message
    assert request["verdict"].access_key == "AKIDPLLDBTEST"
    assert request["token"] is None


def test_force_and_the_session_token_are_sent(api):
    create_session(target(token="session-token-1"), api.url + "/", "orders", force=True)
    (request,) = api.requests
    assert request["body"] == {"stackName": "orders", "force": True}
    assert request["token"] == "session-token-1"
    assert request["verdict"].ok, request["verdict"].message


def test_function_globs_and_the_function_role_opt_in_are_sent(api):
    create_session(target(), api.url, "orders", functions=["orders-*"], function_role=True)
    (request,) = api.requests
    assert request["body"] == {
        "stackName": "orders",
        "force": False,
        "functions": ["orders-*"],
        "functionRole": True,
    }


def test_unknown_credentials_get_api_gateways_403_explained(api):
    with pytest.raises(ManagementApiForbiddenError) as raised:
        create_session(target(key="AKIDSOMEONEELSE"), api.url, "orders")
    assert raised.value.error_type == sigv4.UNRECOGNIZED
    assert "The security token included in the request is invalid." in str(raised.value)


def test_a_conflict_comes_back_as_a_conflict_error(api):
    api.answer = (
        409,
        {"message": "already attached", "activeSince": "2026-01-02T10:00:00Z"},
    )
    with pytest.raises(SessionConflictError, match="use --force to take over"):
        create_session(target(), api.url, "orders")


def test_a_missing_target_stack_is_the_apis_message(api):
    api.answer = (404, {"message": "Stack orders does not exist"})
    with pytest.raises(SessionRequestError, match=r"^Stack orders does not exist$"):
        create_session(target(), api.url, "orders")


def test_a_closed_port_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api1/prod"
    with pytest.raises(ManagementApiUnreachableError) as raised:
        create_session(target(), url, "orders")
    assert str(raised.value).startswith(f"Cannot reach the management API at {url}: ")
    assert "Connection refused" in str(raised.value)


def test_a_silent_api_times_out(api):
    api.hang.set()
    with pytest.raises(ManagementApiUnreachableError, match="timed out"):
        create_session(target(), api.url, "orders", timeout=0.2)


def test_no_credentials_is_a_configuration_error(monkeypatch, aws_env):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    session = boto3.Session(region_name=REGION)
    with pytest.raises(ConfigurationError, match="No usable AWS credentials"):
        create_session(
            AwsTarget(session=session, account_id=ACCOUNT, region=REGION),
            "http://127.0.0.1:9/x",
            "orders",
        )

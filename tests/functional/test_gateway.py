"""The API Gateway stand-in over real sockets: WebSocket routes, @connections, REST with SigV4."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests
import websocket
from botocore.config import Config
from requests_aws4auth import AWS4Auth

from plldb.local.gateway.rest import RestGateway
from plldb.local.gateway.websocket import WebSocketGateway
from plldb.local.specs import (
    Authorizer,
    InvokeResult,
    RestApi,
    RestMethod,
    WebSocketApi,
    WebSocketRoute,
)

REGION = "eu-west-1"
ACCOUNT = "123456789012"
KEY, SECRET = "AKIDTESTING", "testing-secret"


class FakeInvoker:
    """Lambda's Invoke played by Python callables (event dict -> result), recording every call."""

    def __init__(self, functions: dict[str, Callable[[dict[str, Any]], Any]]) -> None:
        self.functions = functions
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, function: str, payload: bytes) -> InvokeResult:
        event = json.loads(payload)
        with self._lock:
            self.calls.append((function, event))
        try:
            result = self.functions[function](event)
        except Exception as error:
            body = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            return InvokeResult(200, json.dumps(body).encode(), "Unhandled")
        return InvokeResult(200, json.dumps(result).encode())

    def events(self, function: str) -> list[dict[str, Any]]:
        with self._lock:
            return [event for name, event in self.calls if name == function]

    def wait_for(self, function: str, count: int = 1, timeout: float = 5) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(function)
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(f"{function} was called {len(self.events(function))} times")


def _authorize(event: dict[str, Any]) -> dict[str, Any]:
    session = event["queryStringParameters"]["sessionId"]
    if session == "boom":
        raise RuntimeError("authorizer crashed")
    effect = "Deny" if session == "bad" else "Allow"
    resource = event["methodArn"].rsplit("/", 1)[0] + "/*"  # a wildcard, as real policies use
    return {
        "principalId": "developer",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": {"sessionId": session, "level": 3},
    }


def _connect(event: dict[str, Any]) -> dict[str, Any]:
    query = event["queryStringParameters"]
    if query.get("connect") == "crash":
        raise ValueError("connect crashed")
    if query.get("connect") == "refuse":
        return {"statusCode": 403}
    return {"statusCode": 200}


def _echo(event: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "body": event["body"], "isBase64Encoded": event["isBase64Encoded"]}


def _shout(event: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.loads(event["body"])["text"].upper()}


def _crash(event: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("route crashed")


WS_API = WebSocketApi(
    api_id="wsapi1",
    stage="dev",
    routes={
        "$connect": WebSocketRoute("connect", authorization="CUSTOM"),
        "$default": WebSocketRoute("echo", two_way=True),
        "$disconnect": WebSocketRoute("disconnect"),
        "shout": WebSocketRoute("shout", two_way=True),
        "crash": WebSocketRoute("crash"),
    },
    authorizer=Authorizer("authorize", ("route.request.querystring.sessionId",)),
)


@pytest.fixture
def invoker() -> FakeInvoker:
    return FakeInvoker(
        {
            "authorize": _authorize,
            "connect": _connect,
            "echo": _echo,
            "shout": _shout,
            "crash": _crash,
            "disconnect": lambda event: {"statusCode": 200},
            "sessions": lambda event: {
                "statusCode": 201,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"caller": event["requestContext"]["identity"]["userArn"]}),
            },
            "items": lambda event: {
                "statusCode": 200,
                "headers": {"X-Item": event["pathParameters"]["id"]},
                "multiValueHeaders": {"X-Tag": ["a", "b"]},
                "body": json.dumps(event["queryStringParameters"]),
            },
            "files": lambda event: {"statusCode": 200, "body": event["pathParameters"]["proxy"]},
            "malformed": lambda event: {"status": 200, "text": "no statusCode"},
        }
    )


@pytest.fixture
def ws_gateway(invoker: FakeInvoker) -> Iterator[WebSocketGateway]:
    gateway = WebSocketGateway(invoker, REGION, ACCOUNT)
    gateway.add_api(WS_API)
    with gateway:
        yield gateway


def _connect_client(gateway: WebSocketGateway, session: str = "good", **query: str):
    params = "&".join(f"{name}={value}" for name, value in {"sessionId": session, **query}.items())
    return websocket.create_connection(f"{gateway.url('wsapi1')}?{params}", timeout=5)


def _handshake_status(gateway: WebSocketGateway, url_suffix: str) -> int:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(gateway.url("wsapi1") + url_suffix, timeout=5)
    return refused.value.status_code


def _management(gateway: WebSocketGateway):
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=gateway.management_endpoint("wsapi1"),
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def test_allowed_handshake_runs_connect_with_the_authorizer_context(ws_gateway, invoker):
    client = _connect_client(ws_gateway, "good")
    client.close()

    (authorizer_event,) = invoker.events("authorize")
    assert authorizer_event["type"] == "REQUEST"
    assert (
        authorizer_event["methodArn"]
        == f"arn:aws:execute-api:{REGION}:{ACCOUNT}:wsapi1/dev/$connect"
    )
    assert authorizer_event["queryStringParameters"] == {"sessionId": "good"}
    assert authorizer_event["requestContext"]["routeKey"] == "$connect"
    assert authorizer_event["requestContext"]["eventType"] == "CONNECT"
    (connect_event,) = invoker.events("connect")
    context = connect_event["requestContext"]
    assert context["connectionId"] == authorizer_event["requestContext"]["connectionId"]
    assert context["authorizer"]["principalId"] == "developer"
    assert context["authorizer"]["sessionId"] == "good"
    assert context["authorizer"]["level"] == 3
    assert context["domainName"] == f"127.0.0.1:{ws_gateway.port}"


@pytest.mark.parametrize(
    ("suffix", "status", "called"),
    [
        ("?sessionId=bad", 403, {"authorize"}),  # the policy says Deny
        ("", 401, set()),  # the identity source is missing: no authorizer call
        ("?sessionId=boom", 500, {"authorize"}),  # the authorizer crashed
        ("?sessionId=good&connect=crash", 500, {"authorize", "connect"}),
        ("?sessionId=good&connect=refuse", 403, {"authorize", "connect"}),
    ],
)
def test_refused_handshakes(ws_gateway, invoker, suffix, status, called):
    assert _handshake_status(ws_gateway, suffix) == status
    time.sleep(0.1)  # a $disconnect, which must not come, would show up here
    assert {name for name, _ in invoker.calls} == called


def test_unknown_stage_is_refused(ws_gateway):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"ws://127.0.0.1:{ws_gateway.port}/wsapi1/prod", timeout=5)
    assert refused.value.status_code == 403


def test_default_route_echoes_text_and_binary(ws_gateway, invoker):
    client = _connect_client(ws_gateway)
    client.send("not json at all")
    assert client.recv() == "not json at all"
    client.send_binary(b"\x00\xffbinary")
    assert client.recv() == b"\x00\xffbinary"
    client.close()

    text_event, binary_event = invoker.events("echo")
    assert text_event["requestContext"]["routeKey"] == "$default"
    assert text_event["requestContext"]["eventType"] == "MESSAGE"
    assert text_event["requestContext"]["messageId"]
    assert text_event["requestContext"]["authorizer"]["sessionId"] == "good"
    assert binary_event["isBase64Encoded"] is True
    assert base64.b64decode(binary_event["body"]) == b"\x00\xffbinary"


def test_route_selection_expression_picks_the_named_route(ws_gateway, invoker):
    client = _connect_client(ws_gateway)
    client.send(json.dumps({"action": "shout", "text": "hello"}))
    assert client.recv() == "HELLO"
    client.send(json.dumps({"action": "unknown", "text": "hello"}))
    assert json.loads(client.recv()) == {"action": "unknown", "text": "hello"}
    client.close()
    assert invoker.events("shout")[0]["requestContext"]["routeKey"] == "shout"


def test_failing_route_sends_the_error_frame_and_the_gateway_keeps_serving(ws_gateway, invoker):
    client = _connect_client(ws_gateway)
    client.send(json.dumps({"action": "crash"}))
    frame = json.loads(client.recv())
    connection_id = invoker.events("connect")[0]["requestContext"]["connectionId"]
    assert frame["message"] == "Internal server error"
    assert frame["connectionId"] == connection_id
    assert frame["requestId"] == invoker.events("crash")[0]["requestContext"]["requestId"]
    client.send("still there?")
    assert client.recv() == "still there?"
    client.close()


def test_without_a_default_route_an_unmatched_message_gets_forbidden(invoker):
    api = WebSocketApi(api_id="wsapi1", stage="dev", routes={"shout": WebSocketRoute("shout")})
    with WebSocketGateway(invoker, REGION) as gateway:
        gateway.add_api(api)
        client = websocket.create_connection(gateway.url("wsapi1"), timeout=5)
        client.send("{}")
        assert json.loads(client.recv())["message"] == "Forbidden"
        client.close()


def test_post_to_connection_reaches_a_live_client_and_a_gone_one_raises(ws_gateway, invoker):
    management = _management(ws_gateway)
    client = _connect_client(ws_gateway)
    connection_id = invoker.events("connect")[0]["requestContext"]["connectionId"]
    _wait_until_postable(management, connection_id)

    management.post_to_connection(ConnectionId=connection_id, Data=b'{"hello": "client"}')
    assert client.recv() == '{"hello": "client"}'
    management.post_to_connection(ConnectionId=connection_id, Data=b"\x80\x81")
    assert client.recv() == b"\x80\x81"

    client.close()
    invoker.wait_for("disconnect")
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"late")
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId="NeverExisted0A=", Data=b"x")


def test_get_and_delete_connection(ws_gateway, invoker):
    management = _management(ws_gateway)
    client = _connect_client(ws_gateway)
    connection_id = invoker.events("connect")[0]["requestContext"]["connectionId"]
    _wait_until_postable(management, connection_id)

    described = management.get_connection(ConnectionId=connection_id)
    assert described["Identity"]["SourceIp"] == "127.0.0.1"
    assert described["ConnectedAt"] <= described["LastActiveAt"]

    management.delete_connection(ConnectionId=connection_id)
    opcode, _ = client.recv_data_frame()  # answers the close frame, as a live client does
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    client.shutdown()
    (disconnect,) = invoker.wait_for("disconnect")
    assert disconnect["requestContext"]["connectionId"] == connection_id
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId=connection_id)
    with pytest.raises(management.exceptions.GoneException):
        management.delete_connection(ConnectionId=connection_id)
    client.close()


def _wait_until_postable(management, connection_id: str) -> None:
    # The handshake answer reaches the client a moment before the gateway lists the connection.
    deadline = time.monotonic() + 5
    while True:
        try:
            management.get_connection(ConnectionId=connection_id)
            return
        except management.exceptions.GoneException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_clean_close_fires_disconnect_once(ws_gateway, invoker):
    client = _connect_client(ws_gateway)
    client.close()
    (event,) = invoker.wait_for("disconnect")
    time.sleep(0.2)  # a second $disconnect would show up here
    assert len(invoker.events("disconnect")) == 1
    context = event["requestContext"]
    assert context["eventType"] == "DISCONNECT"
    assert context["disconnectStatusCode"] == 1000
    assert context["authorizer"]["sessionId"] == "good"
    assert context["connectionId"] == invoker.events("connect")[0]["requestContext"]["connectionId"]


def test_killed_client_fires_disconnect_once(ws_gateway, invoker):
    client = _connect_client(ws_gateway)
    client.send("alive")
    assert client.recv() == "alive"
    client.sock.shutdown(socket.SHUT_RDWR)  # no close frame, as when the process is killed
    client.sock.close()
    (event,) = invoker.wait_for("disconnect")
    time.sleep(0.2)
    assert len(invoker.events("disconnect")) == 1
    assert event["requestContext"]["disconnectStatusCode"] == 1006


def test_stop_closes_every_connection_and_fires_disconnect(invoker):
    gateway = WebSocketGateway(invoker, REGION).start()
    gateway.add_api(WS_API)
    clients = [_connect_client(gateway) for _ in range(3)]
    closes: list[int] = []
    readers = [
        threading.Thread(target=lambda c=client: closes.append(_answer_close(c)))
        for client in clients
    ]
    for reader in readers:
        reader.start()
    gateway.stop()
    for reader in readers:
        reader.join(timeout=5)
    assert closes == [websocket.ABNF.OPCODE_CLOSE] * 3
    assert len(invoker.events("disconnect")) == 3


def _answer_close(client: websocket.WebSocket) -> int:
    opcode = client.recv_data_frame()[0]
    client.shutdown()
    return opcode


def test_removing_an_api_drops_its_connections_and_refuses_new_ones(ws_gateway, invoker):
    client = _connect_client(ws_gateway)
    url = ws_gateway.url("wsapi1")
    ws_gateway.remove_api("wsapi1")
    assert _answer_close(client) == websocket.ABNF.OPCODE_CLOSE
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"{url}?sessionId=good", timeout=5)
    assert refused.value.status_code == 403
    time.sleep(0.1)
    assert invoker.events("disconnect") == []  # the API and its routes are gone


def test_ten_clients_at_once_each_get_their_own_echo(ws_gateway):
    def talk(number: int) -> list[str]:
        client = _connect_client(ws_gateway)
        answers = []
        for turn in range(5):
            client.send(f"client {number} turn {turn}")
            answers.append(client.recv())
        client.close()
        return answers

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(talk, range(10)))
    for number, answers in enumerate(results):
        assert answers == [f"client {number} turn {turn}" for turn in range(5)]


# REST

REST_API = RestApi(
    api_id="restapi1",
    stage="dev",
    methods={
        ("/sessions", "POST"): RestMethod("sessions", authorization="AWS_IAM"),
        ("/items/{id}", "GET"): RestMethod("items"),
        ("/files/{proxy+}", "ANY"): RestMethod("files"),
        ("/crash", "GET"): RestMethod("crash"),
        ("/malformed", "GET"): RestMethod("malformed"),
    },
)


@pytest.fixture
def rest(invoker: FakeInvoker) -> Iterator[str]:
    gateway = RestGateway(invoker, REGION, {KEY: SECRET}, ACCOUNT)
    gateway.add_api(REST_API)
    with gateway:
        yield gateway.url("restapi1")


def test_signed_call_reaches_the_function_with_the_caller_identity(rest, invoker):
    auth = AWS4Auth(KEY, SECRET, REGION, "execute-api")
    answer = requests.post(f"{rest}/sessions", json={"stack": "demo"}, auth=auth, timeout=5)
    assert answer.status_code == 201
    assert answer.json() == {"caller": f"arn:aws:iam::{ACCOUNT}:user/{KEY}"}
    (event,) = invoker.events("sessions")
    assert event["httpMethod"] == "POST"
    assert event["resource"] == event["path"] == "/sessions"
    assert json.loads(event["body"]) == {"stack": "demo"}
    context = event["requestContext"]
    assert context["path"] == "/dev/sessions"
    assert context["stage"] == "dev"
    assert context["identity"]["accessKey"] == KEY
    assert context["identity"]["sourceIp"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("auth", "error_type", "message"),
    [
        (None, "MissingAuthenticationTokenException", "Missing Authentication Token"),
        (
            AWS4Auth(KEY, "wrong-secret", REGION, "execute-api"),
            "InvalidSignatureException",
            "The request signature we calculated does not match",
        ),
        (
            AWS4Auth("AKIDUNKNOWN", SECRET, REGION, "execute-api"),
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
    ],
)
def test_badly_signed_calls_get_403_and_reach_nothing(rest, invoker, auth, error_type, message):
    answer = requests.post(f"{rest}/sessions", json={}, auth=auth, timeout=5)
    assert answer.status_code == 403
    assert answer.headers["x-amzn-ErrorType"] == error_type
    assert answer.json()["message"].startswith(message)
    assert invoker.calls == []


def test_path_and_query_parameters_and_response_headers(rest, invoker):
    answer = requests.get(f"{rest}/items/42", params={"view": "full"}, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["X-Item"] == "42"
    assert answer.headers["X-Tag"] == "a, b"
    assert answer.json() == {"view": "full"}
    (event,) = invoker.events("items")
    assert event["resource"] == "/items/{id}"
    assert event["pathParameters"] == {"id": "42"}
    assert event["requestContext"]["identity"]["userArn"] is None


def test_greedy_proxy_resource_and_any_method(rest):
    answer = requests.delete(f"{rest}/files/a/b/c.txt", timeout=5)
    assert answer.status_code == 200
    assert answer.text == "a/b/c.txt"


@pytest.mark.parametrize("path", ["/nowhere", "/items", "/items/1/2"])
def test_unknown_resources_answer_missing_authentication_token(rest, path):
    answer = requests.get(f"{rest}{path}", timeout=5)
    assert answer.status_code == 403
    assert answer.json() == {"message": "Missing Authentication Token"}


def test_failing_or_malformed_integrations_give_502_and_the_gateway_keeps_serving(rest):
    for path in ("/crash", "/malformed"):
        answer = requests.get(f"{rest}{path}", timeout=5)
        assert answer.status_code == 502
        assert answer.json() == {"message": "Internal server error"}
    assert requests.get(f"{rest}/items/7", timeout=5).headers["X-Item"] == "7"

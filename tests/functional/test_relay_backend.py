"""The relay runtime's cloud side and $default against moto: request, push, answer, wait, clean up.

The WebSocket is played by a fake @connections client that hands each pushed frame to a
simulated CLI; the CLI's answers go through the real $default handler into PLLDBDebugger.
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from plldb import protocol
from plldb.resources import cloudformation_dir
from tests.functional.lambda_support import (
    create_debugger_table,
    create_sessions_table,
    shared_boto3_session,
)

REGION = "eu-west-1"
FUNCTIONS_DIR = cloudformation_dir() / "lambda_functions"
RELAY_DIR = cloudformation_dir() / "layer" / "plldb_relay"
MODULES = (
    "_common", "_protocol", "_sessions", "_answers", "websocket_default",
    "debugger_link", "runtime_proxy",
)  # fmt: skip
ROLE_ARN = "arn:aws:iam::123456789012:role/PLLDBDebuggerRole"


def _purge() -> None:
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def backend(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("SESSIONS_TABLE", "PLLDBSessions")
    monkeypatch.setenv("DEBUGGER_TABLE", "PLLDBDebugger")
    monkeypatch.setenv("PLLDB_CALLBACK_URL", "https://abc.execute-api.eu-west-1.amazonaws.com/live")
    monkeypatch.syspath_prepend(str(FUNCTIONS_DIR))
    monkeypatch.syspath_prepend(str(RELAY_DIR))
    _purge()
    with mock_aws():
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", shared_boto3_session(REGION))
        create_sessions_table(REGION)
        create_debugger_table(REGION)
        yield
    _purge()


def sessions() -> Any:
    return boto3.resource("dynamodb", region_name=REGION).Table("PLLDBSessions")


def requests_table() -> Any:
    return boto3.resource("dynamodb", region_name=REGION).Table("PLLDBDebugger")


def put_session(
    connection_id: str = "conn-A", status: str = "ACTIVE", ttl: int = 3600, **extra: Any
) -> str:
    session_id = str(uuid.uuid4())
    sessions().put_item(
        Item={
            "SessionId": session_id,
            "StackName": "target",
            "Status": status,
            "ConnectionId": connection_id,
            "TTL": int(time.time()) + ttl,
            **extra,
        }
    )
    return session_id


def gone(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "GoneException", "Message": "gone"}}, operation)


class FakeConnections:
    """@connections: each frame posted to a connection goes to that connection's CLI."""

    def __init__(self) -> None:
        self.clis: dict[str, Callable[[str], None]] = {}
        self.posted: list[tuple[str, str]] = []

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:
        self.posted.append((ConnectionId, Data.decode()))
        if ConnectionId not in self.clis:
            raise gone("PostToConnection")
        self.clis[ConnectionId](Data.decode())


def default_route(connection_id: str, body: str) -> dict[str, Any]:
    handler = importlib.import_module("websocket_default").handler
    return handler({"requestContext": {"connectionId": connection_id}, "body": body}, None)


class SimulatedCli:
    """Reassembles requests and answers each with `answer(request)`, through $default."""

    def __init__(
        self, connection_id: str, answer: Callable[[dict[str, Any]], dict[str, Any]] | None
    ) -> None:
        self.connection_id = connection_id
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.frames_in = 0
        self._replies: list[dict[str, Any]] = []
        self._senders: list[threading.Thread] = []
        self._parts = protocol.Reassembler()

    @property
    def replies(self) -> list[dict[str, Any]]:
        """$default's answers, once every reply has been sent (the relay may return first)."""
        for sender in self._senders:
            sender.join(timeout=30)
        return self._replies

    def __call__(self, frame: str) -> None:
        self.frames_in += 1
        message = protocol.parse(frame)
        if message["type"] == "part":
            message = self._parts.add(message)
            if message is None:
                return
        self.requests.append(message)
        if self.answer is not None:
            reply = self.answer(message)
            sender = threading.Thread(target=self._send, args=(reply,))
            self._senders.append(sender)
            sender.start()

    def _send(self, reply: dict[str, Any]) -> None:
        for frame in protocol.frames(reply, protocol.MAX_CLIENT_FRAME_BYTES):
            self._replies.append(default_route(self.connection_id, frame))


def make_link(session_id: str, connections: FakeConnections, **overrides: Any) -> Any:
    debugger_link = importlib.import_module("debugger_link")
    settings = debugger_link.Settings.from_environ(
        {
            "PLLDB_SESSION_ID": session_id,
            "PLLDB_SESSIONS_TABLE": "PLLDBSessions",
            "PLLDB_DEBUGGER_TABLE": "PLLDBDebugger",
            "PLLDB_CALLBACK_URL": "https://abc.execute-api.eu-west-1.amazonaws.com/live",
            "PLLDB_DEBUGGER_ROLE_ARN": ROLE_ARN,
            "AWS_LAMBDA_FUNCTION_NAME": "orders-api",
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "AKIAFUNCTIONROLE",
            "AWS_SECRET_ACCESS_KEY": "function-secret",
            "AWS_SESSION_TOKEN": "function-token",
            "TABLE_NAME": "orders",
        }
    )
    clients = debugger_link.Clients(settings)
    original_build = clients._build

    def build() -> None:
        original_build()
        clients.connections = connections

    clients._build = build
    return debugger_link.DebuggerLink(settings, clients=clients, **overrides)


def invocation(event: Any = None, seconds: float = 10.0, request_id: str | None = None) -> Any:
    runtime_proxy = importlib.import_module("runtime_proxy")
    return runtime_proxy.Invocation(
        request_id=request_id or str(uuid.uuid4()),
        deadline_ms=int((time.time() + seconds) * 1000),
        invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:orders-api",
        headers=(("Lambda-Runtime-Client-Context", '{"custom": {"k": "v"}}'),),
        body=json.dumps(event if event is not None else {"hello": "world"}).encode(),
    )


def echo(request: dict[str, Any]) -> dict[str, Any]:
    return protocol.response(request["requestId"], {"echo": request["event"]})


def test_a_live_session_gets_the_invocation_and_its_answer_reaches_lambda(backend):
    session_id = put_session()
    connections = FakeConnections()
    cli = connections.clis["conn-A"] = SimulatedCli("conn-A", echo)
    answer = make_link(session_id, connections).relay(invocation({"order": 7}))
    assert answer is not None and answer.error_type is None
    assert json.loads(answer.body) == {"echo": {"order": 7}}
    (request,) = cli.requests
    assert request["functionName"] == "orders-api"
    assert request["environment"]["TABLE_NAME"] == "orders"
    assert request["context"]["clientContext"] == {"custom": {"k": "v"}}
    assert request["context"]["invokedFunctionArn"].endswith(":function:orders-api")
    assert cli.replies == [{"statusCode": 200}]
    assert requests_table().scan()["Items"] == []  # cleaned up after the answer


def test_no_credentials_reach_the_debugger_the_table_or_the_logs(backend, caplog):
    caplog.set_level("DEBUG")
    session_id = put_session()
    connections = FakeConnections()
    stored: list[dict[str, Any]] = []

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        stored.extend(requests_table().scan()["Items"])
        return echo(request)

    connections.clis["conn-A"] = SimulatedCli("conn-A", answer)
    assert make_link(session_id, connections).relay(invocation()) is not None
    (item,) = stored
    assert set(item) == {"RequestId", "SessionId", "FunctionName", "Status", "DeadlineMs", "TTL"}
    pushed = "".join(frame for _, frame in connections.posted)
    for secret in ("AKIAFUNCTIONROLE", "function-secret", "function-token"):
        assert secret not in pushed
        assert secret not in caplog.text
        assert secret not in json.dumps(item, default=str)


def test_an_error_answer_reaches_lambda_in_its_shape(backend):
    session_id = put_session()
    connections = FakeConnections()

    def fail(request: dict[str, Any]) -> dict[str, Any]:
        trace = ['  File "app.py", line 3, in handler\n']
        return protocol.invocation_error(request["requestId"], "KeyError", "'order'", trace)

    connections.clis["conn-A"] = SimulatedCli("conn-A", fail)
    answer = make_link(session_id, connections).relay(invocation())
    assert answer.error_type == "KeyError"
    assert json.loads(answer.body) == {
        "errorMessage": "'order'",
        "errorType": "KeyError",
        "stackTrace": ['  File "app.py", line 3, in handler\n'],
    }


def test_a_1_mb_event_and_a_1_mb_answer_go_through_in_parts(backend):
    session_id = put_session()
    connections = FakeConnections()
    cli = connections.clis["conn-A"] = SimulatedCli("conn-A", echo)
    event = {"blob": [str(uuid.uuid4()) for _ in range(28000)]}  # ~1 MB, poorly compressible
    assert len(json.dumps(event)) > 1_000_000
    answer = make_link(session_id, connections).relay(invocation(event))
    assert json.loads(answer.body) == {"echo": event}
    assert cli.frames_in > 1 and all(
        len(f) <= protocol.MAX_MESSAGE_BYTES for _, f in connections.posted
    )
    assert len(cli.replies) > 1 and all(reply == {"statusCode": 200} for reply in cli.replies)
    assert requests_table().scan()["Items"] == []  # the parts are cleaned up too


@pytest.mark.parametrize(
    "session",
    [
        pytest.param(lambda: str(uuid.uuid4()), id="missing"),
        pytest.param(lambda: put_session(status="CLOSED"), id="closed"),
        pytest.param(lambda: put_session(status="PENDING"), id="pending"),
        pytest.param(lambda: put_session(ttl=-10), id="expired"),
        pytest.param(lambda: put_session(LeaseUntil=int(time.time()) - 1), id="lease-ran-out"),
    ],
)
def test_without_a_live_session_the_function_runs_its_own_handler(backend, session):
    connections = FakeConnections()
    connections.clis["conn-A"] = SimulatedCli("conn-A", echo)
    assert make_link(session(), connections).relay(invocation()) is None
    assert connections.posted == []
    assert requests_table().scan()["Items"] == []


def test_a_gone_connection_runs_the_functions_own_handler(backend):
    session_id = put_session("conn-gone")
    connections = FakeConnections()
    assert make_link(session_id, connections).relay(invocation()) is None
    assert [connection for connection, _ in connections.posted] == ["conn-gone"]
    assert requests_table().scan()["Items"] == []


def test_no_answer_before_the_deadline_is_an_error(backend):
    session_id = put_session()
    connections = FakeConnections()
    connections.clis["conn-A"] = SimulatedCli("conn-A", None)  # never answers
    waited_for = invocation(seconds=3.0)
    answer = make_link(session_id, connections).relay(waited_for)
    # returned before the invocation's own deadline: the margin leaves time to report it
    assert time.time() * 1000 < waited_for.deadline_ms
    assert answer.error_type == "plldb.NoAnswer"
    assert "did not answer" in json.loads(answer.body)["errorMessage"]


def test_a_debugger_that_leaves_while_waited_for_hands_back_to_the_function(backend, monkeypatch):
    debugger_link = importlib.import_module("debugger_link")
    monkeypatch.setattr(debugger_link, "SESSION_CHECK_SECONDS", 0.05)
    session_id = put_session()
    connections = FakeConnections()

    def leave(request: dict[str, Any]) -> dict[str, Any]:
        sessions().update_item(
            Key={"SessionId": session_id},
            UpdateExpression="SET #s = :closed REMOVE ConnectionId",
            ExpressionAttributeNames={"#s": "Status"},
            ExpressionAttributeValues={":closed": "CLOSED"},
        )
        return protocol.info("no answer")  # sent as a stray message; never an answer

    cli = SimulatedCli("conn-A", None)
    connections.clis["conn-A"] = lambda frame: (cli(frame), leave(cli.requests[-1]))
    assert make_link(session_id, connections).relay(invocation(seconds=30)) is None


def test_default_refuses_an_answer_from_another_sessions_connection(backend, monkeypatch):
    session_id = put_session("conn-A")
    put_session("conn-B")
    connections = FakeConnections()
    replies: list[str] = []
    monkeypatch.setattr(
        importlib.import_module("_sessions"), "management_api", lambda: _Recorder(replies)
    )
    request_id = str(uuid.uuid4())
    thief = SimulatedCli("conn-B", None)

    def answer_from_the_wrong_connection(request: dict[str, Any]) -> dict[str, Any]:
        thief._send(protocol.response(request["requestId"], "stolen"))
        return protocol.response(request["requestId"], "genuine")

    connections.clis["conn-A"] = SimulatedCli("conn-A", answer_from_the_wrong_connection)
    answer = make_link(session_id, connections).relay(invocation(request_id=request_id))
    assert json.loads(answer.body) == "genuine"
    assert thief.replies == [{"statusCode": 200}]  # answered with an error message, not stored
    (refusal,) = [json.loads(r) for r in replies]
    assert refusal["type"] == "error" and request_id in refusal["message"]


def test_default_refuses_a_second_answer_and_an_answer_to_an_unknown_request(backend, monkeypatch):
    put_session("conn-A")
    replies: list[str] = []
    monkeypatch.setattr(
        importlib.import_module("_sessions"), "management_api", lambda: _Recorder(replies)
    )
    assert default_route("conn-A", protocol.encode(protocol.response("nope", 1))) == {
        "statusCode": 200
    }
    assert default_route("conn-Z", protocol.encode(protocol.response("nope", 1))) == {
        "statusCode": 200
    }
    refusals = [json.loads(r)["message"] for r in replies]
    assert "not awaiting an answer" in refusals[0]
    assert "no active debugger session" in refusals[1]
    assert requests_table().scan()["Items"] == []


class _Recorder:
    def __init__(self, sink: list[str]) -> None:
        self.sink = sink

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:
        self.sink.append(Data.decode())


def test_the_function_environment_sent_is_its_own_without_credentials(backend):
    debugger_link = importlib.import_module("debugger_link")
    environment = debugger_link.function_environment(
        {
            "TABLE_NAME": "orders",
            "AWS_REGION": "eu-west-1",
            "AWS_LAMBDA_FUNCTION_NAME": "orders-api",
            "AWS_ACCESS_KEY_ID": "AKIA",
            "AWS_SECRET_ACCESS_KEY": "s",
            "AWS_SESSION_TOKEN": "t",
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
            "PLLDB_SESSION_ID": "x",
            "_X_AMZN_TRACE_ID": "Root=1",
            "LAMBDA_TASK_ROOT": "/var/task",
            "AWS_ENDPOINT_URL": "http://localhost:5000",
        }
    )
    assert environment == {
        "TABLE_NAME": "orders",
        "AWS_REGION": "eu-west-1",
        "AWS_LAMBDA_FUNCTION_NAME": "orders-api",
    }


def test_the_function_roles_credentials_go_only_to_a_debugger_that_asked(backend):
    opted = put_session()
    sessions().update_item(
        Key={"SessionId": opted},
        UpdateExpression="SET FunctionRole = :yes",
        ExpressionAttributeValues={":yes": 1},
    )
    connections = FakeConnections()
    stored: list[dict[str, Any]] = []

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        stored.extend(requests_table().scan()["Items"])  # while the request is pending
        return echo(request)

    cli = connections.clis["conn-A"] = SimulatedCli("conn-A", answer)
    assert make_link(opted, connections).relay(invocation()) is not None
    assert cli.requests[0]["credentials"] == {
        "AWS_ACCESS_KEY_ID": "AKIAFUNCTIONROLE",
        "AWS_SECRET_ACCESS_KEY": "function-secret",
        "AWS_SESSION_TOKEN": "function-token",
    }
    assert len(stored) == 1 and "function-secret" not in json.dumps(stored, default=str)


def denied() -> ClientError:
    message = "User is not authorized to perform: sts:AssumeRole"
    return ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, "AssumeRole")


def flaky_assume_role(link: Any, failures: list[Exception]) -> list[float]:
    """The link's role credentials fail with `failures` first; returns the retry sleeps."""
    clients = link._clients
    build = clients._build

    def flaky() -> None:
        if failures:
            raise failures.pop(0)
        build()

    clients._build = flaky
    slept: list[float] = []
    polls = link.sleep

    def sleep(seconds: float) -> None:
        if clients.dynamodb is None:  # not built yet: a retry of AssumeRole, not a poll
            slept.append(seconds)
        polls(seconds)

    link.sleep = sleep
    return slept


def test_assume_role_denied_while_iam_propagates_is_retried_and_relayed(backend):
    session_id = put_session()
    connections = FakeConnections()
    cli = connections.clis["conn-A"] = SimulatedCli("conn-A", echo)
    link = make_link(session_id, connections)
    slept = flaky_assume_role(link, [denied(), denied(), denied()])
    answer = link.relay(invocation({"order": 8}, seconds=30))
    assert answer is not None and json.loads(answer.body) == {"echo": {"order": 8}}
    assert slept == [0.1, 0.2, 0.4]  # backoff, doubling
    assert len(cli.requests) == 1


def test_a_denial_that_outlasts_half_the_budget_runs_the_functions_own_handler(backend):
    session_id = put_session()
    connections = FakeConnections()
    connections.clis["conn-A"] = SimulatedCli("conn-A", echo)
    link = make_link(session_id, connections)
    failures = [denied() for _ in range(50)]
    slept = flaky_assume_role(link, failures)
    seconds = 3.0
    assert link.relay(invocation(seconds=seconds)) is None
    debugger_link = importlib.import_module("debugger_link")
    share = (seconds - debugger_link.DEADLINE_MARGIN_SECONDS) * debugger_link.ASSUME_RETRY_SHARE
    assert slept and sum(slept) <= share
    assert max(slept) <= debugger_link.ASSUME_MAX_RETRY_SECONDS
    assert len(failures) == 50 - len(slept) - 1  # one try per sleep, and the last one


def test_other_credential_errors_are_not_retried(backend):
    session_id = put_session()
    link = make_link(session_id, FakeConnections())
    expired = ClientError({"Error": {"Code": "ExpiredToken", "Message": "x"}}, "AssumeRole")
    slept = flaky_assume_role(link, [expired])
    assert link.relay(invocation()) is None
    assert slept == []

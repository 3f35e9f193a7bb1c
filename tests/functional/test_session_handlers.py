"""The session functions (restapi, authorizer, $connect, $disconnect, $default) against moto."""

from __future__ import annotations

import base64
import importlib
import json
import logging
import sys
import time
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from plldb.local.iam import simulation
from plldb.resources import cloudformation_dir
from tests.functional.lambda_support import create_sessions_table, shared_boto3_session

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
TABLE = "PLLDBSessions"
CALLBACK_URL = f"https://abc123.execute-api.{REGION}.amazonaws.com/live"
METHOD_ARN = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/live/$connect"
STACK = "target-app"
# The caller API Gateway authenticated; the stacks of most tests have no function to check.
CALLER = f"arn:aws:iam::{ACCOUNT}:user/developer"
FUNCTIONS_DIR = cloudformation_dir() / "lambda_functions"
# Every module the tests import from FUNCTIONS_DIR: purged so each test gets fresh client caches.
MODULES = (
    "_caller_rights",
    "_common",
    "_instrumentation",
    "_stack_functions",
    "_stack_lock",
    "_protocol",
    "_sessions",
    "restapi",
    "websocket_authorize",
    "websocket_connect",
    "websocket_default",
    "websocket_disconnect",
    "sweeper",
)


def _purge_modules() -> None:
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def cloud(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto with PLLDBSessions built from template.yaml and the functions' environment set."""
    from moto import mock_aws

    # Lambda sets both; botocore reads only AWS_DEFAULT_REGION.
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("SESSIONS_TABLE", TABLE)
    monkeypatch.setenv("SESSION_TTL_SECONDS", "3600")
    monkeypatch.setenv("PLLDB_CALLBACK_URL", CALLBACK_URL)
    monkeypatch.setenv("DEBUGGER_TABLE", "PLLDBDebugger")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.syspath_prepend(str(FUNCTIONS_DIR))
    _purge_modules()
    simulation.install()  # IAM's SimulatePrincipalPolicy, which moto lacks
    try:
        with mock_aws():
            monkeypatch.setattr(boto3, "DEFAULT_SESSION", shared_boto3_session(REGION))
            create_sessions_table(REGION)
            yield
    finally:
        simulation.uninstall()
    _purge_modules()


def load(name: str) -> ModuleType:
    return importlib.import_module(name)


def table() -> Any:
    return boto3.resource("dynamodb", region_name=REGION).Table(TABLE)


def item(session_id: str) -> dict[str, Any]:
    return table().get_item(Key={"SessionId": session_id}, ConsistentRead=True)["Item"]


def put_session(status: str, *, stack: str = STACK, ttl: int | None = None, **extra: Any) -> str:
    session_id = str(uuid.uuid4())
    now = int(time.time())
    table().put_item(
        Item={
            "SessionId": session_id,
            "StackName": stack,
            "TTL": now + 3600 if ttl is None else ttl,
            "Status": status,
            "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
            **extra,
        }
    )
    return session_id


def create_stack(name: str = STACK) -> str:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    return cloudformation.create_stack(StackName=name, TemplateBody=body)["StackId"]


def connections() -> Any:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    return apigatewaymanagementapi_backends[ACCOUNT][REGION].connections


def gone_error(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "GoneException", "Message": "gone"}}, operation)


class GoneManagementApi:
    """moto's management API never answers Gone (it invents a connection for any id)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def delete_connection(self, ConnectionId: str) -> None:
        self.calls.append(("delete_connection", ConnectionId))
        raise gone_error("DeleteConnection")

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:
        self.calls.append(("post_to_connection", ConnectionId))
        raise gone_error("PostToConnection")


# ---------------------------------------------------------------- restapi


def post_sessions(
    payload: Any, *, raw: str | None = None, caller: str = CALLER, **overrides: Any
) -> dict[str, Any]:
    event = {
        "resource": "/sessions",
        "path": "/sessions",
        "httpMethod": "POST",
        "headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/...", "Host": "x"},
        "requestContext": {
            "accountId": ACCOUNT,
            "identity": {"accessKey": "AKIDSECRETISH", "sourceIp": "1.2.3.4", "userArn": caller},
        },
        "body": raw if raw is not None else json.dumps(payload),
        "isBase64Encoded": False,
        **overrides,
    }
    response = load("restapi").handler(event, None)
    assert response["headers"]["Content-Type"] == "application/json"
    response["json"] = json.loads(response["body"])
    return response


def test_post_sessions_creates_a_pending_session(cloud, caplog):
    caplog.set_level(logging.DEBUG, logger="restapi")  # botocore's own DEBUG logs hold the id
    create_stack()
    before = int(time.time())
    response = post_sessions({"stackName": STACK})
    assert response["statusCode"] == 201
    session_id = response["json"]["sessionId"]
    assert str(uuid.UUID(session_id)) == session_id
    stored = item(session_id)
    assert stored["StackName"] == STACK
    assert stored["Status"] == "PENDING"
    assert abs(int(stored["TTL"]) - (before + 3600)) <= 1
    assert response["json"]["expiresAt"] == int(stored["TTL"])
    created = time.mktime(time.strptime(stored["CreatedAt"], "%Y-%m-%dT%H:%M:%SZ"))
    assert stored["CreatedAt"].endswith("Z") and abs(created - time.mktime(time.gmtime())) <= 2
    assert "ConnectionId" not in stored
    assert any(session_id[:8] in r.getMessage() and STACK in r.getMessage() for r in caplog.records)
    logged = caplog.text
    assert session_id not in logged
    assert "AKIDSECRETISH" not in logged and "Credential=AKID" not in logged


def test_post_sessions_reads_a_base64_body_and_accepts_force_false(cloud):
    create_stack()
    raw = base64.b64encode(json.dumps({"stackName": STACK, "force": False}).encode()).decode()
    response = post_sessions(None, raw=raw, isBase64Encoded=True)
    assert response["statusCode"] == 201


def test_post_sessions_accepts_a_stack_arn_and_stores_the_stack_name(cloud):
    arn = create_stack()
    response = post_sessions({"stackName": arn})
    assert response["statusCode"] == 201
    assert item(response["json"]["sessionId"])["StackName"] == STACK


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("", "JSON object"),
        ('["target-app"]', "JSON object"),
        ("{}", "stackName"),
        ('{"stackName": ""}', "stackName"),
        ('{"stackName": 42}', "stackName"),
        ('{"stackName": null}', "stackName"),
        ('{"stackName": "1starts-with-a-digit"}', "stackName"),
        ('{"stackName": "has_underscore"}', "stackName"),
        ('{"stackName": "has space"}', "stackName"),
        (json.dumps({"stackName": "a" * 129}), "stackName"),
        ('{"stackName": "arn:aws:s3:::bucket"}', "stackName"),
        ('{"stackName": "target-app", "force": "yes"}', "force"),
        ('{"stackName": "target-app", "force": 1}', "force"),
    ],
)
def test_post_sessions_rejects_a_bad_body_with_400(cloud, raw, needle):
    response = post_sessions(None, raw=raw)
    assert response["statusCode"] == 400
    assert needle in response["json"]["message"]
    assert not table().scan()["Items"]


def test_post_sessions_without_a_body_is_400(cloud):
    response = post_sessions(None, body=None)
    assert response["statusCode"] == 400


def test_post_sessions_for_a_missing_stack_is_404(cloud):
    response = post_sessions({"stackName": "no-such-stack"})
    assert response["statusCode"] == 404
    assert response["json"] == {"message": "Stack no-such-stack does not exist"}
    assert not table().scan()["Items"]


def test_post_sessions_for_a_deleted_stack_arn_is_404(cloud):
    arn = create_stack()
    boto3.client("cloudformation", region_name=REGION).delete_stack(StackName=arn)
    response = post_sessions({"stackName": arn})
    assert response["statusCode"] == 404
    assert response["json"] == {"message": f"Stack {arn} does not exist"}


@pytest.mark.parametrize("path", ["/", "/sessions/abc", "/other"])
def test_other_paths_are_404(cloud, path):
    response = post_sessions({"stackName": STACK}, resource=path, path=path)
    assert response["statusCode"] == 404
    assert response["json"] == {"message": "Not found"}


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_other_methods_on_sessions_are_405(cloud, method):
    response = post_sessions({"stackName": STACK}, httpMethod=method)
    assert response["statusCode"] == 405
    assert response["json"] == {"message": "Method not allowed"}
    assert response["headers"]["Allow"] == "GET, POST"


def test_the_path_is_used_when_the_event_has_no_resource(cloud):
    create_stack()
    response = post_sessions({"stackName": STACK}, resource=None)
    assert response["statusCode"] == 201


def test_a_second_debugger_on_the_same_stack_is_409(cloud):
    create_stack()
    active = put_session("ACTIVE", ConnectionId="conn-old", ActivatedAt="2026-01-02T03:04:05Z")
    response = post_sessions({"stackName": STACK})
    assert response["statusCode"] == 409
    assert response["json"] == {
        "message": f"Stack {STACK} already has a debugger attached since 2026-01-02T03:04:05Z",
        "activeSince": "2026-01-02T03:04:05Z",
    }
    assert item(active)["Status"] == "ACTIVE"
    assert len(table().scan()["Items"]) == 1


def test_expired_closed_pending_and_other_stacks_sessions_do_not_block(cloud):
    create_stack()
    put_session("ACTIVE", ttl=int(time.time()) - 5, ConnectionId="conn-expired")
    put_session("CLOSED")
    put_session("PENDING")
    put_session("ACTIVE", stack="another-stack", ConnectionId="conn-other")
    assert post_sessions({"stackName": STACK})["statusCode"] == 201


def test_force_hangs_up_and_closes_the_active_session(cloud, caplog):
    caplog.set_level(logging.INFO)
    create_stack()
    connections()["conn-old"].data = b"hello"  # moto's backend then knows the connection
    active = put_session("ACTIVE", ConnectionId="conn-old", ActivatedAt="2026-01-02T03:04:05Z")
    response = post_sessions({"stackName": STACK, "force": True})
    assert response["statusCode"] == 201
    assert "conn-old" not in connections()  # moto's delete_connection removed it
    old = item(active)
    assert old["Status"] == "CLOSED"
    assert "ConnectionId" not in old
    new = item(response["json"]["sessionId"])
    assert new["Status"] == "PENDING"
    assert any(
        "taken over" in r.getMessage() and active[:8] in r.getMessage() for r in caplog.records
    )
    assert active not in caplog.text


def test_force_ignores_a_connection_that_is_already_gone(cloud, monkeypatch):
    create_stack()
    active = put_session("ACTIVE", ConnectionId="conn-gone")
    fake = GoneManagementApi()
    monkeypatch.setattr(load("_sessions"), "management_api", lambda: fake)
    response = post_sessions({"stackName": STACK, "force": True})
    assert response["statusCode"] == 201
    assert fake.calls == [("post_to_connection", "conn-gone"), ("delete_connection", "conn-gone")]
    assert item(active)["Status"] == "CLOSED"


def test_an_unexpected_aws_error_is_500(cloud, monkeypatch, caplog):
    create_stack()
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName=TABLE)
    response = post_sessions({"stackName": STACK})
    assert response["statusCode"] == 500
    assert response["json"] == {"message": "Internal error"}
    assert any(r.exc_info for r in caplog.records)


# ---------------------------------------------------------------- authorizer


def authorize(session_id: str | None, connection_id: str = "conn-1") -> dict[str, Any]:
    event = {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "queryStringParameters": None if session_id is None else {"sessionId": session_id},
        "requestContext": {"connectionId": connection_id, "routeKey": "$connect"},
    }
    return load("websocket_authorize").handler(event, None)


def effect(policy: dict[str, Any]) -> str:
    statement = policy["policyDocument"]["Statement"][0]
    assert statement["Action"] == "execute-api:Invoke"
    assert statement["Resource"] == METHOD_ARN
    return statement["Effect"]


def test_the_authorizer_allows_a_pending_session_and_activates_it(cloud, caplog):
    caplog.set_level(logging.INFO)
    session_id = put_session("PENDING")
    policy = authorize(session_id, "conn-A")
    assert effect(policy) == "Allow"
    assert policy["principalId"] == STACK
    assert policy["context"] == {"sessionId": session_id, "stackName": STACK}
    assert policy["policyDocument"]["Version"] == "2012-10-17"
    stored = item(session_id)
    assert stored["Status"] == "ACTIVE"
    assert stored["ConnectionId"] == "conn-A"
    assert stored["ActivatedAt"].endswith("Z")
    assert int(stored["TTL"]) >= time.time() + 7100  # lives as long as the connection may
    assert session_id not in caplog.text and session_id[:8] in caplog.text


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda: str(uuid.uuid4()), "unknown"),
        (lambda: "not-a-uuid", "unknown"),
        (lambda: put_session("PENDING", ttl=int(time.time()) - 1), "expired"),
        (lambda: put_session("CLOSED"), "status CLOSED"),
        (lambda: put_session("ACTIVE", ConnectionId="conn-0"), "status ACTIVE"),
        (lambda: None, "no sessionId"),
        (lambda: "", "no sessionId"),
    ],
    ids=["unknown", "malformed", "expired", "closed", "active", "missing", "empty"],
)
def test_the_authorizer_denies(cloud, caplog, setup, reason):
    caplog.set_level(logging.INFO)
    session_id = setup()
    policy = authorize(session_id)
    assert effect(policy) == "Deny"
    assert "context" not in policy
    assert reason in caplog.text
    if session_id:
        assert session_id not in caplog.text or len(session_id) <= 8


def test_a_session_id_works_once(cloud):
    session_id = put_session("PENDING")
    assert effect(authorize(session_id, "conn-A")) == "Allow"
    assert effect(authorize(session_id, "conn-B")) == "Deny"
    assert item(session_id)["ConnectionId"] == "conn-A"


def test_two_handshakes_racing_for_one_session_get_one_allow(cloud, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    session_id = put_session("PENDING")
    sessions = load("_sessions")
    read = sessions.get_session
    policies: dict[str, dict[str, Any]] = {}

    def read_then_let_the_rival_through(wanted: str) -> Any:
        # Both handshakes have read PENDING before either writes: the condition must decide.
        seen = read(wanted)
        monkeypatch.setattr(sessions, "get_session", read)
        policies["B"] = authorize(session_id, "conn-B")
        return seen

    monkeypatch.setattr(sessions, "get_session", read_then_let_the_rival_through)
    policies["A"] = authorize(session_id, "conn-A")
    assert effect(policies["B"]) == "Allow"
    assert effect(policies["A"]) == "Deny"
    assert item(session_id)["ConnectionId"] == "conn-B"
    assert "race lost" in caplog.text


def test_the_authorizer_fails_closed_when_the_table_is_unreachable(cloud, caplog):
    session_id = put_session("PENDING")
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName=TABLE)
    assert effect(authorize(session_id)) == "Deny"
    assert any(r.exc_info for r in caplog.records)


# ---------------------------------------------------------------- $connect / $disconnect


def test_connect_logs_the_stack_and_answers_200(cloud, caplog):
    caplog.set_level(logging.INFO)
    session_id = str(uuid.uuid4())
    event = {
        "requestContext": {
            "connectionId": "conn-A",
            "routeKey": "$connect",
            "authorizer": {"sessionId": session_id, "stackName": STACK, "principalId": STACK},
        }
    }
    assert load("websocket_connect").handler(event, None) == {"statusCode": 200}
    assert STACK in caplog.text and session_id[:8] in caplog.text
    assert session_id not in caplog.text


def disconnect(connection_id: str) -> dict[str, Any]:
    event = {"requestContext": {"connectionId": connection_id, "routeKey": "$disconnect"}}
    return load("websocket_disconnect").handler(event, None)


def test_disconnect_closes_the_session_of_the_connection(cloud, caplog):
    caplog.set_level(logging.INFO)
    session_id = put_session("PENDING")
    assert effect(authorize(session_id, "conn-A")) == "Allow"
    other = put_session("ACTIVE", stack="another-stack", ConnectionId="conn-B")
    assert disconnect("conn-A") == {"statusCode": 200}
    stored = item(session_id)
    assert stored["Status"] == "CLOSED"
    assert "ConnectionId" not in stored
    assert item(other)["Status"] == "ACTIVE"
    assert session_id[:8] in caplog.text and session_id not in caplog.text


def test_disconnect_of_an_unknown_connection_is_logged(cloud, caplog):
    caplog.set_level(logging.INFO)
    assert disconnect("conn-unknown") == {"statusCode": 200}
    assert "conn-unknown" in caplog.text


def test_disconnect_leaves_a_session_another_connection_took(cloud, monkeypatch):
    session_id = put_session("ACTIVE", ConnectionId="conn-A")
    sessions = load("_sessions")
    found = sessions.sessions_of_connection

    def stale_index(connection_id: str) -> Any:
        # The GSI is eventually consistent: it may still list a session that moved on.
        listed = found(connection_id)
        table().update_item(
            Key={"SessionId": session_id},
            UpdateExpression="SET ConnectionId = :c",
            ExpressionAttributeValues={":c": "conn-B"},
        )
        return listed

    monkeypatch.setattr(sessions, "sessions_of_connection", stale_index)
    assert disconnect("conn-A") == {"statusCode": 200}
    stored = item(session_id)
    assert stored["Status"] == "ACTIVE" and stored["ConnectionId"] == "conn-B"


# ---------------------------------------------------------------- $default


def send(body: str | None, connection_id: str = "conn-A", **extra: Any) -> dict[str, Any]:
    event = {
        "requestContext": {"connectionId": connection_id, "routeKey": "$default"},
        "body": body,
        "isBase64Encoded": False,
        **extra,
    }
    return load("websocket_default").handler(event, None)


def posted(connection_id: str) -> list[dict[str, Any]]:
    """What the function posted to a connection (moto appends every message's bytes)."""
    if connection_id not in connections():
        return []
    data = connections()[connection_id].data.decode()
    decoder, messages, at = json.JSONDecoder(), [], 0
    while at < len(data):
        message, at = decoder.raw_decode(data, at)
        messages.append(message)
    return messages


def test_a_keepalive_is_a_heartbeat_that_extends_the_lease(cloud, monkeypatch):
    monkeypatch.setenv("SESSION_LEASE_SECONDS", "40")
    session_id = put_session("ACTIVE", ConnectionId="conn-A", LeaseUntil=int(time.time()) - 5)
    assert send('{"type": "keepalive"}') == {"statusCode": 200}
    assert posted("conn-A") == []
    lease = int(table().get_item(Key={"SessionId": session_id})["Item"]["LeaseUntil"])
    assert time.time() + 30 < lease <= time.time() + 40


def test_a_heartbeat_from_a_connection_without_a_session_ends_the_cli(cloud):
    put_session("CLOSED")
    assert send('{"type": "keepalive"}', "conn-A") == {"statusCode": 200}
    (notice,) = posted("conn-A")
    assert notice["type"] == "session_closed"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("{not json", "not JSON"),
        (None, "not JSON"),
        ('["keepalive"]', "JSON object"),
        ('{"type": "teleport"}', "unknown message type 'teleport'"),
        ('{"type": "info", "message": "hi"}', "unexpected message type 'info'"),
        ('{"type": "error", "message": "oops"}', "unexpected message type 'error'"),
        ('{"type": "info"}', "needs a string 'message'"),
    ],
)
def test_a_bad_message_is_answered_with_an_error_to_the_sender(cloud, body, needle):
    assert send(body, "conn-A") == {"statusCode": 200}
    messages = posted("conn-A")
    assert len(messages) == 1
    assert messages[0]["type"] == "error"
    assert needle in messages[0]["message"]
    assert posted("conn-B") == []


def test_a_base64_message_is_decoded(cloud):
    put_session("ACTIVE", ConnectionId="conn-A")
    body = base64.b64encode(b'{"type": "keepalive"}').decode()
    assert send(body, isBase64Encoded=True) == {"statusCode": 200}
    assert posted("conn-A") == []


def test_an_error_for_a_sender_that_is_gone_is_logged(cloud, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    fake = GoneManagementApi()
    monkeypatch.setattr(load("_sessions"), "management_api", lambda: fake)
    assert send("{not json", "conn-gone") == {"statusCode": 200}
    assert fake.calls == [("post_to_connection", "conn-gone")]
    assert "gone" in caplog.text


class _RecordingLambda:
    def __init__(self) -> None:
        self.invocations: list[dict[str, Any]] = []

    def invoke(self, **arguments: Any) -> dict[str, Any]:
        self.invocations.append(arguments)
        return {"StatusCode": 202}


def test_force_restores_the_taken_over_sessions_functions(cloud, monkeypatch):
    create_stack()
    monkeypatch.setenv("PLLDB_INSTRUMENTATION_FUNCTION", "plldb-instrumentation")
    recording = _RecordingLambda()
    monkeypatch.setattr(load("_sessions"), "lambda_client", lambda: recording)
    active = put_session("ACTIVE", ConnectionId="conn-old")
    assert post_sessions({"stackName": STACK, "force": True})["statusCode"] == 201
    (call,) = recording.invocations
    assert call["FunctionName"] == "plldb-instrumentation"
    assert call["InvocationType"] == "Event"
    assert json.loads(call["Payload"]) == {
        "action": "restore",
        "sessionId": active,
        "stackName": STACK,
    }


def test_post_sessions_keeps_the_function_patterns_for_instrumentation(cloud):
    create_stack()
    response = post_sessions({"stackName": STACK, "functions": ["orders-*", "Reports"]})
    assert response["statusCode"] == 201
    stored = item(response["json"]["sessionId"])
    assert json.loads(stored["Functions"]) == ["orders-*", "Reports"]
    plain = post_sessions({"stackName": STACK, "force": True})
    assert "Functions" not in item(plain["json"]["sessionId"])


@pytest.mark.parametrize(
    "functions", ["orders-*", [""], [1], ["x" * 300], [f"f{n}" for n in range(21)]]
)
def test_post_sessions_refuses_malformed_function_patterns(cloud, functions):
    create_stack()
    response = post_sessions({"stackName": STACK, "functions": functions})
    assert response["statusCode"] == 400
    assert "functions must be a list" in response["json"]["message"]


def test_post_sessions_keeps_the_function_role_opt_in(cloud):
    create_stack()
    opted = post_sessions({"stackName": STACK, "functionRole": True})
    assert opted["statusCode"] == 201
    assert item(opted["json"]["sessionId"])["FunctionRole"] == 1
    plain = post_sessions({"stackName": STACK, "force": True, "functionRole": False})
    assert "FunctionRole" not in item(plain["json"]["sessionId"])
    refused = post_sessions({"stackName": STACK, "functionRole": "yes"})
    assert refused["statusCode"] == 400
    assert refused["json"]["message"] == "functionRole must be true or false"


# ---------------------------------------------------------------- one debugger per stack


def lock_item(stack: str = STACK) -> dict[str, Any] | None:
    key = {"SessionId": f"StackLock#{stack}"}
    return table().get_item(Key=key, ConsistentRead=True).get("Item")


def test_a_pending_session_cannot_connect_beside_an_attached_one(cloud, caplog):
    caplog.set_level(logging.INFO)
    create_stack()
    first = post_sessions({"stackName": STACK})["json"]["sessionId"]
    second = post_sessions({"stackName": STACK})["json"]["sessionId"]  # both PENDING: 201 each
    assert effect(authorize(first, "conn-A")) == "Allow"
    assert effect(authorize(second, "conn-B")) == "Deny"
    assert item(second)["Status"] == "PENDING"
    assert "held by another debugger" in caplog.text
    assert lock_item()["Holder"] == first


def test_the_lock_item_stays_out_of_both_indexes(cloud):
    session_id = put_session("PENDING")
    assert effect(authorize(session_id, "conn-A")) == "Allow"
    sessions = load("_sessions")
    assert [s["SessionId"] for s in sessions.active_sessions(STACK, int(time.time()))] == [
        session_id
    ]
    assert [s["SessionId"] for s in sessions.sessions_of_connection("conn-A")] == [session_id]
    assert lock_item() is not None


def test_disconnect_releases_the_stack_for_the_next_debugger(cloud):
    first, second = put_session("PENDING"), put_session("PENDING")
    assert effect(authorize(first, "conn-A")) == "Allow"
    assert disconnect("conn-A") == {"statusCode": 200}
    assert lock_item() is None
    assert effect(authorize(second, "conn-B")) == "Allow"


def test_a_lock_left_by_a_closed_or_expired_holder_does_not_block(cloud):
    closed = put_session("CLOSED")
    table().put_item(
        Item={"SessionId": f"StackLock#{STACK}", "Holder": closed, "TTL": int(time.time()) + 60}
    )
    waiting = put_session("PENDING")
    assert effect(authorize(waiting, "conn-B")) == "Allow"
    assert lock_item()["Holder"] == waiting


def test_two_sessions_of_one_stack_racing_get_one_allow(cloud, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    first, second = put_session("PENDING"), put_session("PENDING")
    lock = load("_stack_lock")
    read = lock.read_lock
    policies: dict[str, dict[str, Any]] = {}

    def read_then_let_the_rival_through(stack: str) -> Any:
        seen = read(stack)  # both read a free stack before either writes
        monkeypatch.setattr(lock, "read_lock", read)
        policies["second"] = authorize(second, "conn-B")
        return seen

    monkeypatch.setattr(lock, "read_lock", read_then_let_the_rival_through)
    policies["first"] = authorize(first, "conn-A")
    assert effect(policies["second"]) == "Allow"
    assert effect(policies["first"]) == "Deny"
    assert item(first)["Status"] == "PENDING"  # the transaction left it untouched
    assert lock_item()["Holder"] == second


def test_force_hands_the_stack_to_the_new_session_only(cloud):
    create_stack()
    connections()["conn-A"].data = b""
    attached = post_sessions({"stackName": STACK})["json"]["sessionId"]
    waiting = post_sessions({"stackName": STACK})["json"]["sessionId"]
    assert effect(authorize(attached, "conn-A")) == "Allow"
    forced = post_sessions({"stackName": STACK, "force": True})
    assert forced["statusCode"] == 201
    new = forced["json"]["sessionId"]
    assert item(attached)["Status"] == "CLOSED"
    assert effect(authorize(waiting, "conn-W")) == "Deny"  # created before the takeover
    assert effect(authorize(new, "conn-N")) == "Allow"
    assert lock_item()["Holder"] == new


def test_force_tells_the_displaced_debugger_before_hanging_up(cloud, monkeypatch):
    create_stack()
    attached = put_session("PENDING")
    assert effect(authorize(attached, "conn-A")) == "Allow"
    # The index has not caught up yet: only the lock names the attached session.
    monkeypatch.setattr(load("_sessions"), "active_sessions", lambda stack, at: [])
    fake = GoneManagementApi()
    monkeypatch.setattr(load("_sessions"), "management_api", lambda: fake)
    assert post_sessions({"stackName": STACK})["statusCode"] == 409
    assert post_sessions({"stackName": STACK, "force": True})["statusCode"] == 201
    assert fake.calls == [("post_to_connection", "conn-A"), ("delete_connection", "conn-A")]
    assert item(attached)["Status"] == "CLOSED"


def test_a_pending_takeover_makes_a_plain_attach_409(cloud):
    create_stack()
    assert post_sessions({"stackName": STACK, "force": True})["statusCode"] == 201
    response = post_sessions({"stackName": STACK})
    assert response["statusCode"] == 409
    assert response["json"]["message"] == (
        f"Stack {STACK} is being taken over by another plldb attach (--force)"
    )


# ---------------------------------------------------------------- sweeper


class _Connections:
    """The management API as the sweeper sees it: some connections alive, the others gone."""

    def __init__(self, alive: set[str]) -> None:
        self.alive = alive
        self.deleted: list[str] = []

    def get_connection(self, ConnectionId: str) -> dict[str, Any]:
        if ConnectionId not in self.alive:
            raise gone_error("GetConnection")
        return {"ConnectedAt": "2026-01-01T00:00:00Z"}

    def delete_connection(self, ConnectionId: str) -> None:
        self.deleted.append(ConnectionId)
        if ConnectionId not in self.alive:
            raise gone_error("DeleteConnection")


@pytest.fixture
def sweep(cloud, monkeypatch):
    monkeypatch.setenv("PLLDB_INSTRUMENTATION_FUNCTION", "plldb-instrumentation")
    recording, connections = _RecordingLambda(), _Connections({"conn-alive", "conn-silent"})
    monkeypatch.setattr(load("_sessions"), "lambda_client", lambda: recording)
    monkeypatch.setattr(load("_sessions"), "management_api", lambda: connections)

    def run() -> dict[str, Any]:
        return load("sweeper").handler({"detail-type": "Scheduled Event"}, None)

    run.restored = lambda: [json.loads(c["Payload"])["sessionId"] for c in recording.invocations]
    run.connections = connections
    return run


def test_the_sweeper_ends_expired_and_gone_sessions_and_spares_live_ones(sweep):
    now = int(time.time())
    live = put_session("ACTIVE", ConnectionId="conn-alive", LeaseUntil=now + 30)
    silent = put_session("ACTIVE", ConnectionId="conn-silent", LeaseUntil=now - 1)
    gone = put_session("ACTIVE", ConnectionId="conn-gone", LeaseUntil=now + 30)
    closed = put_session("CLOSED", LeaseUntil=now - 100)
    result = sweep()
    assert sorted(result["swept"]) == sorted([silent, gone]) and result["failed"] == []
    assert sorted(sweep.restored()) == sorted([silent, gone])
    status = {i["SessionId"]: i["Status"] for i in table().scan(ConsistentRead=True)["Items"]}
    assert status == {live: "ACTIVE", silent: "CLOSED", gone: "CLOSED", closed: "CLOSED"}
    assert "conn-silent" in sweep.connections.deleted  # a silent CLI is hung up
    # nothing is restored twice: the sessions it closed count as restore just started
    assert sweep() == {"swept": [], "retried": [], "failed": []}
    assert all(int(item(i)["RestoreStartedAt"]) >= now for i in (silent, gone))


def test_the_sweeper_starts_again_the_restore_of_a_closed_session_left_instrumented(sweep):
    """A restore that failed (or never started) leaves CLOSED sessions recording functions."""
    now = int(time.time())
    recorded = {"my-app-orders": {"Role": "arn:aws:iam::123456789012:role/orders", "Timeout": 3}}
    stale = put_session("CLOSED", Instrumented=recorded, RestoreStartedAt=now - 1000)
    unstamped = put_session("CLOSED", Instrumented=recorded)  # closed before stamps existed
    recent = put_session("CLOSED", Instrumented=recorded, RestoreStartedAt=now - 5)
    restored = put_session("CLOSED", Instrumented={}, RestoreStartedAt=now - 1000)
    result = sweep()
    assert sorted(result["retried"]) == sorted([stale, unstamped]) and result["failed"] == []
    assert sorted(sweep.restored()) == sorted([stale, unstamped])
    assert int(item(stale)["RestoreStartedAt"]) >= now
    assert int(item(recent)["RestoreStartedAt"]) == now - 5
    assert "RestoreStartedAt" in item(unstamped) and restored not in sweep.restored()
    # The next sweeps leave them to the restore just started, until it had time to finish.
    assert sweep()["retried"] == []
    assert len(sweep.restored()) == 2


def test_a_heartbeat_that_lands_before_the_sweepers_write_keeps_the_session(sweep, monkeypatch):
    """The sweeper read an expired lease; the CLI's heartbeat extends it before the close."""
    now = int(time.time())
    session_id = put_session("ACTIVE", ConnectionId="conn-silent", LeaseUntil=now - 1)
    sessions = load("_sessions")
    read = sessions.active_items

    def read_then_heartbeat() -> list[dict[str, Any]]:
        items = read()
        assert sessions.extend_lease(session_id, "conn-silent", sessions.now())
        return items

    monkeypatch.setattr(sessions, "active_items", read_then_heartbeat)
    assert sweep()["swept"] == []
    assert sweep.restored() == []
    assert table().get_item(Key={"SessionId": session_id})["Item"]["Status"] == "ACTIVE"


# ---------------------------------------------------------------- POST /sessions/detach


def post_detach(payload: Any) -> dict[str, Any]:
    return post_sessions(payload, resource="/sessions/detach", path="/sessions/detach")


def test_detach_closes_the_stacks_sessions_and_restores_what_they_record(cloud, monkeypatch):
    create_stack()
    monkeypatch.setenv("PLLDB_INSTRUMENTATION_FUNCTION", "plldb-instrumentation")
    recording = _RecordingLambda()
    monkeypatch.setattr(load("_sessions"), "lambda_client", lambda: recording)
    active = put_session("ACTIVE", ConnectionId="conn-old")
    pending = put_session("PENDING")
    left = put_session("CLOSED", Instrumented={"f": {"Timeout": 3}})
    done = put_session("CLOSED", Instrumented={})
    response = post_detach({"stackName": STACK})
    assert response["statusCode"] == 200
    assert sorted(response["json"]["closed"]) == sorted([active[:8], pending[:8]])
    assert sorted(response["json"]["restoring"]) == sorted([active[:8], left[:8]])
    restored = [json.loads(call["Payload"])["sessionId"] for call in recording.invocations]
    assert sorted(restored) == sorted([active, left]) and done not in restored
    status = {i["SessionId"]: i["Status"] for i in table().scan()["Items"]}
    assert set(status.values()) == {"CLOSED"}


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"stackName": 7}, 400),
        ({"stackName": STACK, "sessionId": "nope"}, 400),
        ({"stackName": STACK, "sessionId": "00000000-0000-0000-0000-000000000000"}, 404),
        ({"stackName": STACK, "sessionId": "0000"}, 400),
        ({"stackName": "no-such-stack"}, 404),
    ],
)
def test_detach_refuses_what_it_cannot_act_on(cloud, payload, status):
    create_stack()
    assert post_detach(payload)["statusCode"] == status


# ---------------------------------------------------------------- GET /sessions


def get_status(stack: str | None = None) -> dict[str, Any]:
    query = {"stackName": stack} if stack else None
    return post_sessions(None, raw="", httpMethod="GET", queryStringParameters=query)


def test_status_shows_open_and_left_instrumented_sessions_with_their_grants(cloud):
    role = "arn:aws:iam::123456789012:role/app"
    now = int(time.time())
    active = put_session(
        "ACTIVE",
        ConnectionId="c",
        CreatedBy="arn:aws:iam::123456789012:user/dev",
        LeaseUntil=now + 30,
        Instrumented={"app-fn": {"Role": role, "Timeout": 3}},
    )
    left = put_session("CLOSED", Instrumented={"app-other": {"Role": role, "Timeout": 3}})
    put_session("CLOSED", Instrumented={})  # restored: not shown
    put_session("ACTIVE", stack="elsewhere")
    table().put_item(Item={"SessionId": f"grant:{role}", "Holders": {f"{active}/app-fn"}})
    response = get_status(STACK)
    assert response["statusCode"] == 200
    shown = {s["sessionId"]: s for s in response["json"]["sessions"]}
    assert set(shown) == {active[:8], left[:8]}  # never a whole id: a PENDING one connects
    assert response["json"]["roles"] == {role: [f"{active[:8]}/app-fn"]}
    active, left = active[:8], left[:8]
    assert shown[active]["createdBy"] == "arn:aws:iam::123456789012:user/dev"
    assert 25 <= shown[active]["leaseSecondsLeft"] <= 30
    assert shown[left]["functions"] == ["app-other"] and shown[left]["status"] == "CLOSED"
    assert len(get_status()["json"]["sessions"]) == 3  # every stack


def test_post_sessions_records_who_asked(cloud):
    create_stack()
    identity = {"userArn": "arn:aws:iam::123456789012:user/dev"}
    response = post_sessions({"stackName": STACK}, requestContext={"identity": identity})
    item = table().get_item(Key={"SessionId": response["json"]["sessionId"]})["Item"]
    assert item["CreatedBy"] == "arn:aws:iam::123456789012:user/dev"

"""API Gateway's event shapes, route selection, authorizer policies and REST routing."""

from __future__ import annotations

import base64
import json

import pytest

from plldb.local.gateway import events
from plldb.local.gateway.rest import match_route
from plldb.local.gateway.websocket import new_id
from plldb.local.specs import InvokeResult, RestMethod

ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/dev/$connect"
CONNECTION = events.WebSocketConnection(
    api_id="abc123",
    stage="dev",
    connection_id="Yq2b3cZ5IAMCJkQ=",
    connected_at=1_700_000_000_000,
    domain_name="127.0.0.1:4510",
    user_agent="pytest",
)
HANDSHAKE = events.HttpRequest(
    headers=(("Host", "127.0.0.1:4510"), ("X-Tag", "a"), ("X-Tag", "b")),
    query=(("sessionId", "s-1"), ("flag", "1"), ("flag", "2")),
)
ROUTES = ("$connect", "$default", "$disconnect", "debug.response")


def _policy(*statements: dict, **extra) -> dict:
    return {
        "principalId": "me",
        "policyDocument": {"Version": "2012-10-17", "Statement": list(statements)},
        **extra,
    }


def _statement(effect: str, resource, action="execute-api:Invoke") -> dict:
    return {"Effect": effect, "Action": action, "Resource": resource}


def test_ids_look_like_api_gateway_ids():
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(value) == 16 and value.endswith("=") and value[:-1].isalnum() for value in ids)


def test_request_time_format():
    assert events.request_time(1_428_582_896_000) == "09/Apr/2015:12:34:56 +0000"


def test_authorizer_request_event_shape():
    event = events.authorizer_request_event(CONNECTION, HANDSHAKE, ARN, "req=", 1_700_000_000_500)
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == ARN
    assert event["headers"] == {"Host": "127.0.0.1:4510", "X-Tag": "b"}
    assert event["multiValueHeaders"]["X-Tag"] == ["a", "b"]
    assert event["queryStringParameters"] == {"sessionId": "s-1", "flag": "2"}
    assert event["multiValueQueryStringParameters"]["flag"] == ["1", "2"]
    assert event["stageVariables"] == {}
    context = event["requestContext"]
    assert context["routeKey"] == "$connect"
    assert context["eventType"] == "CONNECT"
    assert context["connectionId"] == CONNECTION.connection_id
    assert context["connectedAt"] == CONNECTION.connected_at
    assert context["requestTimeEpoch"] == 1_700_000_000_500
    assert context["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "pytest"}
    assert context["messageDirection"] == "IN"
    assert "authorizer" not in context


def test_connect_event_carries_the_authorizer_and_no_query_means_null():
    handshake = events.HttpRequest(headers=(("Host", "h"),))
    event = events.connect_event(CONNECTION, handshake, "req=", 1, {"principalId": "me", "k": "v"})
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["authorizer"] == {"principalId": "me", "k": "v"}


def test_message_events_text_and_binary():
    text = events.message_event(CONNECTION, "$default", '{"a": 1}', "req=", "msg=", 5)
    assert text["body"] == '{"a": 1}'
    assert text["isBase64Encoded"] is False
    assert text["requestContext"]["eventType"] == "MESSAGE"
    assert text["requestContext"]["messageId"] == "msg="
    binary = events.message_event(CONNECTION, "$default", b"\x00\x01", "req=", "msg=", 5)
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x00\x01"


def test_disconnect_event_has_code_and_reason():
    event = events.disconnect_event(CONNECTION, 1006, "gone", "req=", 9, {"principalId": "me"})
    context = event["requestContext"]
    assert (context["routeKey"], context["eventType"]) == ("$disconnect", "DISCONNECT")
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (1006, "gone")
    assert context["authorizer"] == {"principalId": "me"}


@pytest.mark.parametrize(
    ("expression", "message", "expected"),
    [
        ("$request.body.action", '{"action": "debug.response"}', "debug.response"),
        ("${request.body.action}", '{"action": "debug.response"}', "debug.response"),
        ("$request.body.action", '{"action": "nope"}', "$default"),
        ("$request.body.action", '{"other": 1}', "$default"),
        ("$request.body.action", "not json", "$default"),
        ("$request.body.action", '["action"]', "$default"),
        ("$request.body.action", b'{"action": "debug.response"}', "$default"),
        ("$request.body.action", '{"action": "$connect"}', "$default"),
        ("$request.body.meta.kind", '{"meta": {"kind": "debug.response"}}', "debug.response"),
    ],
)
def test_select_route(expression, message, expected):
    assert events.select_route(expression, message, ROUTES) == expected


def test_select_route_without_default_gives_none():
    assert events.select_route("$request.body.action", "{}", ("$connect", "x")) is None


def test_missing_identity_sources():
    sources = ("route.request.querystring.sessionId", "route.request.header.x-token")
    request = events.HttpRequest(headers=(("X-Token", "t"),), query=(("sessionId", ""),))
    assert events.missing_identity_sources(sources, request) == [sources[0]]
    complete = events.HttpRequest(headers=(("x-token", "t"),), query=(("sessionId", "s"),))
    assert events.missing_identity_sources(sources, complete) == []


@pytest.mark.parametrize(
    ("statements", "allowed"),
    [
        ([_statement("Allow", ARN)], True),
        ([_statement("Allow", "arn:aws:execute-api:*:*:abc123/*")], True),
        ([_statement("Allow", ["arn:x", "arn:aws:execute-api:eu-west-1:*:*/dev/$conn?ct"])], True),
        ([_statement("Allow", ARN, action=["execute-api:*"])], True),
        ([_statement("Allow", "arn:aws:execute-api:*:*:other/*")], False),
        ([_statement("Deny", ARN)], False),
        ([_statement("Allow", "*"), _statement("Deny", ARN)], False),
        ([_statement("Allow", ARN, action="s3:GetObject")], False),
        ([], False),
    ],
)  # fmt: skip
def test_authorizer_policy(statements, allowed):
    assert events.evaluate_authorizer_result(_policy(*statements), ARN).allowed is allowed


def test_authorizer_context_is_flattened_with_the_principal():
    answer = _policy(_statement("Allow", ARN), context={"sessionId": "s-1", "n": 2, "ok": True})
    decision = events.evaluate_authorizer_result(answer, ARN)
    expected = {
        "sessionId": "s-1",
        "n": 2,
        "ok": True,
        "principalId": "me",
        "integrationLatency": 7,
    }
    assert decision.request_context(7) == expected


@pytest.mark.parametrize(
    "answer",
    [
        None,
        "Allow",
        {"principalId": "me"},
        _policy(_statement("Allow", ARN), context={"nested": {"no": 1}}),
        {"principalId": "me", "policyDocument": {"Statement": "Allow"}},
    ],
)
def test_malformed_authorizer_answers_raise(answer):
    with pytest.raises(ValueError):
        events.evaluate_authorizer_result(answer, ARN)


def test_read_invoke_result():
    assert events.read_invoke_result(InvokeResult(200, b'{"a": 1}')).value == {"a": 1}
    assert events.read_invoke_result(InvokeResult(200, b"")).ok
    crashed = InvokeResult(200, b'{"errorMessage": "boom", "errorType": "KeyError"}', "Unhandled")
    failure = events.read_invoke_result(crashed)
    assert not failure.ok
    assert failure.error == "KeyError: boom"
    assert not events.read_invoke_result(InvokeResult(404, b"{}")).ok
    assert not events.read_invoke_result(InvokeResult(200, b"not json")).ok


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ({"statusCode": 200}, 200),
        ({"statusCode": "401"}, 401),
        (None, 200),
        ({"statusCode": []}, 500),
    ],
)
def test_connect_status(value, status):
    assert events.connect_status(value) == status


@pytest.mark.parametrize(
    ("value", "reply"),
    [
        ({"statusCode": 200, "body": "hi"}, "hi"),
        ({"statusCode": 200, "body": "AAE=", "isBase64Encoded": True}, b"\x00\x01"),
        ({"statusCode": 200}, None),
        ({"statusCode": 200, "body": {"a": 1}}, '{"a": 1}'),
        (None, None),
    ],
)
def test_route_reply(value, reply):
    assert events.route_reply(value) == reply


def test_error_frame():
    assert json.loads(events.error_frame("Internal server error", "c=", "r=")) == {
        "message": "Internal server error",
        "connectionId": "c=",
        "requestId": "r=",
    }


def _rest_call(body: bytes = b"", query=()) -> events.RestRequest:
    return events.RestRequest(
        api_id="rest1",
        stage="dev",
        resource="/items/{id}",
        path="/items/42",
        http_method="GET",
        request=events.HttpRequest(headers=(("Host", "127.0.0.1:9"),), query=query),
        path_parameters={"id": "42"},
        body=body,
        domain_name="127.0.0.1:9",
    )


def test_rest_proxy_event_shape():
    identity = events.iam_identity(
        "AKID", "123456789012", "arn:aws:iam::1:user/AKID", "127.0.0.1", "ua"
    )
    call = _rest_call(b'{"a": 1}', (("q", "1"),))
    event = events.rest_proxy_event(call, "123456789012", identity, "uuid", "ext=", 1_700_000_000)
    assert event["resource"] == "/items/{id}"
    assert event["path"] == "/items/42"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"q": "1"}
    assert event["body"] == '{"a": 1}'
    assert event["isBase64Encoded"] is False
    assert event["stageVariables"] is None
    context = event["requestContext"]
    assert context["path"] == "/dev/items/42"
    assert context["resourcePath"] == "/items/{id}"
    assert context["requestId"] == "uuid"
    assert context["accountId"] == "123456789012"
    assert context["identity"]["userArn"] == "arn:aws:iam::1:user/AKID"
    assert context["identity"]["accessKey"] == "AKID"


def test_rest_proxy_event_bodies():
    anonymous = events.anonymous_identity("127.0.0.1", "ua")
    empty = events.rest_proxy_event(_rest_call(), "1", anonymous, "u", "e", 0)
    assert empty["body"] is None
    assert empty["queryStringParameters"] is None
    binary = events.rest_proxy_event(_rest_call(b"\xff\x00"), "1", anonymous, "u", "e", 0)
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\xff\x00"


def test_parse_proxy_response():
    response = events.parse_proxy_response(
        {
            "statusCode": 201,
            "headers": {"X-One": 1, "X-Both": "single"},
            "multiValueHeaders": {"X-Both": ["m1", "m2"]},
            "body": "ok",
        }
    )
    assert response.status_code == 201
    assert response.body == b"ok"
    assert sorted(response.headers) == [("X-Both", "m1"), ("X-Both", "m2"), ("X-One", "1")]
    binary = events.parse_proxy_response(
        {"statusCode": 200, "body": "AAE=", "isBase64Encoded": True}
    )
    assert binary.body == b"\x00\x01"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "text",
        {"body": "no status"},
        {"statusCode": "abc"},
        {"statusCode": 700},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "extra": 1},
        {"statusCode": 200, "headers": {"X": {"nested": 1}}},
        {"statusCode": 200, "multiValueHeaders": {"X": "not a list"}},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
    ],
)
def test_malformed_proxy_responses_raise(value):
    with pytest.raises(ValueError):
        events.parse_proxy_response(value)


METHODS = {
    ("/", "GET"): RestMethod("root"),
    ("/items", "GET"): RestMethod("list"),
    ("/items/{id}", "GET"): RestMethod("get"),
    ("/items/{id}", "ANY"): RestMethod("any"),
    ("/items/special", "GET"): RestMethod("special"),
    ("/{proxy+}", "ANY"): RestMethod("proxy"),
}


@pytest.mark.parametrize(
    ("method", "path", "function", "parameters"),
    [
        ("GET", "/", "root", {}),
        ("GET", "/items", "list", {}),
        ("GET", "/items/7", "get", {"id": "7"}),
        ("DELETE", "/items/7", "any", {"id": "7"}),
        ("GET", "/items/special", "special", {}),
        ("GET", "/items/7/parts", "proxy", {"proxy": "items/7/parts"}),
        ("POST", "/other", "proxy", {"proxy": "other"}),
    ],
)
def test_match_route_prefers_specific_resources(method, path, function, parameters):
    route = match_route(METHODS, method, path)
    assert route is not None
    assert route.method.function == function
    assert route.path_parameters == parameters


def test_match_route_without_a_match():
    methods = {("/items/{id}", "GET"): RestMethod("get")}
    assert match_route(methods, "POST", "/items/1") is None
    assert match_route(methods, "GET", "/items") is None
    assert match_route(methods, "GET", "/items/1/2") is None

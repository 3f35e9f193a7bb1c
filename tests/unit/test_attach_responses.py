"""POST /sessions answers mapped to a session or to the error the user should see."""

from __future__ import annotations

import datetime
import json

import pytest

from plldb.attach.errors import (
    AttachError,
    ManagementApiForbiddenError,
    ManagementApiUnavailableError,
    SessionConflictError,
    SessionRequestError,
    TransientAttachError,
)
from plldb.attach.sessions import Session, session_from_response
from plldb.errors import PlldbError

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
ACCOUNT = "123456789012"


def answer(status, body, url=URL, error_type=None, now=None):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body).encode()
    return session_from_response(
        status,
        raw,
        management_api_url=url,
        stack_name="orders",
        region="eu-west-1",
        account_id=ACCOUNT,
        error_type=error_type,
        now=now,
    )


def test_created_gives_the_session_and_its_expiry():
    assert answer(201, {"sessionId": "sid-1", "expiresAt": 1700003600}) == Session(
        "sid-1", 1700003600
    )


def test_created_carries_the_lease_the_heartbeats_must_keep():
    created = answer(201, {"sessionId": "sid-1", "leaseSeconds": 60})
    assert created.lease_seconds == 60
    assert answer(201, {"sessionId": "sid-1", "leaseSeconds": "60"}).lease_seconds is None


def test_created_without_an_expiry_is_still_a_session():
    assert answer(201, {"sessionId": "sid-1"}).expires_at is None


@pytest.mark.parametrize("body", [{}, {"sessionId": ""}, {"sessionId": 7}, b"<html>", [1]])
def test_created_without_a_session_id_is_an_error(body):
    with pytest.raises(AttachError, match="without a session id"):
        answer(201, body)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "Stack orders does not exist"),
        (400, "stackName must be a non-empty string"),
    ],
)
def test_client_errors_carry_the_apis_message(status, message):
    with pytest.raises(SessionRequestError) as raised:
        answer(status, {"message": message})
    assert raised.value.status == status
    assert str(raised.value) == message
    assert not isinstance(raised.value, TransientAttachError)


def test_a_client_error_without_a_message_names_the_status():
    with pytest.raises(SessionRequestError, match=r"HTTP 400"):
        answer(400, b"")


def test_a_conflict_says_since_when_and_how_to_take_over():
    now = datetime.datetime(2026, 1, 2, 10, 12, 30, tzinfo=datetime.timezone.utc)
    body = {
        "message": "Stack orders already has a debugger attached since 2026-01-02T10:00:00Z",
        "activeSince": "2026-01-02T10:00:00Z",
    }
    with pytest.raises(SessionConflictError) as raised:
        answer(409, body, now=now)
    assert raised.value.active_since == "2026-01-02T10:00:00Z"
    assert str(raised.value) == (
        "Stack orders already has a debugger attached since 2026-01-02T10:00:00Z "
        "(12 minutes ago): use --force to take over"
    )


def test_a_conflict_without_active_since_keeps_the_apis_message():
    with pytest.raises(SessionConflictError, match=r"^Busy: use --force to take over$"):
        answer(409, {"message": "Busy"})


def test_forbidden_names_the_missing_permission_and_api_gateways_message():
    message = (
        "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: "
        "execute-api:Invoke on resource: arn:aws:execute-api:eu-west-1:********0123:abc123/"
        "prod/POST/sessions"
    )
    with pytest.raises(ManagementApiForbiddenError) as raised:
        answer(403, {"Message": message}, error_type="AccessDeniedException")
    text = str(raised.value)
    assert "execute-api:Invoke on arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/POST/" in (
        text
    )
    assert message in text
    assert "\n" not in text
    assert raised.value.status == 403


def test_plldbs_own_refusal_of_the_caller_is_said_as_plldb_said_it():
    message = (
        "arn:aws:iam::123456789012:user/dev may not debug stack orders: it lacks "
        "lambda:UpdateFunctionConfiguration on arn:aws:lambda:eu-west-1:123456789012:function:a"
    )
    with pytest.raises(SessionRequestError) as raised:
        answer(403, {"message": message, "code": "CallerNotAuthorized"})
    assert not isinstance(raised.value, ManagementApiForbiddenError)
    assert str(raised.value) == message
    assert raised.value.status == 403


def test_forbidden_on_a_custom_domain_names_the_url():
    with pytest.raises(ManagementApiForbiddenError) as raised:
        answer(403, {"message": "Forbidden"}, url="https://debug.example.com")
    assert "execute-api:Invoke on the API behind https://debug.example.com/sessions" in str(
        raised.value
    )
    assert "API Gateway said: Forbidden" in str(raised.value)


def test_forbidden_because_the_route_is_missing_says_so():
    with pytest.raises(ManagementApiForbiddenError, match="has no POST /sessions"):
        answer(403, {"message": "Missing Authentication Token"})


@pytest.mark.parametrize(
    ("error_type", "message"),
    [
        ("UnrecognizedClientException", "The security token included in the request is invalid."),
        ("InvalidSignatureException", "Signature expired: 20260101T000000Z is now earlier ..."),
        (None, "The security token included in the request is expired"),
    ],
)
def test_forbidden_because_of_the_credentials_says_to_refresh_them(error_type, message):
    with pytest.raises(ManagementApiForbiddenError) as raised:
        answer(403, {"message": message}, error_type=error_type)
    assert "refresh the credentials" in str(raised.value)
    assert message in str(raised.value)


@pytest.mark.parametrize("status", [429, 500, 502, 504])
def test_throttling_and_server_errors_are_transient(status):
    with pytest.raises(ManagementApiUnavailableError, match=f"HTTP {status}"):
        answer(status, {"message": "Internal server error"})


def test_a_non_json_body_is_quoted_briefly_on_one_line():
    with pytest.raises(ManagementApiUnavailableError) as raised:
        answer(502, b"<html>\n<body>" + b"x" * 500 + b"</body></html>")
    assert "\n" not in str(raised.value)
    assert len(str(raised.value)) < 300


def test_an_unexpected_status_is_still_a_user_error():
    with pytest.raises(PlldbError, match="HTTP 302"):
        answer(302, b"")

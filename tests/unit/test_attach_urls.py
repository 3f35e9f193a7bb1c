"""Pure URL logic of attach: the WebSocket URL with its session, execute-api parsing, the ARN."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from plldb.attach.connection import websocket_url_with_session
from plldb.attach.sessions import (
    ExecuteApiUrl,
    Session,
    invoke_permission,
    parse_execute_api_url,
    sessions_url,
    short_id,
    signing_region,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod",
            "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod?sessionId=s-1",
        ),
        ("ws://127.0.0.1:8080/api1/prod", "ws://127.0.0.1:8080/api1/prod?sessionId=s-1"),
        ("wss://debug.example.com", "wss://debug.example.com/?sessionId=s-1"),
        (
            "wss://debug.example.com/x?team=a&b=",
            "wss://debug.example.com/x?team=a&b=&sessionId=s-1",
        ),
        (
            "wss://debug.example.com/x?sessionId=old&t=1",
            "wss://debug.example.com/x?t=1&sessionId=s-1",
        ),
        ("wss://debug.example.com/x#frag", "wss://debug.example.com/x?sessionId=s-1"),
    ],
)
def test_the_session_id_goes_in_the_query_and_other_parameters_stay(url, expected):
    assert websocket_url_with_session(url, "s-1") == expected


def test_the_session_id_is_url_encoded():
    url = websocket_url_with_session("wss://h/prod?a=1", "a b&c=d/é")
    assert "a b" not in url and "&c=d" not in url
    assert parse_qsl(urlsplit(url).query) == [("a", "1"), ("sessionId", "a b&c=d/é")]


@pytest.mark.parametrize(
    "base", ["https://h.example/prod", "https://h.example/prod/", "http://127.0.0.1:9/a/prod"]
)
def test_sessions_url_appends_one_path_segment(base):
    assert sessions_url(base) == base.rstrip("/") + "/sessions"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
            ExecuteApiUrl("abc123", "eu-west-1", "prod", "aws"),
        ),
        (
            "https://ABC123.execute-api.us-east-1.amazonaws.com/prod/",
            ExecuteApiUrl("abc123", "us-east-1", "prod", "aws"),
        ),
        (
            "https://x1.execute-api.cn-north-1.amazonaws.com.cn/live",
            ExecuteApiUrl("x1", "cn-north-1", "live", "aws-cn"),
        ),
        (
            "https://x1.execute-api.us-gov-west-1.amazonaws.com",
            ExecuteApiUrl("x1", "us-gov-west-1", None, "aws-us-gov"),
        ),
        ("https://debug.example.com/prod", None),
        ("http://127.0.0.1:4566/abc123/prod", None),
        ("https://abc123.execute-api.eu-west-1.amazonaws.com.evil.example/prod", None),
    ],
)
def test_execute_api_urls_are_recognised_and_custom_domains_are_not(url, expected):
    assert parse_execute_api_url(url) == expected


def test_the_permission_names_the_exact_resource_of_post_sessions():
    text = invoke_permission(
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod", "us-east-1", "123456789012"
    )
    # The URL's region wins: that is where the API lives.
    assert text == (
        "execute-api:Invoke on arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/POST/sessions"
    )


def test_the_permission_of_a_url_without_stage_uses_a_wildcard_stage():
    text = invoke_permission(
        "https://abc123.execute-api.eu-west-1.amazonaws.com", "eu-west-1", "123456789012"
    )
    assert text.endswith(":abc123/*/POST/sessions")


def test_the_permission_of_a_custom_domain_names_the_url():
    text = invoke_permission("https://debug.example.com/v1", "eu-west-1", "123456789012")
    assert text == "execute-api:Invoke on the API behind https://debug.example.com/v1/sessions"


def test_signing_uses_the_urls_region_else_the_sessions():
    assert signing_region("https://a1.execute-api.eu-west-2.amazonaws.com/p", "us-east-1") == (
        "eu-west-2"
    )
    assert signing_region("http://127.0.0.1:5000/a1/p", "us-east-1") == "us-east-1"


def test_a_session_shows_only_the_start_of_its_id():
    session = Session("abcd1234-5678-90ab-cdef-000000000000", 1_700_000_000)
    assert session.short_id == "abcd1234…" == short_id(session.session_id)
    assert "5678" not in repr(session)


def test_the_session_request_carries_function_patterns_only_when_given():
    from plldb.attach.sessions import _request_body

    assert _request_body("app", False, ()) == {"stackName": "app", "force": False}
    assert _request_body("app", True, ("orders-*",)) == {
        "stackName": "app",
        "force": True,
        "functions": ["orders-*"],
    }

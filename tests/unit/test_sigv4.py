"""SigV4 checks of the REST front, against requests signed by requests-aws4auth and botocore."""

from __future__ import annotations

import datetime
import email.utils
from urllib.parse import urlsplit

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from requests_aws4auth import AWS4Auth

from plldb.local.gateway import sigv4

REGION = "eu-west-1"
KEY, SECRET = "AKIDTESTING", "testing-secret"
KNOWN = {KEY: SECRET}
HOST = "127.0.0.1:4510"
URL = f"http://{HOST}/abc123/dev/sessions/{{id}}%20x?b=2&a=x+y&a=&c=%2F"


def _received(prepared, host: str = HOST) -> sigv4.SignedRequest:
    """The request as the server reads it off the wire (the client's HTTP stack adds Host)."""
    parts = urlsplit(prepared.url)
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    headers = (("Host", host), *prepared.headers.items())
    return sigv4.SignedRequest(prepared.method, parts.path, parts.query, headers, body)


def _aws4auth(key: str = KEY, secret: str = SECRET, region: str = REGION, **options):
    auth = AWS4Auth(key, secret, region, "execute-api", **options)
    request = requests.Request("POST", URL, data=b'{"stack": "demo"}', headers={"User-Agent": "t"})
    return _received(auth(request.prepare()))


def _signed_at(request: sigv4.SignedRequest) -> datetime.datetime:
    stamp = request.header("X-Amz-Date")
    assert stamp is not None
    return datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


def _replace(request: sigv4.SignedRequest, **changes) -> sigv4.SignedRequest:
    fields = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": request.headers,
        "body": request.body,
        **changes,
    }
    return sigv4.SignedRequest(**fields)


def test_requests_aws4auth_signature_is_accepted():
    request = _aws4auth()
    verdict = sigv4.verify(request, KNOWN, REGION, now=_signed_at(request))
    assert verdict.ok
    assert verdict.access_key == KEY


def test_a_signed_header_botocore_would_skip_is_still_checked():
    request = _aws4auth(include_hdrs=["host", "user-agent", "x-amz-*", "content-type"])
    assert "user-agent" in (request.header("Authorization") or "")
    assert sigv4.verify(request, KNOWN, REGION, now=_signed_at(request)).ok
    tampered = _replace(
        request,
        headers=tuple((n, "other" if n == "User-Agent" else v) for n, v in request.headers),
    )
    assert sigv4.verify(tampered, KNOWN, REGION, now=_signed_at(request)).error_type == (
        sigv4.INVALID
    )


@pytest.mark.parametrize("use_date_header", [False, True])
def test_botocore_signature_with_session_token_is_accepted(use_date_header):
    headers = {"Content-Type": "application/json"}
    if use_date_header:
        headers["Date"] = "Mon, 01 Jan 2024 00:00:00 GMT"  # botocore then signs Date instead
    request = AWSRequest("PUT", URL, data=b"{}", headers=headers)
    SigV4Auth(Credentials(KEY, SECRET, "session-token"), "execute-api", REGION).add_auth(request)
    received = _received(request.prepare())
    assert received.header("X-Amz-Security-Token") == "session-token"
    assert (received.header("X-Amz-Date") is None) is use_date_header
    if use_date_header:
        now = email.utils.parsedate_to_datetime(received.header("Date") or "")
    else:
        now = _signed_at(received)
    assert sigv4.verify(received, KNOWN, REGION, now=now).ok


def test_unsigned_request_is_missing_a_token():
    request = sigv4.SignedRequest("GET", "/abc123/dev/sessions", "", (("Host", HOST),))
    assert not sigv4.is_signed(request)
    verdict = sigv4.verify(request, KNOWN, REGION)
    assert verdict.error_type == sigv4.MISSING_TOKEN
    assert verdict.message == "Missing Authentication Token"


def test_unknown_access_key():
    request = _aws4auth(key="AKIDUNKNOWN")
    verdict = sigv4.verify(request, KNOWN, REGION, now=_signed_at(request))
    assert verdict.error_type == sigv4.UNRECOGNIZED
    assert verdict.message == "The security token included in the request is invalid."


def test_wrong_secret():
    request = _aws4auth(secret="not-the-secret")
    verdict = sigv4.verify(request, KNOWN, REGION, now=_signed_at(request))
    assert verdict.error_type == sigv4.INVALID
    assert verdict.message is not None
    assert verdict.message.startswith("The request signature we calculated does not match")
    assert "The Canonical String for this request should have been" in verdict.message


@pytest.mark.parametrize(
    "changes",
    [
        {"body": b'{"stack": "evil"}'},
        {"path": "/abc123/dev/other"},
        {"query": "b=3&a=x+y&a=&c=%2F"},
        {"method": "PUT"},
    ],
)
def test_tampered_requests_fail(changes):
    request = _aws4auth()
    verdict = sigv4.verify(_replace(request, **changes), KNOWN, REGION, now=_signed_at(request))
    assert verdict.error_type == sigv4.INVALID


def test_signed_for_another_host_fails():
    prepared = AWS4Auth(KEY, SECRET, REGION, "execute-api")(requests.Request("GET", URL).prepare())
    request = _received(prepared, host="127.0.0.1:9999")
    assert sigv4.verify(request, KNOWN, REGION, now=_signed_at(request)).error_type == (
        sigv4.INVALID
    )


@pytest.mark.parametrize(
    ("offset", "start"),
    [(6, "Signature expired: "), (-6, "Signature not yet current: ")],
)
def test_clock_skew_over_five_minutes(offset, start):
    request = _aws4auth()
    now = _signed_at(request) + datetime.timedelta(minutes=offset)
    verdict = sigv4.verify(request, KNOWN, REGION, now=now)
    assert verdict.error_type == sigv4.INVALID
    assert (verdict.message or "").startswith(start)
    within = _signed_at(request) + datetime.timedelta(minutes=4)
    assert sigv4.verify(request, KNOWN, REGION, now=within).ok


def test_other_region_in_the_credential_scope():
    request = _aws4auth(region="us-east-1")
    verdict = sigv4.verify(request, KNOWN, REGION, now=_signed_at(request))
    assert verdict.error_type == sigv4.INVALID
    assert "region" in (verdict.message or "")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=AKIDTESTING/20240101/eu-west-1/execute-api/aws4_request",
        "AWS4-HMAC-SHA256 Credential=short, SignedHeaders=host, Signature=00",
    ],
)
def test_malformed_authorization_header(authorization):
    headers = (("Host", HOST), ("Authorization", authorization), ("X-Amz-Date", "20240101T000000Z"))
    request = sigv4.SignedRequest("GET", "/abc123/dev/sessions", "", headers)
    assert sigv4.verify(request, KNOWN, REGION).error_type == sigv4.INCOMPLETE


def test_missing_date():
    request = _aws4auth()
    undated = _replace(
        request, headers=tuple((n, v) for n, v in request.headers if n.lower() != "x-amz-date")
    )
    assert sigv4.verify(undated, KNOWN, REGION).error_type == sigv4.INCOMPLETE

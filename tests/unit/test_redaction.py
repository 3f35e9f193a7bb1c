"""Redaction before a recording is written: no planted secret survives in the file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from plldb.attach.invocation import Invocation, InvocationResult, Ran
from plldb.attach.local_source import LocalFunction
from plldb.recording.document import build, dumps
from plldb.recording.redact import REDACTED, RedactionRuleError, redact, redactions

ACCESS_KEY = "AKIAABCDEFGHIJKLMNOP"
TEMP_KEY = "ASIAQRSTUVWXYZ234567"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # 40 base64 characters
TOKEN = "FwoGZXIvYXdzEBYaDH" + "x" * 60
CARD = "4111111111111111"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.planted-bearer"
COOKIE = "session=planted-cookie-value"
CUSTOM = "customer-7731-planted"
PLANTED = (ACCESS_KEY, TEMP_KEY, SECRET, TOKEN, CARD, "planted-bearer", "planted-cookie", CUSTOM)


def _event() -> dict:
    return {
        "headers": {
            "Authorization": BEARER,
            "COOKIE": COOKIE,
            "content-type": "application/json",
        },
        "multiValueHeaders": {
            "authorization": [BEARER],
            "Cookie": [COOKIE, COOKIE],
            "Accept": ["*/*"],
        },
        "cookies": [COOKIE],
        "requestContext": {"accessKey": ACCESS_KEY, "note": f"keys {TEMP_KEY} inline"},
        "body": json.dumps(
            {"card": CARD, "aws_secret_access_key": SECRET, "name": "ok", "ref": CUSTOM}
        ),
        "config": {"clientSecret": SECRET, "sessionToken": TOKEN, "dbPassword": SECRET},
        "form": f"user=me&password={SECRET}&next=1",
    }


def _ran(event: dict, payload: dict | None = None, error: dict | None = None) -> Ran:
    invocation = Invocation(
        "5f0c3a1e-1111-2222-3333-444455556666",
        "qr-upload-http-api-dev",
        event,
        int(time.time() * 1000) + 3000,
        environment={"AWS_SECRET_ACCESS_KEY": SECRET, "STAGE": "dev"},
        context={"clientContext": {"custom": {"token": TOKEN}}},
    )
    function = LocalFunction(invocation.function_name, "HttpApiLambda", Path("src"), "app.h")
    result = InvocationResult(invocation.request_id, payload=payload, error=error)
    return Ran(invocation, function, result, time.time(), 1.5)


RULES = ["$.body.card", r"re:customer-\d+-planted"]


def test_no_planted_secret_survives_in_the_file():
    answer = {
        "statusCode": 200,
        "headers": {"Set-Cookie": COOKIE},
        "multiValueHeaders": {"set-cookie": [COOKIE]},
        "body": json.dumps({"card": CARD, "echo": ACCESS_KEY}),
    }
    text = dumps(build(_ran(_event(), payload=answer), redactions(RULES)))
    for secret in PLANTED:
        assert secret not in text, secret
    document = json.loads(text)
    assert document["event"]["headers"]["content-type"] == "application/json"
    assert document["event"]["multiValueHeaders"]["Cookie"] == [REDACTED, REDACTED]
    assert json.loads(document["event"]["body"])["name"] == "ok"
    assert document["environmentVariables"] == ["AWS_SECRET_ACCESS_KEY", "STAGE"]


def test_secrets_in_an_error_and_its_traceback_are_redacted():
    error = {
        "errorType": "ValueError",
        "errorMessage": f"bad key {ACCESS_KEY}",
        "stackTrace": [f'  File "app.py", line 3, in h\n    token={SECRET}\n'],
    }
    text = dumps(build(_ran({}, error=error)))
    assert ACCESS_KEY not in text and SECRET not in text
    assert "errorMessage" in text


def test_the_developers_rules_are_kept_in_the_file_for_replay():
    document = build(_ran({"a": 1}, payload={}), redactions(RULES))
    assert document["redactions"] == RULES


def test_a_json_path_reaches_into_lists_and_json_text():
    value = {"items": [{"card": CARD}, {"card": CARD}], "body": json.dumps({"a": {"b": CARD}})}
    redacted = redact(value, redactions(["$.items[*].card", "$.body.a.b"]))
    assert CARD not in json.dumps(redacted)
    assert redacted["items"] == [{"card": REDACTED}, {"card": REDACTED}]


def test_ordinary_values_are_left_alone():
    value = {"token": "short", "id": "A" * 40, "headers": {"X-Trace": "abc"}, "n": 3}
    assert redact(value) == value


@pytest.mark.parametrize("rule", ["body.card", "$", "$.a[x]", "re:(unclosed"])
def test_a_bad_rule_is_a_user_error(rule):
    with pytest.raises(RedactionRuleError):
        redactions([rule])

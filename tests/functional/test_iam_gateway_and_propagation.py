"""API Gateway's execute-api check and IAM's propagation delay, against an enforcing moto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from plldb.local.gateway.arns import execute_api_arn
from plldb.local.gateway.sigv4 import SignedRequest
from plldb.local.iam import gateway
from plldb.local.motoserver import MotoServer

REGION, ACCOUNT = "eu-west-1", "123456789012"
DELAY = 1.5
SESSIONS = execute_api_arn(REGION, ACCOUNT, "api1", "live", "POST", "/sessions")


def _policy(action: str, resource: str) -> str:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer(enforce_iam=True, region=REGION, iam_propagation_seconds=DELAY) as server:
        server.reset()
        yield server
        server.reset()


def _client(moto: MotoServer, service: str, key: str, secret: str):
    return boto3.client(service, endpoint_url=moto.endpoint, region_name=REGION,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))  # fmt: skip


def _user(moto: MotoServer, name: str) -> tuple[str, str]:
    iam = _client(moto, "iam", moto.access_key, moto.secret_key)
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _signed(key: str, secret: str, path: str = "/api1/live/sessions") -> SignedRequest:
    request = AWSRequest("POST", f"http://127.0.0.1:1{path}", data=b"{}")
    SigV4Auth(Credentials(key, secret), "execute-api", REGION).add_auth(request)
    headers = (("Host", "127.0.0.1:1"), *request.headers.items())  # the HTTP stack adds Host
    return SignedRequest("POST", path, "", headers, b"{}")


def test_execute_api_invoke_is_allowed_only_on_the_arn_the_policy_names(moto):
    iam = _client(moto, "iam", moto.access_key, moto.secret_key)
    key, secret = _user(moto, "developer")
    iam.put_user_policy(UserName="developer", PolicyName="invoke",
                        PolicyDocument=_policy("execute-api:Invoke", SESSIONS))  # fmt: skip
    time.sleep(DELAY)
    allowed = gateway.check(_signed(key, secret), REGION, "execute-api:Invoke", SESSIONS)
    assert allowed.verdict.ok and allowed.arn == f"arn:aws:iam::{ACCOUNT}:user/developer"
    other = SESSIONS.replace("/POST/", "/DELETE/")
    denied = gateway.check(_signed(key, secret), REGION, "execute-api:Invoke", other)
    assert denied.verdict.error_type == gateway.ACCESS_DENIED
    assert "execute-api:Invoke" in (denied.verdict.message or "")
    wrong = gateway.check(_signed(key, "not-it"), REGION, "execute-api:Invoke", SESSIONS)
    assert wrong.verdict.error_type == "InvalidSignatureException"
    unknown = gateway.check(_signed("AKIANOBODY", "x"), REGION, "execute-api:Invoke", SESSIONS)
    assert unknown.verdict.error_type == "UnrecognizedClientException"


@pytest.mark.parametrize("how", ["attach", "put"])
def test_a_new_policy_holds_only_after_the_propagation_delay(moto, how):
    iam = _client(moto, "iam", moto.access_key, moto.secret_key)
    key, secret = _user(moto, f"late-{how}")
    document = _policy("dynamodb:ListTables", "*")
    if how == "attach":
        arn = iam.create_policy(PolicyName="list-tables", PolicyDocument=document)["Policy"]["Arn"]
        iam.attach_user_policy(UserName="late-attach", PolicyArn=arn)
    else:
        iam.put_user_policy(UserName="late-put", PolicyName="list", PolicyDocument=document)
    attached = time.monotonic()
    dynamodb = _client(moto, "dynamodb", key, secret)
    with pytest.raises(ClientError) as early:
        dynamodb.list_tables()
    assert early.value.response["Error"]["Code"] == "AccessDeniedException"
    assert time.monotonic() - attached < DELAY  # refused because it was early, not too late
    time.sleep(DELAY - (time.monotonic() - attached) + 0.1)
    assert dynamodb.list_tables()["TableNames"] == []

"""With enforce_iam, the offline cloud refuses what AWS would: missing permissions, bad keys."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from plldb.local.lambda_front import LambdaFront
from plldb.local.motoserver import MotoServer

REGION = "eu-west-1"
ACCOUNT = "123456789012"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/iam-items"
LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})  # fmt: skip
HANDLER = """
import boto3, os
from botocore.exceptions import ClientError

def handler(event, context):
    try:
        boto3.client("dynamodb").put_item(TableName="iam-items", Item={"k": {"S": event["k"]}})
    except ClientError as error:
        return {"error": error.response["Error"]["Code"]}
    token = bool(os.environ.get("AWS_SESSION_TOKEN"))
    return {"key": os.environ["AWS_ACCESS_KEY_ID"][:4], "token": token}
"""


def policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


PUT_ITEM = policy({"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE_ARN})


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer(enforce_iam=True, region=REGION) as server:
        server.reset()
        yield server
        server.reset()


def client(moto: MotoServer, service: str, key: str, secret: str, endpoint: str | None = None):
    return boto3.client(service, endpoint_url=endpoint or moto.endpoint, region_name=REGION,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))  # fmt: skip


def admin(moto: MotoServer, service: str, endpoint: str | None = None):
    return client(moto, service, moto.access_key, moto.secret_key, endpoint)


@pytest.fixture(scope="module")
def front(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaFront]:
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            patch.delenv(name)  # the runtimes must get their role's keys, not the host's
        workdir = tmp_path_factory.mktemp("iam-front")
        with LambdaFront(moto.endpoint, REGION, workdir, enforce_iam=True) as front:
            yield front


@pytest.fixture(scope="module")
def functions(moto: MotoServer) -> dict[str, str]:
    """Two functions with the same code: one role may put items, the other may not."""
    admin(moto, "dynamodb").create_table(
        TableName="iam-items", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])  # fmt: skip
    iam = admin(moto, "iam")
    writer = iam.create_policy(PolicyName="iam-items-writer", PolicyDocument=PUT_ITEM)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", HANDLER)
    roles = {}
    for name in ("allowed", "refused"):
        role = iam.create_role(RoleName=f"iam-{name}", AssumeRolePolicyDocument=LAMBDA_TRUST)
        roles[name] = role["Role"]["Arn"]
        admin(moto, "lambda").create_function(
            FunctionName=f"iam-{name}", Runtime="python3.11", Role=roles[name],
            Handler="handler.handler", Code={"ZipFile": buffer.getvalue()}, Timeout=30)  # fmt: skip
    iam.attach_role_policy(RoleName="iam-allowed", PolicyArn=writer["Policy"]["Arn"])
    return {"policy": writer["Policy"]["Arn"], **roles}


def invoke(moto: MotoServer, front: LambdaFront, name: str, key: str) -> dict:
    answer = admin(moto, "lambda", front.endpoint).invoke(
        FunctionName=name, Payload=json.dumps({"k": key}).encode()
    )
    return json.loads(answer["Payload"].read())


def test_a_role_without_put_item_is_refused_and_one_with_it_writes(moto, front, functions):
    assert invoke(moto, front, "iam-allowed", "a") == {"key": "ASIA", "token": True}
    assert invoke(moto, front, "iam-refused", "b") == {"error": "AccessDeniedException"}
    items = admin(moto, "dynamodb").scan(TableName="iam-items")["Items"]
    assert [item["k"]["S"] for item in items] == ["a"]


def test_detaching_the_policy_takes_effect_on_the_next_call(moto, front, functions):
    iam = admin(moto, "iam")
    iam.detach_role_policy(RoleName="iam-allowed", PolicyArn=functions["policy"])
    try:
        assert invoke(moto, front, "iam-allowed", "c") == {"error": "AccessDeniedException"}
    finally:
        iam.attach_role_policy(RoleName="iam-allowed", PolicyArn=functions["policy"])
    assert invoke(moto, front, "iam-allowed", "d")["key"] == "ASIA"


def user_keys(moto: MotoServer, name: str, document: str) -> tuple[str, str]:
    iam = admin(moto, "iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=document)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_a_caller_without_invoke_function_is_refused(moto, front, functions):
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:iam-allowed"
    reader = policy(
        {"Effect": "Allow", "Action": "lambda:GetFunctionConfiguration", "Resource": fn}
    )
    key, secret = user_keys(moto, "no-invoke", reader)
    lambda_client = client(moto, "lambda", key, secret, front.endpoint)
    assert lambda_client.get_function_configuration(FunctionName="iam-allowed")["Role"]
    with pytest.raises(ClientError) as refused:
        lambda_client.invoke(FunctionName="iam-allowed", Payload=b'{"k": "e"}')
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "lambda:InvokeFunction" in refused.value.response["Error"]["Message"]


def test_a_wrong_secret_or_an_unknown_key_is_refused(moto, front, functions):
    key, _ = user_keys(moto, "wrong-secret", PUT_ITEM)
    for service, call, endpoint in (
        ("dynamodb", lambda c: c.list_tables(), None),
        ("iam", lambda c: c.list_roles(), None),
        ("lambda", lambda c: c.invoke(FunctionName="iam-allowed", Payload=b"{}"), front.endpoint),
    ):
        with pytest.raises(ClientError) as refused:
            call(client(moto, service, key, "not-the-secret", endpoint))
        assert refused.value.response["Error"]["Code"] in (
            "InvalidSignatureException", "SignatureDoesNotMatch")  # fmt: skip
    with pytest.raises(ClientError) as unknown:
        client(moto, "dynamodb", "testing", "testing").list_tables()
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_assume_role_needs_trust_and_permission_and_the_session_needs_its_token(moto, functions):
    iam = admin(moto, "iam")
    account_trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "sts:AssumeRole"}]})  # fmt: skip
    role = iam.create_role(RoleName="iam-relay", AssumeRolePolicyDocument=account_trust)
    relay = role["Role"]["Arn"]
    may_assume = policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": relay})
    key, secret = user_keys(moto, "assumer", may_assume)
    with pytest.raises(ClientError) as untrusted:  # the function roles trust only Lambda
        client(moto, "sts", key, secret).assume_role(
            RoleArn=functions["allowed"], RoleSessionName="s1")  # fmt: skip
    assert untrusted.value.response["Error"]["Code"] == "AccessDenied"
    other, other_secret = user_keys(moto, "not-assumer", PUT_ITEM)
    with pytest.raises(ClientError) as not_allowed:  # trusted account, but no identity policy
        client(moto, "sts", other, other_secret).assume_role(RoleArn=relay, RoleSessionName="s2")
    assert not_allowed.value.response["Error"]["Code"] == "AccessDenied"
    session = client(moto, "sts", key, secret).assume_role(RoleArn=relay, RoleSessionName="s3")
    credentials = session["Credentials"]
    with pytest.raises(ClientError) as no_token:
        client(moto, "sts", credentials["AccessKeyId"], credentials["SecretAccessKey"]
               ).get_caller_identity()  # fmt: skip
    assert no_token.value.response["Error"]["Code"] == "InvalidClientTokenId"
    with_token = boto3.client(
        "sts", endpoint_url=moto.endpoint, region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"])  # fmt: skip
    assert with_token.get_caller_identity()["Arn"].endswith(":assumed-role/iam-relay/s3")

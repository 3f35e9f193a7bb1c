"""SimulatePrincipalPolicy in the offline cloud: moto lacks it, plldb/local answers it strictly."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from plldb.local.iam import simulation
from plldb.local.motoserver import MotoServer

REGION = "eu-west-1"
ACCOUNT = "123456789012"
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders"
OTHER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:billing"
UPDATE = "lambda:UpdateFunctionConfiguration"


def document(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


MAY_UPDATE_ORDERS = document({"Effect": "Allow", "Action": UPDATE, "Resource": FUNCTION})


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer(enforce_iam=True, region=REGION) as server:
        server.reset()
        yield server
        server.reset()


def iam(moto: MotoServer, key: str | None = None, secret: str | None = None):
    return boto3.client(
        "iam", endpoint_url=moto.endpoint, region_name=REGION,
        aws_access_key_id=key or moto.access_key, aws_secret_access_key=secret or moto.secret_key,
        config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip


def decisions(client, source: str, resources: list[str]) -> dict[str, str]:
    answer = client.simulate_principal_policy(
        PolicySourceArn=source, ActionNames=[UPDATE], ResourceArns=resources
    )
    assert answer["IsTruncated"] is False
    return {
        r["EvalResourceName"]: r["ResourceSpecificResults"][0]["EvalResourceDecision"]
        for r in answer["EvaluationResults"]
    }


def test_a_users_and_its_groups_policies_decide_per_resource(moto):
    admin = iam(moto)
    admin.create_user(UserName="dev")
    admin.create_group(GroupName="team")
    admin.add_user_to_group(GroupName="team", UserName="dev")
    admin.put_group_policy(GroupName="team", PolicyName="p", PolicyDocument=MAY_UPDATE_ORDERS)
    source = f"arn:aws:iam::{ACCOUNT}:user/dev"
    assert decisions(admin, source, [FUNCTION, OTHER]) == {
        FUNCTION: "allowed",
        OTHER: "implicitDeny",
    }
    deny = document({"Effect": "Deny", "Action": "lambda:*", "Resource": FUNCTION})
    admin.put_user_policy(UserName="dev", PolicyName="deny", PolicyDocument=deny)
    assert decisions(admin, source, [FUNCTION]) == {FUNCTION: "explicitDeny"}
    group = f"arn:aws:iam::{ACCOUNT}:group/team"
    assert decisions(admin, group, [FUNCTION]) == {FUNCTION: "allowed"}


def test_a_role_with_a_path_is_simulated_with_its_policies(moto):
    admin = iam(moto)
    trust = document({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                      "Action": "sts:AssumeRole"})  # fmt: skip
    arn = admin.create_role(RoleName="ci", Path="/build/", AssumeRolePolicyDocument=trust)
    admin.put_role_policy(RoleName="ci", PolicyName="p", PolicyDocument=MAY_UPDATE_ORDERS)
    source = arn["Role"]["Arn"]
    assert source.endswith(":role/build/ci")
    assert decisions(admin, source, [FUNCTION, OTHER]) == {
        FUNCTION: "allowed",
        OTHER: "implicitDeny",
    }


def test_an_unknown_principal_is_no_such_entity(moto):
    with pytest.raises(ClientError) as raised:
        decisions(iam(moto), f"arn:aws:iam::{ACCOUNT}:user/nobody", [FUNCTION])
    assert raised.value.response["Error"]["Code"] == "NoSuchEntity"


def test_the_call_itself_needs_simulate_principal_policy_on_the_principal(moto):
    admin = iam(moto)
    admin.create_user(UserName="asker")
    key = admin.create_access_key(UserName="asker")["AccessKey"]
    asker = iam(moto, key["AccessKeyId"], key["SecretAccessKey"])
    target = f"arn:aws:iam::{ACCOUNT}:user/asker"
    with pytest.raises(ClientError) as raised:
        decisions(asker, target, [FUNCTION])
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    allow = document(
        {"Effect": "Allow", "Action": "iam:SimulatePrincipalPolicy", "Resource": target}
    )
    admin.put_user_policy(UserName="asker", PolicyName="p", PolicyDocument=allow)
    assert decisions(asker, target, [FUNCTION]) == {FUNCTION: "implicitDeny"}


def test_without_enforcement_everything_is_allowed(aws_env):
    from moto import mock_aws

    simulation.install(strict=False)
    try:
        with mock_aws():
            client = boto3.client("iam", region_name=REGION)
            source = f"arn:aws:iam::{ACCOUNT}:user/whoever"
            assert decisions(client, source, [FUNCTION]) == {FUNCTION: "allowed"}
    finally:
        simulation.uninstall()

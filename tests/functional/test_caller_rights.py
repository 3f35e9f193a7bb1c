"""POST /sessions opens a session only for a caller who could change the stack's functions."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.functional.test_session_handlers import (
    ACCOUNT,
    REGION,
    STACK,
    cloud,  # noqa: F401 - the fixture
    item,
    post_sessions,
    put_session,
    table,
)

pytestmark = pytest.mark.usefixtures("cloud")
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{}}"
TEMPLATE = {
    "Resources": {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
        **{
            logical: {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": name,
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Code": {"ZipFile": "def handler(event, context):\n    return 1\n"},
                },
            }
            for logical, name in (("Orders", "orders"), ("Reports", "reports"))
        },
    }
}
INVOKE_ONLY = {
    "Effect": "Allow",
    "Action": "execute-api:Invoke",
    "Resource": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:*/live/POST/sessions",
}


def function_stack() -> None:
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=STACK, TemplateBody=json.dumps(TEMPLATE), Capabilities=["CAPABILITY_IAM"]
    )


def function_role() -> str:
    configuration = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName="orders"
    )
    return configuration["Role"]


def user(name: str, *statements: dict[str, Any]) -> str:
    iam = boto3.client("iam", region_name=REGION)
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    document = {"Version": "2012-10-17", "Statement": [INVOKE_ONLY, *statements]}
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    return arn


def may_update(*names: str) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Action": "lambda:UpdateFunctionConfiguration",
        "Resource": [FUNCTION_ARN.format(name) for name in names],
    }


def test_a_caller_holding_only_execute_api_invoke_is_refused():
    function_stack()
    caller = user("invoke-only")
    response = post_sessions({"stackName": STACK}, caller=caller)
    assert response["statusCode"] == 403
    assert response["json"]["code"] == "CallerNotAuthorized"
    message = response["json"]["message"]
    assert caller in message and "lambda:UpdateFunctionConfiguration" in message
    assert "\n" not in message
    assert table().scan()["Items"] == []


def test_a_caller_who_may_change_every_function_gets_a_session():
    function_stack()
    caller = user("owner", may_update("orders", "reports"))
    assert post_sessions({"stackName": STACK}, caller=caller)["statusCode"] == 201


def test_rights_on_some_functions_are_not_enough():
    function_stack()
    caller = user("half", may_update("orders"))
    response = post_sessions({"stackName": STACK}, caller=caller)
    assert response["statusCode"] == 403
    assert FUNCTION_ARN.format("reports") in response["json"]["message"]


def test_function_patterns_narrow_what_the_caller_needs():
    function_stack()
    caller = user("orders-dev", may_update("orders"))
    response = post_sessions({"stackName": STACK, "functions": ["Orders"]}, caller=caller)
    assert response["statusCode"] == 201


def test_an_explicit_deny_wins():
    function_stack()
    deny = {**may_update("reports"), "Effect": "Deny"}
    caller = user("denied", {**may_update("*"), "Resource": "*"}, deny)
    assert post_sessions({"stackName": STACK}, caller=caller)["statusCode"] == 403


def test_function_role_also_needs_pass_role_on_the_functions_role():
    function_stack()
    changer = user("changer", may_update("orders", "reports"))
    refused = post_sessions({"stackName": STACK, "functionRole": True}, caller=changer)
    assert refused["statusCode"] == 403
    assert "iam:PassRole" in refused["json"]["message"]
    passer = user(
        "passer",
        may_update("orders", "reports"),
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": function_role()},
    )
    response = post_sessions({"stackName": STACK, "functionRole": True}, caller=passer)
    assert response["statusCode"] == 201


def test_an_assumed_role_is_judged_by_its_roles_policies():
    function_stack()
    iam = boto3.client("iam", region_name=REGION)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]}  # fmt: skip
    for name, statements in (("dev-role", [may_update("orders", "reports")]), ("ci-role", [])):
        iam.create_role(RoleName=name, Path="/team/", AssumeRolePolicyDocument=json.dumps(trust))
        document = {"Version": "2012-10-17", "Statement": [INVOKE_ONLY, *statements]}
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{{}}/alice"
    assert (
        post_sessions({"stackName": STACK}, caller=session.format("dev-role"))["statusCode"] == 201
    )
    refused = post_sessions({"stackName": STACK, "force": True}, caller=session.format("ci-role"))
    assert refused["statusCode"] == 403
    assert f"arn:aws:iam::{ACCOUNT}:role/team/ci-role" in refused["json"]["message"]


@pytest.mark.parametrize(
    "caller",
    [
        None,
        f"arn:aws:iam::{ACCOUNT}:root",
        f"arn:aws:sts::{ACCOUNT}:federated-user/bob",
        "arn:aws:iam::999999999999:user/developer",
        f"arn:aws:iam::{ACCOUNT}:user/deleted-user",
    ],
    ids=["anonymous", "root", "federated", "other-account", "unknown-user"],
)
def test_callers_whose_rights_cannot_be_checked_are_refused(caller):
    function_stack()
    response = post_sessions({"stackName": STACK}, caller=caller)
    assert response["statusCode"] == 403
    assert response["json"]["code"] == "CallerNotAuthorized"


def test_a_refused_force_leaves_the_attached_debugger_alone():
    function_stack()
    attached = put_session("ACTIVE", ConnectionId="conn-A")
    caller = user("intruder")
    response = post_sessions({"stackName": STACK, "force": True}, caller=caller)
    assert response["statusCode"] == 403
    assert item(attached)["Status"] == "ACTIVE"


def test_a_function_deleted_outside_the_stack_is_not_an_error():
    function_stack()
    boto3.client("lambda", region_name=REGION).delete_function(FunctionName="reports")
    passer = user(
        "passer",
        may_update("orders", "reports"),
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": function_role()},
    )
    response = post_sessions({"stackName": STACK, "functionRole": True}, caller=passer)
    assert response["statusCode"] == 201, response["json"]

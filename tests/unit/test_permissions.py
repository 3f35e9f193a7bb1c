"""The policies plldb ships: the stack's PLLDBUserPolicy, `plldb policy`, and what they allow."""

from __future__ import annotations

import json
import re

import pytest

from plldb.bootstrap.render import load_template
from plldb.local.iam.policy import RequestContext, evaluate
from plldb.permissions import bootstrap_policy, partition_of, user_policy
from plldb.resources import cloudformation_dir

REGION, ACCOUNT, API, STAGE = "eu-west-1", "123456789012", "abc123", "live"
_SUBSTITUTIONS = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": "plldb",
    "PLLDBManagementAPI": API,
    "StageName": STAGE,
}


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template((cloudformation_dir() / "template.yaml").read_text())


def _rendered(value):
    """The template's !Sub strings filled in as CloudFormation would for this stack."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return re.sub(r"\$\{([^}]+)\}", lambda m: _SUBSTITUTIONS[m[1]], value["Fn::Sub"])
    if isinstance(value, dict):
        return {k: _rendered(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rendered(v) for v in value]
    return value


def test_the_stack_ships_the_same_user_policy_as_plldb_policy(template):
    resource = template["Resources"]["PLLDBUserPolicy"]
    assert resource["Type"] == "AWS::IAM::ManagedPolicy"
    shipped = _rendered(resource["Properties"]["PolicyDocument"])
    assert shipped == user_policy(REGION, ACCOUNT, API, STAGE)
    output = template["Outputs"]["UserPolicyArn"]
    assert output["Value"] == {"Ref": "PLLDBUserPolicy"}
    assert output["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-UserPolicyArn"}


def test_the_user_policy_holds_exactly_the_calls_attach_and_detach_make():
    document = user_policy(REGION, ACCOUNT, API)
    statements = {s["Sid"]: (s["Action"], s["Resource"]) for s in document["Statement"]}
    assert statements == {
        "ReadPlldbStackOutputs": (
            ["cloudformation:DescribeStacks"],
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/plldb/*",
        ),
        "ListTargetStackFunctions": (
            ["cloudformation:ListStackResources"],
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/*/*",
        ),
        # The offline REST gateway evaluates this one; the ARN's form is checked here too.
        "CreateSession": (
            ["execute-api:Invoke"],
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/{STAGE}/POST/sessions",
        ),
        "Status": (
            ["execute-api:Invoke"],
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/{STAGE}/GET/sessions",
        ),
        "Detach": (
            ["execute-api:Invoke"],
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/{STAGE}/POST/sessions/detach",
        ),
        "ReportRestore": (
            ["lambda:GetFunctionConfiguration"],
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:*",
        ),
    }


_API = f"arn:aws:execute-api:{REGION}:{ACCOUNT}"
_FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"
_STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/app/1"


@pytest.mark.parametrize(
    ("action", "resource", "allowed"),
    [
        ("execute-api:Invoke", f"{_API}:{API}/live/POST/sessions", True),
        ("execute-api:Invoke", f"{_API}:{API}/live/GET/sessions", True),
        ("execute-api:Invoke", f"{_API}:{API}/live/DELETE/sessions", False),
        ("execute-api:Invoke", f"{_API}:other/live/POST/sessions", False),
        ("cloudformation:DescribeStacks", _STACK, False),
        ("lambda:UpdateFunctionConfiguration", _FN, False),
        ("lambda:GetFunctionConfiguration", _FN.replace(REGION, "us-east-1"), False),
    ],
)  # fmt: skip
def test_the_user_policy_allows_nothing_else(action, resource, allowed):
    document = json.dumps(user_policy(REGION, ACCOUNT, API, STAGE))
    assert evaluate([document], RequestContext(action, resource)).allowed is allowed


def test_the_bootstrap_policy_passes_roles_only_to_lambda_and_only_its_own():
    statements = {s["Sid"]: s for s in bootstrap_policy(REGION, ACCOUNT)["Statement"]}
    passing = statements["PassStackRoles"]
    assert passing["Action"] == ["iam:PassRole"]
    assert passing["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/plldb-*"
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    assert statements["ArtifactBucket"]["Resource"] == (
        f"arn:aws:s3:::plldb-core-infrastructure-{REGION}-{ACCOUNT}"
    )
    assert all(s["Resource"] != "*" for s in statements.values())
    assert all(not a.endswith(":*") for s in statements.values() for a in s["Action"])


def test_partitions():
    assert partition_of("cn-north-1") == "aws-cn"
    assert partition_of("us-gov-west-1") == "aws-us-gov"
    assert user_policy("cn-north-1", ACCOUNT)["Statement"][0]["Resource"].startswith("arn:aws-cn:")

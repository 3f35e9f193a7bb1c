"""The repair that puts a role's inline policy again when moto left `${Api}` literal in it."""

from __future__ import annotations

import json

from plldb.local.repairs import Repairer
from plldb.local.resolver import DeployedStack

_SUB = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/live/POST/*"


class _Iam:
    """moto's answers: one policy with the API id left literal, one resolved."""

    def __init__(self, stored: dict[str, str]) -> None:
        self.stored = stored
        self.put: dict[str, dict] = {}

    def get_role_policy(self, RoleName: str, PolicyName: str) -> dict:
        return {"PolicyDocument": self.stored[PolicyName]}

    def put_role_policy(self, RoleName: str, PolicyName: str, PolicyDocument: str) -> None:
        self.put[PolicyName] = json.loads(PolicyDocument)


def _stack() -> DeployedStack:
    def policy(name: str) -> dict:
        statement = {"Effect": "Allow", "Action": "execute-api:ManageConnections",
                     "Resource": {"Fn::Sub": _SUB}}  # fmt: skip
        return {"PolicyName": name, "PolicyDocument": {"Statement": [statement]}}

    template = {"Resources": {
        "Api": {"Type": "AWS::ApiGatewayV2::Api"},
        "Role": {"Type": "AWS::IAM::Role",
                 "Properties": {"Policies": [policy("literal"), policy("fine")]}},
    }}  # fmt: skip
    physical, overrides = {"Role": "s-Role-1"}, {"Api": "abc123"}
    return DeployedStack("s", "arn:stack", "eu-west-1", "123456789012", template,
                         physical_ids=physical, overrides=overrides)  # fmt: skip


def test_a_policy_naming_an_unbuilt_api_is_put_resolved_and_a_resolved_one_is_left():
    resolved = json.dumps({"Resource": "arn:aws:execute-api:eu-west-1:1:abc/live"})
    iam = _Iam({"literal": "{'Resource': 'arn:aws:execute-api:eu-west-1:1:${Api}/live'}",
                "fine": resolved})  # fmt: skip
    done = Repairer(lambda service: iam).resolve_role_policies(_stack(), {})
    assert done == ["Role: policy literal resolved"]
    (statement,) = iam.put["literal"]["Statement"]
    assert statement["Resource"] == (
        "arn:aws:execute-api:eu-west-1:123456789012:abc123/live/POST/*"
    )

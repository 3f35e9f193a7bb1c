"""Evaluates CloudFormation intrinsic functions against a stack deployed in the offline cloud."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

_PARTITION = "aws"
_URL_SUFFIX = "amazonaws.com"
_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


class ResolveError(Exception):
    """An intrinsic the offline cloud cannot evaluate; the message names it."""


@dataclass
class DeployedStack:
    """What the offline cloud knows of one deployed stack."""

    name: str
    stack_id: str
    region: str
    account_id: str
    template: dict
    parameters: dict[str, str] = field(default_factory=dict)
    physical_ids: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    # Values the offline cloud decides itself (ids of resources moto does not build, repaired ARNs).
    overrides: dict[str, str] = field(default_factory=dict)
    attribute_overrides: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict]:
        return self.template.get("Resources", {})

    def of_type(self, resource_type: str) -> dict[str, dict]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == resource_type}


def stand_in_id(stack_name: str, logical_id: str, length: int = 10) -> str:
    """A stable id, like API Gateway's, for a resource moto does not build."""
    digest = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    number = int(digest, 16)
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split and Fn::If."""

    def __init__(self, stack: DeployedStack) -> None:
        self.stack = stack
        self.conditions = stack.template.get("Conditions", {})

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                parts = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(parts[0], self.resolve(parts[1]))
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::Join":
                separator, items = argument
                return str(self.resolve(separator)).join(str(i) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(self.resolve(separator))
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if key.startswith("Fn::") or key == "Condition":
                raise ResolveError(f"{key} is not supported by the offline cloud")
        return {k: self.resolve(v) for k, v in value.items()}

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.stack.region,
            "AWS::AccountId": self.stack.account_id,
            "AWS::StackName": self.stack.name,
            "AWS::StackId": self.stack.stack_id,
            "AWS::Partition": _PARTITION,
            "AWS::URLSuffix": _URL_SUFFIX,
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.stack.overrides:
            return self.stack.overrides[name]
        if name in self.stack.parameters:
            return self.stack.parameters[name]
        if self.stack.physical_ids.get(name):
            return self.stack.physical_ids[name]
        if name in self.stack.resources:
            raise ResolveError(f"{name}: moto built no physical resource to refer to")
        raise ResolveError(f"Ref to unknown name {name}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if (logical_id, attribute) in self.stack.attribute_overrides:
            return self.stack.attribute_overrides[(logical_id, attribute)]
        resource = self.stack.resources.get(logical_id)
        if resource is None:
            raise ResolveError(f"Fn::GetAtt of unknown resource {logical_id}")
        kind = resource.get("Type")
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return self.function_arn(self.ref(logical_id))
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return (
                f"arn:{_PARTITION}:dynamodb:{self.stack.region}:{self.stack.account_id}"
                f":table/{self.ref(logical_id)}"
            )
        if kind == "AWS::Events::Rule" and attribute == "Arn":
            return (
                f"arn:{_PARTITION}:events:{self.stack.region}:{self.stack.account_id}"
                f":rule/{self.ref(logical_id)}"
            )
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:{_PARTITION}:iam::{self.stack.account_id}:role/{self.ref(logical_id)}"
        if kind == "AWS::KMS::Key" and attribute == "Arn":
            return (
                f"arn:{_PARTITION}:kms:{self.stack.region}:{self.stack.account_id}"
                f":key/{self.ref(logical_id)}"
            )
        if kind == "AWS::KMS::Key" and attribute == "KeyId":
            return self.ref(logical_id)
        if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            return (
                f"arn:{_PARTITION}:logs:{self.stack.region}:{self.stack.account_id}"
                f":log-group:{self.ref(logical_id)}:*"
            )
        if kind == "AWS::ApiGatewayV2::Api" and attribute == "ApiEndpoint":
            scheme = (
                "wss"
                if resource.get("Properties", {}).get("ProtocolType") == "WEBSOCKET"
                else "https"
            )
            return (
                f"{scheme}://{self.ref(logical_id)}.execute-api.{self.stack.region}.{_URL_SUFFIX}"
            )
        if kind == "AWS::ApiGatewayV2::Api" and attribute == "ApiId":
            return self.ref(logical_id)
        raise ResolveError(f"Fn::GetAtt {logical_id}.{attribute} ({kind}) is not supported offline")

    def sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}
        else:
            text, variables = argument, {}

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise ResolveError(f"unknown condition {name}")
        return bool(self._evaluate(self.conditions[name]))

    def _evaluate(self, expression: Any) -> Any:
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, argument),) = expression.items()
            if key == "Fn::Equals":
                left, right = (self._evaluate(a) for a in argument)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self._evaluate(argument[0])
            if key == "Fn::And":
                return all(self._evaluate(a) for a in argument)
            if key == "Fn::Or":
                return any(self._evaluate(a) for a in argument)
            if key == "Condition":
                return self.condition(argument)
        return self.resolve(expression)

    def function_arn(self, name: str) -> str:
        return (
            f"arn:{_PARTITION}:lambda:{self.stack.region}:{self.stack.account_id}:function:{name}"
        )

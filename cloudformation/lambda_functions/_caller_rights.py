"""May this caller debug these functions? Asked of IAM's policy simulator. Stdlib and boto3 only.

A session hands its debugger every event and the environment of the functions it covers (and,
with `functionRole`, their execution role's keys), so the management API opens one only for a
caller who could change those functions itself: `lambda:UpdateFunctionConfiguration` on each,
and `iam:PassRole` on each function's role when the role's keys are asked for. The caller is
the IAM identity API Gateway authenticated (`requestContext.identity.userArn`); its policies are
evaluated by `iam:SimulatePrincipalPolicy` (docs/security.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import _instrumentation as plan
import _stack_functions
from botocore.exceptions import ClientError

UPDATE_FUNCTION = "lambda:UpdateFunctionConfiguration"
PASS_ROLE = "iam:PassRole"  # noqa: S105 - an action name
_USER_OR_ROLE = re.compile(r"arn:(?P<partition>aws[-a-z]*):iam::(?P<account>\d{12}):(user|role)/.+")
_ASSUMED_ROLE = re.compile(
    r"arn:(?P<partition>aws[-a-z]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+"
)


class NotAllowed(Exception):
    """The caller may not open this session; the message says why, in one line."""


@dataclass(frozen=True)
class Wanted:
    """What the session would cover: function ARNs and, with `functionRole`, their roles."""

    functions: list[str]
    roles: list[str]


def principal(identity: dict[str, Any], account_id: str, iam: Any) -> str:
    """The IAM user or role ARN whose policies decide: an assumed role's session is its role."""
    caller = str(identity.get("userArn") or "")
    user_or_role = _USER_OR_ROLE.fullmatch(caller)
    assumed = _ASSUMED_ROLE.fullmatch(caller)
    match = user_or_role or assumed
    if match is None:
        raise NotAllowed(
            f"plldb cannot check the rights of caller {caller or '(unknown)'}: "
            "attach as an IAM user or an IAM role session"
        )
    if match["account"] != account_id:
        raise NotAllowed(f"Caller {caller} is not in account {account_id}, which owns the stack")
    if user_or_role is not None:
        return caller
    # The session ARN drops the role's path; the role's own ARN has it.
    return str(iam.get_role(RoleName=assumed["role"])["Role"]["Arn"])


def denied(iam: Any, source_arn: str, action: str, resources: list[str]) -> list[str]:
    """The resources on which the simulated policies do not allow `action` (all, if unanswered)."""
    if not resources:
        return []
    allowed: set[str] = set()
    refused: set[str] = set()
    paginator = iam.get_paginator("simulate_principal_policy")
    pages = paginator.paginate(
        PolicySourceArn=source_arn, ActionNames=[action], ResourceArns=resources
    )
    for page in pages:
        for result in page.get("EvaluationResults", []):
            if result.get("EvalActionName", "").lower() != action.lower():
                continue
            specific = result.get("ResourceSpecificResults") or [
                {
                    "EvalResourceName": result.get("EvalResourceName"),
                    "EvalResourceDecision": result.get("EvalDecision"),
                }
            ]
            # An SCP or permissions boundary that denies ends the evaluation at the top level.
            top_allowed = result.get("EvalDecision") == "allowed"
            for one in specific:
                name = str(one.get("EvalResourceName"))
                if top_allowed and one.get("EvalResourceDecision") == "allowed":
                    allowed.add(name)
                else:
                    refused.add(name)
    return [resource for resource in resources if resource in refused or resource not in allowed]


def check(iam: Any, source_arn: str, stack_name: str, wanted: Wanted) -> None:
    """Raise NotAllowed unless the principal may change every function (and pass every role)."""
    for action, resources in ((UPDATE_FUNCTION, wanted.functions), (PASS_ROLE, wanted.roles)):
        refused = denied(iam, source_arn, action, resources)
        if refused:
            more = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
            raise NotAllowed(
                f"{source_arn} may not debug stack {stack_name}: it lacks {action} on "
                f"{refused[0]}{more}, and plldb opens a session only for a caller who could "
                "change those functions itself"
            )


def wanted(
    cloudformation: Any,
    lambda_client: Any,
    stack_arn: str,
    globs: list[str],
    function_role: bool,
) -> Wanted:
    """The functions a session on this stack would cover (as the instrumentation finds them)."""
    _, partition, _, region, account, _ = stack_arn.split(":", 5)
    names = [
        name
        for name, logical_id in _stack_functions.discover(cloudformation, stack_arn)
        if plan.matches(name, logical_id, globs) and not plan.is_plldb_function(name)
    ]
    functions = [f"arn:{partition}:lambda:{region}:{account}:function:{name}" for name in names]
    roles: list[str] = []
    if function_role:
        for name in names:
            try:
                role = lambda_client.get_function_configuration(FunctionName=name).get("Role")
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
                continue  # deleted outside the stack: nothing of it can be relayed
            if role and role not in roles:
                roles.append(str(role))
    return Wanted(functions, roles)

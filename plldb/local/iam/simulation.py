"""IAM SimulatePrincipalPolicy, which moto lacks, answered with the offline cloud's evaluator.

"SimulatePrincipalPolicy" (IAM API Reference,
https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html) evaluates
the identity policies of a user (and its groups), group or role for each action on each
resource. Here every (action, resource) pair is one EvaluationResult with one
ResourceSpecificResult, decided by plldb/local/iam/policy.py on the policies in force now (so
IAM propagation delays apply). Strict: an unknown principal is NoSuchEntity, a condition on a
key the evaluator does not know never holds. With `strict=False` (a lenient offline cloud,
which allows everything) every pair is allowed.
"""

from __future__ import annotations

import threading
from typing import Any

from plldb.local.iam import propagation
from plldb.local.iam.identities import Identity
from plldb.local.iam.policy import Decision, RequestContext, evaluate

_DECISIONS = {
    Decision.ALLOW: "allowed",
    Decision.EXPLICIT_DENY: "explicitDeny",
    Decision.IMPLICIT_DENY: "implicitDeny",
}
_lock = threading.Lock()
_modes: list[bool] = []  # one per install, the latest decides: strict (enforcing) or lenient


def install(strict: bool = True) -> None:
    """Teach moto's IAM the operation (counted, like the enforcement hook)."""
    from moto.iam.responses import IamResponse

    with _lock:
        if not _modes:
            IamResponse.simulate_principal_policy = _simulate_principal_policy
        _modes.append(strict)


def uninstall() -> None:
    from moto.iam.responses import IamResponse

    with _lock:
        _modes.pop()
        if not _modes:
            del IamResponse.simulate_principal_policy


def _strict() -> bool:
    return _modes[-1] if _modes else True


def simulate(
    source_arn: str,
    actions: list[str],
    resources: list[str],
    context: dict[str, object] | None = None,
) -> list[dict[str, Any]]:
    """The EvaluationResults for every action on every resource, as IAM returns them."""
    strict = _strict()
    policies = _principal_policies(source_arn) if strict else []
    keys = {**_principal_keys(source_arn), **(context or {})}
    results = []
    for action in actions:
        for resource in resources or ["*"]:
            decision = (
                evaluate(policies, RequestContext(action, resource, keys))
                if strict
                else Decision.ALLOW
            )
            answer = _DECISIONS[decision]
            results.append(
                {
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": answer,
                    "MatchedStatements": [],
                    "MissingContextValues": [],
                    "ResourceSpecificResults": [
                        {"EvalResourceName": resource, "EvalResourceDecision": answer}
                    ],
                }
            )
    return results


def _simulate_principal_policy(self: Any) -> Any:
    from moto.core.responses import ActionResult

    context = {}
    for entry in self._get_param("ContextEntries", []) or []:
        values = entry.get("ContextKeyValues") or []
        plural = str(entry.get("ContextKeyType", "")).endswith("List")
        context[entry["ContextKeyName"]] = values if plural else (values[0] if values else None)
    results = simulate(
        self._get_param("PolicySourceArn"),
        list(self._get_param("ActionNames", []) or []),
        list(self._get_param("ResourceArns", []) or []),
        context,
    )
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


def _parse(source_arn: str) -> tuple[str, str, str]:
    """(account, kind, name) of an IAM user, group or role ARN (any path)."""
    from moto.iam.exceptions import IAMException

    class InvalidInput(IAMException):
        code = "InvalidInput"

    parts = source_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or "/" not in parts[5]:
        raise InvalidInput(f"PolicySourceArn {source_arn} is not a user, group or role")
    kind, _, path = parts[5].partition("/")
    if kind not in ("user", "group", "role"):
        raise InvalidInput(f"PolicySourceArn {source_arn} is not a user, group or role")
    return parts[4], kind, path.rsplit("/", 1)[-1]


def _principal_policies(source_arn: str) -> list[str]:
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends

    account, kind, name = _parse(source_arn)
    backend = iam_backends[account]["aws"]
    if kind == "group":
        group = backend.groups.get(name)
        if group is None:
            raise NotFoundException(f"The group with name {name} cannot be found.")
        return [
            *(d for p, d in group.policies.items() if _seen(account, name, p)),
            *(
                _default_version(m)
                for a, m in group.managed_policies.items()
                if _seen(account, name, a)
            ),
        ]
    if kind == "user" and name not in backend.users:
        raise NotFoundException(f"The user with name {name} cannot be found.")
    if kind == "role":
        backend.get_role(name)  # raises NoSuchEntity for an unknown role
    return Identity(source_arn, account, "", None, kind, name).policies()


def _seen(account: str, group: str, policy: str) -> bool:
    return propagation.in_effect(account, "group", group, policy)


def _principal_keys(source_arn: str) -> dict[str, object]:
    parts = source_arn.split(":", 5)
    keys: dict[str, object] = {"aws:PrincipalArn": source_arn}
    if len(parts) == 6:
        keys["aws:PrincipalAccount"] = parts[4]
        if parts[5].startswith("user/"):
            keys["aws:username"] = parts[5].rsplit("/", 1)[-1]
            keys["aws:PrincipalType"] = "User"
        elif parts[5].startswith("role/"):
            keys["aws:PrincipalType"] = "AssumedRole"
    return keys


def _default_version(policy: Any) -> str:
    for version in policy.versions:
        if version.version_id == policy.default_version_id:
            return version.document
    return "{}"

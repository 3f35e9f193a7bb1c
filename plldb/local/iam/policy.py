"""Evaluating IAM policies the documented way, without AWS.

The order is AWS's ("Policy evaluation logic", IAM User Guide): an explicit Deny in any policy
wins; otherwise any Allow allows; otherwise the request is implicitly denied.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

ContextValue = str | bool | int | float | Sequence[str]


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


@dataclass(frozen=True)
class RequestContext:
    """One authorization question: may the principal do `action` on `resource`?"""

    action: str  # "service:Operation"
    resource: str  # an ARN, or "*" for actions without resource-level permissions
    keys: Mapping[str, ContextValue] = field(default_factory=dict)  # condition keys present

    def value(self, key: str) -> ContextValue | None:
        # Condition key names are case-insensitive; their values are not.
        wanted = key.lower()
        for name, value in self.keys.items():
            if name.lower() == wanted:
                return value
        return None


def parse_document(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """A policy as IAM and moto store it: a dict, JSON text, or URL-encoded JSON text."""
    if isinstance(document, Mapping):
        return dict(document)
    text = document.strip()
    if not text.startswith("{"):
        text = unquote(text)
    return json.loads(text)


def statements(document: str | Mapping[str, Any]) -> list[dict[str, Any]]:
    found = parse_document(document).get("Statement", [])
    return [found] if isinstance(found, Mapping) else list(found)


def evaluate(policies: Iterable[str | Mapping[str, Any]], request: RequestContext) -> Decision:
    """Identity-policy evaluation: explicit Deny, then Allow, else implicit deny."""
    allowed = False
    for policy in policies:
        for statement in statements(policy):
            if not statement_applies(statement, request):
                continue
            if statement.get("Effect") == "Deny":
                return Decision.EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def statement_applies(statement: Mapping[str, Any], request: RequestContext) -> bool:
    """Action, Resource and Condition all match (Principal is for resource policies)."""
    if not _element_matches(statement, "Action", request.action, action_matches):
        return False
    if ("Resource" in statement or "NotResource" in statement) and not _element_matches(
        statement, "Resource", request.resource, resource_matches
    ):
        return False
    return conditions_hold(statement.get("Condition", {}), request)


def _element_matches(statement: Mapping[str, Any], name: str, value: str, match: Any) -> bool:
    if name in statement:
        return any(match(pattern, value) for pattern in _as_list(statement[name]))
    if f"Not{name}" in statement:
        return not any(match(pattern, value) for pattern in _as_list(statement[f"Not{name}"]))
    return False


def action_matches(pattern: str, action: str) -> bool:
    return _wildcard(pattern.lower()).fullmatch(action.lower()) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    if pattern == "*":
        return True
    if resource == "*":
        return False  # a statement scoped to ARNs does not cover an unscoped action
    return _wildcard(pattern).fullmatch(resource) is not None


@functools.lru_cache(maxsize=4096)
def _wildcard(pattern: str) -> re.Pattern[str]:
    # Not fnmatch: it would also read [...] as a class, and IAM knows only * and ?.
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


# ---------------------------------------------------------------- conditions
def conditions_hold(condition: Mapping[str, Mapping[str, Any]], request: RequestContext) -> bool:
    """Every operator block holds; within one, every key; within a key, any value.

    A key absent from the request makes a positive operator false and a negated one true
    (AWS's rule); `...IfExists` makes it true; keys the offline cloud does not know are absent.
    """
    for operator, tests in condition.items():
        for key, expected in tests.items():
            if not _condition_holds(operator, request.value(key), _as_list(expected)):
                return False
    return True


def _condition_holds(operator: str, present: ContextValue | None, expected: list[Any]) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    if name == "Null":
        return str(expected[0]).lower() == ("true" if present is None else "false")
    compare, negated = _OPERATORS.get(name, (None, False))
    if compare is None:
        return False  # an operator we cannot evaluate grants nothing
    if present is None:
        if qualifier == "ForAllValues":
            return True
        return if_exists or (negated and qualifier != "ForAnyValue")
    values = list(present) if isinstance(present, (list, tuple)) else [present]
    if qualifier == "ForAllValues":
        return all(_one_value(compare, negated, value, expected) for value in values)
    return any(_one_value(compare, negated, value, expected) for value in values)


def _one_value(compare: Any, negated: bool, value: ContextValue, expected: list[Any]) -> bool:
    matched = any(compare(value, candidate) for candidate in expected)
    return not matched if negated else matched


def _string_equals(value: Any, expected: Any) -> bool:
    return _text(value) == _text(expected)


def _string_equals_ignore_case(value: Any, expected: Any) -> bool:
    return _text(value).lower() == _text(expected).lower()


def _string_like(value: Any, expected: Any) -> bool:
    return _wildcard(_text(expected)).fullmatch(_text(value)) is not None


def _arn_like(value: Any, expected: Any) -> bool:
    # ARN operators compare the six colon-separated parts one by one, wildcards per part.
    got, want = _text(value).split(":", 5), _text(expected).split(":", 5)
    if len(got) != 6 or len(want) != 6:
        return False
    return all(_wildcard(w).fullmatch(g) is not None for g, w in zip(got, want, strict=True))


def _bool(value: Any, expected: Any) -> bool:
    return _text(value).lower() == _text(expected).lower()


def _numeric(test: Any) -> Any:
    def compare(value: Any, expected: Any) -> bool:
        try:
            return test(float(value), float(expected))
        except (TypeError, ValueError):
            return False

    return compare


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool, False),
    "NumericEquals": (_numeric(lambda a, b: a == b), False),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False),
}


# ---------------------------------------------------------------- trust policies
@dataclass(frozen=True)
class Caller:
    """Who signed a request, as a trust policy's Principal names it."""

    arn: str  # user ARN, or the role ARN of an assumed-role session
    account_id: str
    service: str | None = None  # "lambda.amazonaws.com" when a service assumes the role


def principal_matches(principal: Any, caller: Caller) -> tuple[bool, bool]:
    """(matches, names the caller itself): an account root grants only with identity policy."""
    if principal == "*":
        return True, False
    if not isinstance(principal, Mapping):
        return False, False
    if caller.service is not None:
        return caller.service in _as_list(principal.get("Service", [])), True
    for entry in _as_list(principal.get("AWS", [])):
        if entry == "*":
            return True, False
        if entry in (caller.account_id, f"arn:aws:iam::{caller.account_id}:root"):
            return True, False
        if entry == caller.arn:
            return True, True
    return False, False


def trust_decision(
    trust_policy: str | Mapping[str, Any], caller: Caller, request: RequestContext
) -> tuple[Decision, bool]:
    """The role's trust policy for this caller; and whether an Allow named the caller itself."""
    allowed = named = False
    for statement in statements(trust_policy):
        matches, by_name = principal_matches(statement.get("Principal"), caller)
        if "NotPrincipal" in statement:
            matches, by_name = not principal_matches(statement["NotPrincipal"], caller)[0], False
        if not matches or not statement_applies(statement, request):
            continue
        if statement.get("Effect") == "Deny":
            return Decision.EXPLICIT_DENY, False
        if statement.get("Effect") == "Allow":
            allowed, named = True, named or by_name
    return (Decision.ALLOW if allowed else Decision.IMPLICIT_DENY), named

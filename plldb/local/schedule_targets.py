"""What a scheduled rule or schedule sends to a Lambda target, and whether it may.

The event is EventBridge's "Scheduled Event" (EventBridge events detail reference,
https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-events.html); a rule needs a
resource-based permission on the function for events.amazonaws.com ("Using resource-based
policies for Amazon EventBridge",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from plldb.local.iam.policy import (
    Caller,
    RequestContext,
    principal_matches,
    statement_applies,
    statements,
)

EVENTS_PRINCIPAL = "events.amazonaws.com"


class TargetError(Exception):
    """A target the offline cloud does not deliver to; the message says why."""


@dataclass(frozen=True)
class Target:
    """One target of a rule (Targets[]) or of a schedule (Target)."""

    id: str
    arn: str
    input: str | None = None  # literal JSON that replaces the event
    input_path: str | None = None
    input_transformer: bool = False
    role_arn: str | None = None


def scheduled_event(rule_arn: str, account: str, region: str, moment: datetime) -> dict[str, Any]:
    """The event EventBridge sends for a scheduled rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def payload_for(target: Target, event: Mapping[str, Any]) -> bytes:
    """The bytes the target receives: the event, its `Input`, or the part `InputPath` picks."""
    if target.input_transformer:
        raise TargetError("InputTransformer is not supported offline")
    if target.input is not None:
        try:
            json.loads(target.input)
        except ValueError as error:
            raise TargetError(f"its Input is not valid JSON: {error}") from None
        return target.input.encode()
    if target.input_path is not None:
        return json.dumps(_select(event, target.input_path)).encode()
    return json.dumps(event).encode()


def _select(event: Mapping[str, Any], path: str) -> Any:
    """A JSONPath of plain member names ($, $.detail, $.resources[0] is not followed)."""
    if path == "$":
        return event
    if not path.startswith("$."):
        raise TargetError(f"InputPath {path!r}: only $ and $.member.member are followed offline")
    value: Any = event
    for name in path[2:].split("."):
        if not isinstance(value, Mapping) or name not in value:
            raise TargetError(f"InputPath {path!r} selects nothing in the event")
        value = value[name]
    return value


def events_may_invoke(
    policy: str | Mapping[str, Any] | None, function_arn: str, source_arn: str, account: str
) -> bool:
    """Does the function's resource policy let EventBridge invoke it for rule `source_arn`?"""
    if policy is None:
        return False
    caller = Caller(
        arn=f"arn:aws:iam::{account}:root", account_id=account, service=EVENTS_PRINCIPAL
    )
    request = RequestContext(
        action="lambda:InvokeFunction",
        resource=function_arn,
        keys={"aws:SourceArn": source_arn, "aws:SourceAccount": account},
    )
    allowed = False
    for statement in statements(policy):
        if not principal_matches(statement.get("Principal"), caller)[0]:
            continue
        if not statement_applies(statement, request):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed

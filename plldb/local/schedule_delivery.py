"""Delivers one run of a rule or schedule to its Lambda targets, as EventBridge would."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plldb.local.function_store import FunctionNotFoundError, parse_function_ref
from plldb.local.iam.policy import Caller, RequestContext, evaluate, trust_decision
from plldb.local.schedule_sources import Job
from plldb.local.schedule_targets import (
    EVENTS_PRINCIPAL,
    Target,
    TargetError,
    events_may_invoke,
    payload_for,
    scheduled_event,
)

log = logging.getLogger(__name__)
SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"


@dataclass(frozen=True)
class Outcome:
    """What became of one target on one run."""

    job: str
    target: str
    function: str
    invoked: bool
    reason: str = ""


class Delivery:
    """Checks each target's permission and invokes its function asynchronously (Event)."""

    def __init__(
        self,
        clients: Callable[[str], Any],
        invoke: Callable[[str, bytes], Any],
        account_id: str,
        region: str,
    ) -> None:
        """`invoke(function_arn, payload)` starts an Event invocation and returns at once."""
        self.clients = clients
        self.invoke = invoke
        self.account_id = account_id
        self.region = region
        self._told: set[tuple[str, str, str]] = set()  # each refusal is a warning once

    def deliver(self, job: Job, moment: datetime) -> list[Outcome]:
        event = scheduled_event(job.arn, self.account_id, self.region, moment)
        outcomes = [self._one(job, target, event) for target in job.targets]
        for outcome in outcomes:
            if outcome.invoked:
                log.info("%s %s: invoked %s", job.kind, job.name, outcome.function)
            else:
                key = (job.arn, outcome.target, outcome.reason)
                level = logging.DEBUG if key in self._told else logging.WARNING
                self._told.add(key)
                log.log(
                    level,
                    "%s %s: target %s not invoked: %s",
                    job.kind,
                    job.name,
                    outcome.target,
                    outcome.reason,
                )
        return outcomes

    def _one(self, job: Job, target: Target, event: dict[str, Any]) -> Outcome:
        def refused(reason: str) -> Outcome:
            return Outcome(job.name, target.id, target.arn, False, reason)

        if ":lambda:" not in target.arn or ":function:" not in target.arn:
            return refused(f"{target.arn}: only Lambda function targets are run offline")
        try:
            ref = parse_function_ref(target.arn, self.region, self.account_id)
            payload = payload_for(target, event)
        except FunctionNotFoundError:
            return refused(f"{target.arn} is not a valid Lambda function ARN")
        except TargetError as error:
            return refused(str(error))
        why_not = (
            self._rule_may_invoke(ref.name, ref.qualifier, ref.arn, job.arn)
            if job.kind == "rule"
            else self._role_may_invoke(target.role_arn, ref.arn)
        )
        if why_not:
            return refused(why_not)
        try:
            self.invoke(ref.arn, payload)
        except Exception as error:  # a missing function fails this target, not the clock
            return refused(f"Invoke failed: {error}")
        return Outcome(job.name, target.id, ref.arn, True)

    def _rule_may_invoke(
        self, name: str, qualifier: str | None, function_arn: str, rule_arn: str
    ) -> str:
        """'' when allowed, else why not: AWS needs a Lambda permission for the rule."""
        arguments = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
        try:
            policy = json.loads(self.clients("lambda").get_policy(**arguments)["Policy"])
        except Exception:  # ResourceNotFoundException: the function has no policy at all
            policy = None
        if events_may_invoke(policy, function_arn, rule_arn, self.account_id):
            return ""
        return (
            f"no Lambda permission lets {EVENTS_PRINCIPAL} "
            f"invoke {function_arn} for {rule_arn} (AWS fails such an invocation silently)"
        )

    def _role_may_invoke(self, role_arn: str | None, function_arn: str) -> str:
        """'' when allowed: Scheduler assumes the target's role, which must allow the call."""
        from plldb.local.iam.identities import Identity, role_trust_policy

        if not role_arn:
            return "the schedule's target has no RoleArn"
        trust = role_trust_policy(role_arn)
        assume = RequestContext("sts:AssumeRole", role_arn)
        caller = Caller(
            f"arn:aws:iam::{self.account_id}:root", self.account_id, SCHEDULER_PRINCIPAL
        )
        if trust is None or not trust_decision(trust, caller, assume)[0].allowed:
            return f"role {role_arn} does not exist or does not trust {SCHEDULER_PRINCIPAL}"
        role = Identity(role_arn, self.account_id, "", None, "role", role_arn.split("/")[-1])
        invoke = RequestContext("lambda:InvokeFunction", function_arn)
        if not evaluate(role.policies(), invoke).allowed:
            return f"role {role_arn} is not allowed lambda:InvokeFunction on {function_arn}"
        return ""

"""The scheduled rules and schedules of the account, read through moto's EventBridge APIs.

moto builds AWS::Events::Rule resources of a stack itself (with their targets resolved), so a
rule made by CloudFormation and one made by PutRule/PutTargets are read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plldb.local.schedule_targets import Target


@dataclass(frozen=True)
class Job:
    """One thing that runs on a schedule: a rule ("rule") or a Scheduler schedule ("schedule")."""

    kind: str
    name: str
    arn: str
    expression: str
    enabled: bool
    targets: tuple[Target, ...]
    timezone: str = "UTC"
    group: str = "default"


def read_rules(events: Any) -> list[Job]:
    """Every rule with a ScheduleExpression on the default bus, with its targets."""
    jobs = []
    for rule in _pages(events.list_rules, "Rules"):
        if not rule.get("ScheduleExpression"):
            continue  # an event-pattern rule: nothing to run on a clock
        targets = tuple(
            Target(
                id=target["Id"],
                arn=target["Arn"],
                input=target.get("Input"),
                input_path=target.get("InputPath"),
                input_transformer="InputTransformer" in target,
                role_arn=target.get("RoleArn"),
            )
            for target in _pages(events.list_targets_by_rule, "Targets", Rule=rule["Name"])
        )
        jobs.append(
            Job(
                kind="rule",
                name=rule["Name"],
                arn=rule["Arn"],
                expression=rule["ScheduleExpression"],
                enabled=rule.get("State", "ENABLED") == "ENABLED",
                targets=targets,
            )
        )
    return jobs


def read_schedules(scheduler: Any) -> list[Job]:
    """Every EventBridge Scheduler schedule, as GetSchedule describes it."""
    jobs = []
    for summary in _pages(scheduler.list_schedules, "Schedules"):
        found = scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
        target = found.get("Target", {})
        jobs.append(
            Job(
                kind="schedule",
                name=found["Name"],
                arn=found["Arn"],
                expression=found["ScheduleExpression"],
                enabled=found.get("State", "ENABLED") == "ENABLED",
                targets=(
                    Target(
                        id=found["Name"],
                        arn=target.get("Arn", ""),
                        input=target.get("Input"),
                        role_arn=target.get("RoleArn"),
                    ),
                ),
                timezone=found.get("ScheduleExpressionTimezone") or "UTC",
                group=found.get("GroupName", "default"),
            )
        )
    return jobs


def _pages(operation: Any, key: str, **arguments: Any) -> list[dict]:
    items: list[dict] = []
    token = None
    while True:
        answer = operation(**arguments, **({"NextToken": token} if token else {}))
        items.extend(answer.get(key, []))
        token = answer.get("NextToken")
        if not token:
            return items

"""AWS::Scheduler::Schedule resources, which moto's CloudFormation does not build.

Each is created (or updated) through moto's EventBridge Scheduler API as the stack settles, so
the offline cloud's clock runs it like a schedule made with CreateSchedule; a schedule the
template no longer declares, or whose stack is deleted, is deleted. `Ref` is the schedule's
name and `GetAtt Arn` its ARN, as in CloudFormation's resource reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from plldb.local.resolver import DeployedStack, ResolveError, Resolver, stand_in_id

RESOURCE_TYPE = "AWS::Scheduler::Schedule"
# CloudFormation property -> the CreateSchedule member of the same meaning
_MEMBERS = ("Description", "EndDate", "FlexibleTimeWindow", "GroupName", "KmsKeyArn",
            "ScheduleExpression", "ScheduleExpressionTimezone", "StartDate", "State",
            "Target")  # fmt: skip

Schedule = tuple[str, str]  # (group, name)


class SchedulerRepairs:
    """Per offline cloud: the schedules it built for each stack."""

    def __init__(self, clients: Callable[[str], Any]) -> None:
        self.clients = clients
        self._built: dict[str, set[Schedule]] = {}  # stack id -> schedules

    def apply(self, stack: DeployedStack, endpoints: Any) -> list[str]:
        scheduler = self.clients("scheduler")
        resolver = Resolver(stack)
        wanted: set[Schedule] = set()
        done = []
        for logical_id, resource in stack.of_type(RESOURCE_TYPE).items():
            try:
                if "Condition" in resource and not resolver.condition(resource["Condition"]):
                    continue
                properties = resolver.resolve(resource.get("Properties", {}))
            except ResolveError as error:
                done.append(f"{logical_id}: schedule not built ({error})")
                continue
            name = str(
                properties.get("Name") or f"{stack.name}-{stand_in_id(stack.name, logical_id)}"
            )
            request = {key: properties[key] for key in _MEMBERS if key in properties}
            group = str(request.setdefault("GroupName", "default"))
            try:
                arn = self._put(scheduler, name, request)
            except ClientError as error:
                done.append(f"{logical_id}: schedule {name} not built ({error})")
                continue
            wanted.add((group, name))
            stack.overrides[logical_id] = name
            stack.attribute_overrides[(logical_id, "Arn")] = arn
            if (group, name) not in self._built.get(stack.stack_id, set()):
                done.append(f"{logical_id}: schedule {arn}")
        for group, name in sorted(self._built.get(stack.stack_id, set()) - wanted):
            done.extend(_delete(scheduler, group, name))
        self._built[stack.stack_id] = wanted
        return done

    def forget(self, stack_id: str) -> list[str]:
        """The stack is deleted: so are its schedules."""
        scheduler = self.clients("scheduler")
        done = []
        for group, name in sorted(self._built.pop(stack_id, set())):
            done.extend(_delete(scheduler, group, name))
        return done

    @staticmethod
    def _put(scheduler: Any, name: str, request: dict[str, Any]) -> str:
        try:
            scheduler.get_schedule(Name=name, GroupName=request["GroupName"])
        except scheduler.exceptions.ResourceNotFoundException:
            return scheduler.create_schedule(Name=name, **request)["ScheduleArn"]
        return scheduler.update_schedule(Name=name, **request)["ScheduleArn"]


def _delete(scheduler: Any, group: str, name: str) -> list[str]:
    try:
        scheduler.delete_schedule(Name=name, GroupName=group)
    except scheduler.exceptions.ResourceNotFoundException:
        return []
    return [f"schedule {group}/{name} deleted with its resource"]

"""A scripted CloudFormation client for what moto cannot play: failures, rollbacks, busy stacks.

moto finishes every operation synchronously, never rolls back and emits two stack-level events,
so these paths are driven by a script of (status, events) states revealed one per poll.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from botocore.exceptions import ClientError

STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/plldb/1"
_clock = itertools.count()


def event(
    logical_id: str, status: str, reason: str = "", resource_type: str = "AWS::Lambda::Function"
):
    return (logical_id, resource_type, status, reason)


def _error(operation: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": "ValidationError", "Message": message}}, operation)


class _EventPaginator:
    def __init__(self, owner: ScriptedCloudFormation) -> None:
        self.owner = owner

    def paginate(self, StackName: str):
        events = self.owner.raw_events
        for start in range(0, len(events), 2):  # tiny pages, so paging is exercised
            yield {"StackEvents": events[start : start + 2]}


class ScriptedCloudFormation:
    def __init__(self, status: str | None = None, history: int = 0) -> None:
        self.status = status
        self.raw_events: list[dict] = []  # newest first, like the API
        self.scripts: dict[str, list[list]] = {}
        self.pending: list = []
        self.calls: list[str] = []
        self.update_error: ClientError | None = None
        self.outputs = [{"OutputKey": "WebSocketURL", "OutputValue": "wss://example/live"}]
        for index in range(history):
            self._add_event(event(f"Old{index}", "UPDATE_COMPLETE"))

    def script(self, operation: str, *states: tuple[str, list]) -> None:
        self.scripts.setdefault(operation, []).append(list(states))

    # --- the client API StackOperator uses
    def describe_stacks(self, StackName: str) -> dict:
        if self.pending:
            status, events = self.pending.pop(0)
            self.status = status
            for item in events:
                self._add_event(item)
        if self.status is None or (self.status == "DELETE_COMPLETE" and StackName == "plldb"):
            raise _error("DescribeStacks", f"Stack with id {StackName} does not exist")
        stack = {"StackId": STACK_ID, "StackName": "plldb", "StackStatus": self.status}
        if self.status.endswith("COMPLETE") and "ROLLBACK" not in self.status:
            stack["Outputs"] = self.outputs
        return {"Stacks": [stack]}

    def describe_stack_events(self, StackName: str) -> dict:
        return {"StackEvents": self.raw_events[:2]}

    def get_paginator(self, name: str) -> _EventPaginator:
        assert name == "describe_stack_events"
        return _EventPaginator(self)

    def create_stack(self, **kwargs) -> dict:
        self.calls.append("create")
        self._start("create", "CREATE_IN_PROGRESS")
        return {"StackId": STACK_ID}

    def update_stack(self, **kwargs) -> dict:
        self.calls.append("update")
        if self.update_error:
            raise self.update_error
        self._start("update", "UPDATE_IN_PROGRESS")
        return {"StackId": STACK_ID}

    def delete_stack(self, **kwargs) -> None:
        self.calls.append("delete")
        self._start("delete", "DELETE_IN_PROGRESS")

    # --- helpers
    def _start(self, operation: str, status: str) -> None:
        self.status = status
        self._add_event(event("plldb", status, "User Initiated", "AWS::CloudFormation::Stack"))
        self.pending = self.scripts[operation].pop(0)

    def _add_event(self, item: tuple) -> None:
        logical_id, resource_type, status, reason = item
        number = next(_clock)
        raw = {
            "EventId": f"event-{number}",
            "Timestamp": datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=number),
            "LogicalResourceId": logical_id,
            "ResourceType": resource_type,
            "ResourceStatus": status,
        }
        if reason:
            raw["ResourceStatusReason"] = reason
        self.raw_events.insert(0, raw)


def no_updates_error() -> ClientError:
    return _error("UpdateStack", "No updates are to be performed.")

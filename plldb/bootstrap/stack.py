"""Creates, updates and deletes a CloudFormation stack and follows its events until it settles."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plldb.aws import aws_errors, error_code, error_message
from plldb.errors import DeployError

log = logging.getLogger(__name__)

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
# A failed first create leaves a stack that can only be deleted; so does an unexecuted change set.
_RECREATE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "REVIEW_IN_PROGRESS"}
_CREATE_OK = {"CREATE_COMPLETE"}
_UPDATE_OK = {"UPDATE_COMPLETE"}
_DELETE_OK = {"DELETE_COMPLETE"}


@dataclass(frozen=True)
class StackEvent:
    timestamp: datetime
    logical_id: str
    resource_type: str
    status: str
    reason: str

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")

    @property
    def completed(self) -> bool:
        return self.status.endswith("_COMPLETE")


@dataclass(frozen=True)
class DeployResult:
    action: str  # "created", "recreated", "updated" or "unchanged"
    status: str
    outputs: dict[str, str]


class StackOperator:
    """Owns one stack's lifecycle through a CloudFormation client it is given."""

    def __init__(
        self,
        cloudformation: Any,
        stack_name: str,
        on_event: Callable[[StackEvent], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
        poll_seconds: float = 3.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfn = cloudformation
        self.stack_name = stack_name
        self.on_event = on_event or (lambda event: None)
        self.on_notice = on_notice or (lambda message: None)
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    def describe(self, stack: str | None = None) -> dict | None:
        """The stack's description, or None when it does not exist."""
        from botocore.exceptions import ClientError

        with aws_errors(f"describing stack {self.stack_name}"):
            try:
                stacks = self.cfn.describe_stacks(StackName=stack or self.stack_name)["Stacks"]
            except ClientError as error:
                if error_code(error) == "ValidationError" and "does not exist" in error_message(
                    error
                ):
                    return None
                raise
        return stacks[0] if stacks else None

    def deploy(
        self,
        template_url: str,
        tags: dict[str, str] | None = None,
        parameters: dict[str, str] | None = None,
        defaults: dict[str, str] | None = None,
    ) -> DeployResult:
        """Create the stack, or update it; a failed first create is deleted and created again.

        `parameters` set template parameters; on an update, the others keep their values
        (`defaults`: the template's, which need not be repeated)."""
        stack = self.describe()
        recreated = False
        if stack and stack["StackStatus"] in _RECREATE:
            self.on_notice(
                f"Stack {self.stack_name} is in {stack['StackStatus']} after a failed create: "
                "deleting it and creating it again"
            )
            self._delete(stack)
            stack, recreated = None, True
        if stack:
            self._refuse_if_busy(stack)
            # Without the template's defaults or new values, the parameters are not sent, so
            # each takes its default as on any UpdateStack (moto's UsePreviousValue knows only
            # values given explicitly before).
            chosen = (
                _update_parameters(stack, parameters or {}, defaults or {})
                if parameters or defaults is not None
                else None
            )
            return self._update(stack, template_url, tags or {}, chosen)
        result = self._create(template_url, tags or {}, parameters or {})
        return DeployResult(
            "recreated" if recreated else result.action, result.status, result.outputs
        )

    def destroy(self) -> bool:
        """Delete the stack and wait. False when there was nothing to delete."""
        stack = self.describe()
        if stack is None:
            return False
        if stack["StackStatus"] != "DELETE_IN_PROGRESS":
            self._refuse_if_busy(stack)
        self._delete(stack)
        return True

    def _create(
        self, template_url: str, tags: dict[str, str], parameters: dict[str, str]
    ) -> DeployResult:
        token = _token("create")
        with aws_errors(f"creating stack {self.stack_name}"):
            stack_id = self.cfn.create_stack(
                StackName=self.stack_name,
                TemplateURL=template_url,
                Capabilities=CAPABILITIES,
                OnFailure="ROLLBACK",
                ClientRequestToken=token,
                Tags=_tag_list(tags),
                Parameters=[
                    {"ParameterKey": key, "ParameterValue": value}
                    for key, value in sorted(parameters.items())
                ],
            )["StackId"]
        status, failures = self._wait(stack_id, marker=None)
        if status not in _CREATE_OK:
            raise DeployError(
                f"Creating stack {self.stack_name} failed ({status}); run "
                "`plldb bootstrap setup` again after fixing the cause",
                failures,
            )
        return DeployResult("created", status, self._outputs(stack_id))

    def _update(
        self,
        stack: dict,
        template_url: str,
        tags: dict[str, str],
        parameters: list[dict[str, Any]] | None,
    ) -> DeployResult:
        from botocore.exceptions import ClientError

        stack_id = stack["StackId"]
        marker = self._latest_event_id(stack_id)
        with aws_errors(f"updating stack {self.stack_name}"):
            try:
                self.cfn.update_stack(
                    StackName=stack_id,
                    TemplateURL=template_url,
                    Capabilities=CAPABILITIES,
                    ClientRequestToken=_token("update"),
                    Tags=_tag_list(tags),
                    **({} if parameters is None else {"Parameters": parameters}),
                )
            except ClientError as error:
                if "No updates are to be performed" in error_message(error):
                    return DeployResult("unchanged", stack["StackStatus"], _outputs_of(stack))
                raise
        status, failures = self._wait(stack_id, marker)
        if status not in _UPDATE_OK:
            raise DeployError(
                f"Updating stack {self.stack_name} failed ({status}); CloudFormation rolled "
                "back, so the previous stack is still in place",
                failures,
            )
        return DeployResult("updated", status, self._outputs(stack_id))

    def _delete(self, stack: dict) -> None:
        stack_id = stack["StackId"]
        marker = self._latest_event_id(stack_id)
        if stack["StackStatus"] != "DELETE_IN_PROGRESS":
            with aws_errors(f"deleting stack {self.stack_name}"):
                self.cfn.delete_stack(StackName=stack_id, ClientRequestToken=_token("delete"))
        status, failures = self._wait(stack_id, marker)
        if status not in _DELETE_OK:
            raise DeployError(
                f"Deleting stack {self.stack_name} failed ({status}); fix the resources named "
                "above (for example a non-empty bucket), then run the command again",
                failures,
            )

    def _refuse_if_busy(self, stack: dict) -> None:
        status = stack["StackStatus"]
        if status.endswith("_IN_PROGRESS"):
            raise DeployError(
                f"Stack {self.stack_name} is busy ({status}): wait until CloudFormation "
                "finishes that operation, then run the command again"
            )
        if status == "UPDATE_ROLLBACK_FAILED":
            raise DeployError(
                f"Stack {self.stack_name} is in UPDATE_ROLLBACK_FAILED: continue the rollback "
                f"(aws cloudformation continue-update-rollback --stack-name {self.stack_name}), "
                "then run the command again"
            )

    def _wait(self, stack_id: str, marker: str | None) -> tuple[str, list[str]]:
        """Follow events until the stack leaves *_IN_PROGRESS; returns the status and failures."""
        failures: list[str] = []
        seen: set[str] = set()
        try:
            while True:
                stack = self.describe(stack_id)
                status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
                for event in self._new_events(stack_id, marker, seen):
                    if event.failed and event.reason:
                        failures.append(f"{event.logical_id} ({event.status}): {event.reason}")
                    self.on_event(event)
                if not status.endswith("_IN_PROGRESS"):
                    unsuccessful = "FAILED" in status or "ROLLBACK" in status
                    if unsuccessful and not failures and stack and stack.get("StackStatusReason"):
                        failures.append(stack["StackStatusReason"])
                    return status, failures
                self.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            raise DeployError(
                f"Interrupted: CloudFormation carries on with stack {self.stack_name} and rolls "
                "back by itself if it fails; run `plldb bootstrap setup` again when it is done"
            ) from None

    def _latest_event_id(self, stack_id: str) -> str | None:
        with aws_errors(f"reading events of stack {self.stack_name}"):
            events = self.cfn.describe_stack_events(StackName=stack_id).get("StackEvents", [])
        return events[0]["EventId"] if events else None

    def _new_events(self, stack_id: str, marker: str | None, seen: set[str]) -> list[StackEvent]:
        """Events after `marker` not reported yet, oldest first."""
        fresh = []
        with aws_errors(f"reading events of stack {self.stack_name}"):
            paginator = self.cfn.get_paginator("describe_stack_events")
            for page in paginator.paginate(StackName=stack_id):
                done = False
                for raw in page.get("StackEvents", []):  # newest first
                    if raw["EventId"] == marker or raw["EventId"] in seen:
                        done = True
                        break
                    fresh.append(raw)
                if done:
                    break
        fresh.reverse()
        seen.update(raw["EventId"] for raw in fresh)
        return [
            StackEvent(
                timestamp=raw["Timestamp"],
                logical_id=raw.get("LogicalResourceId", ""),
                resource_type=raw.get("ResourceType", ""),
                status=raw.get("ResourceStatus", ""),
                reason=raw.get("ResourceStatusReason", ""),
            )
            for raw in fresh
        ]

    def _outputs(self, stack_id: str) -> dict[str, str]:
        stack = self.describe(stack_id)
        return _outputs_of(stack) if stack else {}


def _outputs_of(stack: dict) -> dict[str, str]:
    return {item["OutputKey"]: item.get("OutputValue", "") for item in stack.get("Outputs", [])}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def _token(operation: str) -> str:
    return f"plldb-{operation}-{uuid.uuid4()}"


def _update_parameters(
    stack: dict, chosen: dict[str, str], defaults: dict[str, str]
) -> list[dict[str, Any]]:
    """The chosen values; every other parameter keeps its previous value. One that equals the
    template's default is left out (it gets the same value), which also spares moto, whose
    UsePreviousValue knows only the values given explicitly before."""
    previous = [
        {"ParameterKey": parameter["ParameterKey"], "UsePreviousValue": True}
        for parameter in stack.get("Parameters", [])
        if parameter["ParameterKey"] not in chosen
        and defaults.get(parameter["ParameterKey"]) != parameter.get("ParameterValue")
    ]
    given = [
        {"ParameterKey": key, "ParameterValue": value} for key, value in sorted(chosen.items())
    ]
    return previous + given

"""The Lambda functions of a stack and its nested stacks. Standalone: stdlib and boto3 only."""

from __future__ import annotations

from typing import Any


def discover(cloudformation: Any, stack_name: str) -> list[tuple[str, str]]:
    """(function name, logical id) of every function in the stack and its nested stacks."""
    found: dict[str, str] = {}
    pending, seen = [stack_name], set()
    paginator = cloudformation.get_paginator("list_stack_resources")
    while pending:
        stack = pending.pop(0)
        if stack in seen:
            continue
        seen.add(stack)
        for page in paginator.paginate(StackName=stack):
            for resource in page.get("StackResourceSummaries", []):
                physical_id = resource.get("PhysicalResourceId")
                if not physical_id or str(resource.get("ResourceStatus", "")).startswith("DELETE"):
                    continue
                if resource["ResourceType"] == "AWS::Lambda::Function":
                    found.setdefault(physical_id, resource["LogicalResourceId"])
                elif resource["ResourceType"] == "AWS::CloudFormation::Stack":
                    pending.append(physical_id)  # the nested stack's id
    return list(found.items())

"""Keeps the Lambda permissions of a stack in step with its template across updates.

moto builds an AWS::Lambda::Permission once, at create, and never again: an update that
replaces the rule it names (moto gives an updated AWS::Events::Rule a new name) leaves the
permission pointing at a rule that no longer exists, where AWS keeps the two in step.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from plldb.local.resolver import DeployedStack, ResolveError, Resolver


def sync_permissions(stack: DeployedStack, lambda_client: Any) -> list[str]:
    """Add each permission the template declares and the function's policy lacks."""
    resolver = Resolver(stack)
    done = []
    for logical_id, resource in stack.of_type("AWS::Lambda::Permission").items():
        try:
            wanted = resolver.resolve(resource.get("Properties", {}))
        except ResolveError as error:
            done.append(f"{logical_id}: left as moto made it ({error})")
            continue
        function, principal = str(wanted.get("FunctionName", "")), wanted.get("Principal")
        source_arn = wanted.get("SourceArn")
        if not function or not isinstance(principal, str) or source_arn is None:
            continue  # only permissions scoped to a source can go stale this way
        if _granted(lambda_client, function, principal, str(source_arn)):
            continue
        digest = hashlib.sha256(str(source_arn).encode()).hexdigest()[:8]
        arguments = {
            "FunctionName": function,
            "StatementId": f"{logical_id}-{digest}",
            "Action": str(wanted.get("Action", "lambda:InvokeFunction")),
            "Principal": principal,
            "SourceArn": str(source_arn),
        }
        if wanted.get("SourceAccount"):
            arguments["SourceAccount"] = str(wanted["SourceAccount"])
        lambda_client.add_permission(**arguments)
        done.append(f"{logical_id}: permission for {source_arn} set from the template")
    return done


def _granted(lambda_client: Any, function: str, principal: str, source_arn: str) -> bool:
    try:
        policy = json.loads(lambda_client.get_policy(FunctionName=function)["Policy"])
    except Exception:  # no policy yet
        return False
    for statement in policy.get("Statement", []):
        granted_to = statement.get("Principal")
        service = granted_to.get("Service") if isinstance(granted_to, dict) else granted_to
        sources = [
            value
            for test in statement.get("Condition", {}).values()
            for key, value in test.items()
            if key.lower() == "aws:sourcearn"
        ]
        if service == principal and source_arn in sources:
            return True
    return False

"""What debug sessions still have instrumented, read from PLLDBSessions before a destroy."""

from __future__ import annotations

from typing import Any

from plldb.aws import aws_errors

SESSIONS_TABLE = "PLLDBSessions"


def instrumented_functions(dynamodb: Any) -> dict[str, list[str]]:
    """Stack name -> functions a session still records as instrumented (none: {})."""
    from botocore.exceptions import ClientError

    found: dict[str, set[str]] = {}
    with aws_errors(f"reading {SESSIONS_TABLE} to check that nothing is instrumented"):
        try:
            pages = list(
                dynamodb.get_paginator("scan").paginate(
                    TableName=SESSIONS_TABLE,
                    ProjectionExpression="StackName, Instrumented",
                    ConsistentRead=True,
                )
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return {}
            raise
    for page in pages:
        for item in page.get("Items", []):
            recorded = item.get("Instrumented", {}).get("M") or {}
            if recorded:
                stack = item.get("StackName", {}).get("S", "?")
                found.setdefault(stack, set()).update(recorded)
    return {stack: sorted(names) for stack, names in sorted(found.items())}

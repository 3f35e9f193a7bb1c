"""Helpers shared by plldb's Lambda functions; packaged into each zip that imports it.

Runs in the Lambda Python runtime: standard library and boto3 only, nothing from plldb.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

# Header names (lower case) whose values are credentials or signatures: never logged.
_SECRET_HEADERS = frozenset({"authorization", "x-amz-security-token", "cookie", "x-api-key"})
_SECRET_IDENTITY_FIELDS = frozenset({"accessKey", "caller", "user"})
REDACTED = "***"


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    return logger


def json_response(status_code: int, body: Any, headers: dict[str, str] | None = None) -> dict:
    """An API Gateway proxy response with a JSON body."""
    return {
        "statusCode": status_code,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body),
    }


def short_id(value: Any) -> str:
    """The first 8 characters of an id: enough to follow it in the logs, not enough to use it."""
    return str(value)[:8] if value else "-"


def redacted(event: dict[str, Any]) -> dict[str, Any]:
    """A copy of an API Gateway event that is safe to log: no signatures, tokens or keys."""
    safe = dict(event)
    for key in ("headers", "multiValueHeaders"):
        if isinstance(safe.get(key), dict):
            safe[key] = {
                name: REDACTED if name.lower() in _SECRET_HEADERS else value
                for name, value in safe[key].items()
            }
    context = safe.get("requestContext")
    if isinstance(context, dict) and isinstance(context.get("identity"), dict):
        identity = {
            name: REDACTED if name in _SECRET_IDENTITY_FIELDS and value else value
            for name, value in context["identity"].items()
        }
        safe["requestContext"] = {**context, "identity": identity}
    return safe

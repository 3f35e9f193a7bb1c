"""Helpers shared by plldb's Lambda functions; packaged into each zip that imports it.

Runs in the Lambda Python runtime: standard library and boto3 only, nothing from plldb.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    return logger


def json_response(status_code: int, body: Any) -> dict:
    """An API Gateway proxy response with a JSON body."""
    return {
        "statusCode": status_code,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }

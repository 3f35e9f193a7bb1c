"""What the tests of plldb's Lambda functions share: the sessions table and one boto3 session."""

from __future__ import annotations

import functools
from typing import Any

import boto3

from plldb.bootstrap.render import load_template
from plldb.resources import cloudformation_dir


@functools.cache
def sessions_table_properties() -> dict[str, Any]:
    """PLLDBSessions as template.yaml declares it, so the tests follow the template's keys."""
    template = load_template((cloudformation_dir() / "template.yaml").read_text())
    return template["Resources"]["PLLDBSessions"]["Properties"]


@functools.cache
def shared_boto3_session(region: str) -> boto3.Session:
    """One boto3 session for every test: moto's fresh one per test reloads the service models.

    Safe because aws_env gives every test the same dummy credentials and region.
    """
    return boto3.Session(region_name=region)


def create_sessions_table(region: str) -> None:
    """PLLDBSessions in moto, with the key schema and indexes of template.yaml."""
    table = sessions_table_properties()
    boto3.client("dynamodb", region_name=region).create_table(
        TableName=table["TableName"],
        BillingMode=table["BillingMode"],
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
    )


def create_debugger_table(region: str) -> None:
    """PLLDBDebugger in moto, with the key schema of template.yaml."""
    template = load_template((cloudformation_dir() / "template.yaml").read_text())
    table = template["Resources"]["PLLDBDebugger"]["Properties"]
    boto3.client("dynamodb", region_name=region).create_table(
        TableName=table["TableName"],
        BillingMode=table["BillingMode"],
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
    )

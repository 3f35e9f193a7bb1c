"""stack_functions against moto: functions of a stack and of its nested stack, by logical path."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from plldb.attach.local_source import stack_functions
from plldb.errors import AwsOperationError
from tests.conftest import REGION

ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
}


def _function(handler: str) -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Handler": handler,
            "Runtime": "python3.12",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "def handler(event, context):\n    return event\n"},
        },
    }


def test_functions_of_a_stack_and_its_nested_stack(moto_aws):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="templates", CreateBucketConfiguration={"LocationConstraint": REGION})
    nested = {"Resources": {"Role": ROLE, "Orders": _function("app.handler")}}
    s3.put_object(Bucket="templates", Key="nested.json", Body=json.dumps(nested))
    root = {
        "Resources": {
            "Role": ROLE,
            "Top": _function("top.handler"),
            "Api": {
                "Type": "AWS::CloudFormation::Stack",
                "Properties": {
                    "TemplateURL": f"https://templates.s3.{REGION}.amazonaws.com/nested.json"
                },
            },
        }
    }
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName="my-app", TemplateBody=json.dumps(root))

    functions = stack_functions(cloudformation, "my-app")

    assert sorted(functions.values()) == [("Api", "Orders"), ("Top",)]
    deployed = boto3.client("lambda", region_name=REGION).list_functions()["Functions"]
    assert set(functions) == {function["FunctionName"] for function in deployed}


def test_missing_stack_is_a_plldb_error(moto_aws):
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    with pytest.raises(AwsOperationError, match="no-such-stack"):
        stack_functions(cloudformation, "no-such-stack")


def _summary(logical_id: str, physical_id: str, kind: str, status: str = "CREATE_COMPLETE"):
    return {
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": physical_id,
        "ResourceType": kind,
        "ResourceStatus": status,
        "LastUpdatedTimestamp": "2024-01-01T00:00:00Z",
    }


def test_deleted_resources_are_skipped_and_pages_followed(aws_env):
    # moto never reports DELETE_* resource states, so this path is scripted with a Stubber.
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    nested_arn = f"arn:aws:cloudformation:{REGION}:123456789012:stack/my-app-Jobs-X/abc"
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "list_stack_resources",
            {
                "StackResourceSummaries": [
                    _summary("Old", "my-app-Old-1", "AWS::Lambda::Function", "DELETE_COMPLETE"),
                    _summary("Jobs", nested_arn, "AWS::CloudFormation::Stack"),
                ],
                "NextToken": "page-2",
            },
            {"StackName": "my-app"},
        )
        stub.add_response(
            "list_stack_resources",
            {
                "StackResourceSummaries": [
                    _summary("Live", "my-app-Live-2", "AWS::Lambda::Function")
                ]
            },
            {"StackName": nested_arn},
        )
        stub.add_response(
            "list_stack_resources",
            {"StackResourceSummaries": [_summary("Top", "my-app-Top-3", "AWS::Lambda::Function")]},
            {"StackName": "my-app", "NextToken": "page-2"},
        )
        functions = stack_functions(cloudformation, "my-app")
        stub.assert_no_pending_responses()
    assert functions == {"my-app-Live-2": ("Jobs", "Live"), "my-app-Top-3": ("Top",)}

"""A SAM template deploys offline: functions, and AutoPublishAlias's version and alias."""

from __future__ import annotations

import json

import pytest

from plldb.bootstrap.packaging import build_zip
from plldb.local.cloud import OfflineCloud
from tests.e2e.support import client

pytestmark = pytest.mark.e2e

STACK = "sam-fixture"
FUNCTION = f"{STACK}-aliased"
BUCKET = "sam-fixture-code"
TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  CodeKey: {Type: String}
Resources:
  Aliased:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "${AWS::StackName}-aliased"
      Runtime: python3.12
      Handler: app.handler
      CodeUri: {Bucket: sam-fixture-code, Key: !Ref CodeKey}
      AutoPublishAlias: live
Outputs:
  AliasArn: {Value: !Ref AliasedAliaslive}
"""


def _code(answer: str) -> bytes:
    source = f"def handler(event, context):\n    return {answer!r}\n".encode()
    return build_zip([("app.py", source, 0o644)])


@pytest.fixture(scope="module")
def cloud():
    with OfflineCloud(poll_seconds=0.2) as running:
        s3 = client(running, "s3")
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": running.region}
        )
        s3.put_object(Bucket=BUCKET, Key="one.zip", Body=_code("one"))
        s3.put_object(Bucket=BUCKET, Key="two.zip", Body=_code("two"))
        yield running


def _deploy(cloud: OfflineCloud, key: str, update: bool) -> None:
    cfn = client(cloud, "cloudformation")
    arguments = {
        "StackName": STACK,
        "TemplateBody": TEMPLATE,
        "Parameters": [{"ParameterKey": "CodeKey", "ParameterValue": key}],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    }
    if update:
        cfn.update_stack(**arguments)
        cfn.get_waiter("stack_update_complete").wait(StackName=STACK)
    else:
        cfn.create_stack(**arguments)
        cfn.get_waiter("stack_create_complete").wait(StackName=STACK)


def _invoke(cloud: OfflineCloud, name: str) -> tuple[str, str]:
    answer = client(cloud, "lambda").invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in answer, answer["Payload"].read()
    return answer["ExecutedVersion"], json.loads(answer["Payload"].read())


def test_auto_publish_alias_publishes_a_version_and_routes_the_alias_to_it(cloud):
    _deploy(cloud, "one.zip", update=False)
    alias = client(cloud, "lambda").get_alias(FunctionName=FUNCTION, Name="live")
    assert alias["FunctionVersion"] == "1"
    assert _invoke(cloud, f"{FUNCTION}:live") == ("1", "one")


def test_new_code_publishes_the_next_version_and_the_old_one_keeps_its_code(cloud):
    _deploy(cloud, "two.zip", update=True)
    alias = client(cloud, "lambda").get_alias(FunctionName=FUNCTION, Name="live")
    assert alias["FunctionVersion"] == "2"
    assert _invoke(cloud, f"{FUNCTION}:live") == ("2", "two")
    assert _invoke(cloud, f"{FUNCTION}:1") == ("1", "one")


def test_a_template_the_translator_refuses_fails_the_create_with_its_reason(cloud):
    cfn = client(cloud, "cloudformation")
    broken = TEMPLATE.replace("Runtime: python3.12", "Runtime: python3.12\n      Events: 7")
    with pytest.raises(cfn.exceptions.ClientError, match="Transform AWS::Serverless-2016-10-31"):
        cfn.create_stack(
            StackName="sam-broken",
            TemplateBody=broken,
            Parameters=[{"ParameterKey": "CodeKey", "ParameterValue": "one.zip"}],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )

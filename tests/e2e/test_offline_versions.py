"""Versions, a weighted alias and a KMS-keyed function, deployed by CloudFormation offline."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import boto3
import pytest

from plldb.bootstrap.packaging import build_zip
from plldb.local.cloud import OfflineCloud
from tests.e2e.offline_fixture.deploy import _zip_dir
from tests.e2e.support import client, outputs

pytestmark = pytest.mark.e2e

STACK = "versions-fixture"
FUNCTION = f"{STACK}-versioned"
BUCKET = "versions-fixture-code"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cloud():
    with OfflineCloud(poll_seconds=0.2) as running:
        yield running


def _deploy(cloud, layer: str, label: str, second: str, update: bool = False) -> dict[str, str]:
    cfn = client(cloud, "cloudformation")
    arguments = {
        "StackName": STACK,
        "TemplateBody": (HERE / "versions_fixture" / "template.yaml").read_text(),
        "Parameters": [
            {"ParameterKey": "CodeBucket", "ParameterValue": BUCKET},
            {"ParameterKey": "Label", "ParameterValue": label},
            {"ParameterKey": "LayerArn", "ParameterValue": layer},
            {"ParameterKey": "SecondVersion", "ParameterValue": second},
        ],
        "Capabilities": ["CAPABILITY_IAM"],
    }
    if update:
        cfn.update_stack(**arguments)
        cfn.get_waiter("stack_update_complete").wait(StackName=STACK)
    else:
        cfn.create_stack(**arguments)
        cfn.get_waiter("stack_create_complete").wait(StackName=STACK)
    return outputs(cloud, STACK)


@pytest.fixture(scope="module")
def first(cloud) -> dict[str, str]:
    s3 = client(cloud, "s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": cloud.region})
    source = (HERE / "versions_fixture" / "versioned.py").read_bytes()
    s3.put_object(Bucket=BUCKET, Key="versions/versioned.zip",
                  Body=build_zip([("versioned.py", source, 0o644)]))  # fmt: skip
    layer = client(cloud, "lambda").publish_layer_version(
        LayerName="versions-wrapper",
        Content={"ZipFile": _zip_dir(HERE / "offline_fixture" / "layer")},
    )["LayerVersionArn"]
    return {**_deploy(cloud, layer, "one", "no"), "layer": layer}


def _invoke(cloud, name: str) -> tuple[str, dict]:
    answer = client(cloud, "lambda").invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in answer
    return answer["ExecutedVersion"], json.loads(answer["Payload"].read())


def test_a_version_refers_and_runs_as_cloudformation_published_it(cloud, first):
    assert first["FirstVersion"] == "1"
    assert first["FirstArn"].endswith(f":function:{FUNCTION}:1")
    executed, body = _invoke(cloud, first["FirstArn"])
    assert executed == "1"
    # Layers and variables are the template's: the version has the wrapper and the layer.
    assert body == {
        "label": "one",
        "version": "1",
        "wrapped_by": "fixture-wrapper",
        "layer": "fixture-layer",
        "invoked_arn": first["FirstArn"],
    }


def test_the_alias_is_built_and_runs_its_version(cloud, first):
    alias = client(cloud, "lambda").get_alias(FunctionName=FUNCTION, Name="live")
    assert alias["AliasArn"] == first["AliasArn"] == f"{first['FirstArn'][:-2]}:live"
    assert alias["FunctionVersion"] == "1"
    executed, body = _invoke(cloud, f"{FUNCTION}:live")
    assert (executed, body["label"], body["invoked_arn"]) == ("1", "one", first["AliasArn"])


def _reader_without_decrypt(cloud) -> object:
    """A Lambda client for a user who may read configurations but not kms:Decrypt."""
    iam = client(cloud, "iam")
    iam.create_user(UserName="config-reader")
    statement = {"Effect": "Allow", "Action": "lambda:GetFunctionConfiguration", "Resource": "*"}
    iam.put_user_policy(
        UserName="config-reader",
        PolicyName="read",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    key = iam.create_access_key(UserName="config-reader")["AccessKey"]
    env = cloud.environment()
    return boto3.client(
        "lambda",
        endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )


def test_the_keyed_functions_variables_are_hidden_but_it_runs_with_them(cloud, first):
    config = _reader_without_decrypt(cloud).get_function_configuration(FunctionName=FUNCTION)
    assert config["KMSKeyArn"] == first["KeyArn"]
    assert "Variables" not in config["Environment"]
    assert config["Environment"]["Error"]["ErrorCode"] == "AccessDeniedException"
    # The admin's policy allows kms:Decrypt: it sees them, as a caller with the right would.
    admin = client(cloud, "lambda").get_function_configuration(FunctionName=FUNCTION)
    assert admin["Environment"]["Variables"]["LABEL"] == "one"
    assert _invoke(cloud, FUNCTION)[1]["label"] == "one"


def test_an_update_adds_a_version_and_the_alias_splits_by_its_weight(cloud, first):
    _deploy(cloud, first["layer"], "two", "yes", update=True)
    versions = client(cloud, "lambda").list_versions_by_function(FunctionName=FUNCTION)
    assert [v["Version"] for v in versions["Versions"]] == ["$LATEST", "1", "2"]
    alias = client(cloud, "lambda").get_alias(FunctionName=FUNCTION, Name="live")
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    executed: collections.Counter[str] = collections.Counter()
    for _ in range(100):
        version, body = _invoke(cloud, f"{FUNCTION}:live")
        assert body["label"] == {"1": "one", "2": "two"}[version]
        assert body["wrapped_by"] == "fixture-wrapper"
        executed[version] += 1
    # Half of 100 each (standard deviation 5): 25..75 fails by chance about once in 10^6.
    assert 25 <= executed["2"] <= 75, executed
    assert _invoke(cloud, f"{FUNCTION}:1")[1]["label"] == "one"  # the old version is untouched

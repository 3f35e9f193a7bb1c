"""The bootstrap steps against moto: each alone, chained by setup, and destroy."""

from __future__ import annotations

import shutil

import pytest

from plldb import __version__
from plldb.bootstrap import steps
from plldb.bootstrap.names import bucket_name
from plldb.errors import MissingStepError, TemplateError
from plldb.resources import cloudformation_dir

PREFIX = f"plldb/versions/{__version__}/"
FUNCTIONS = {
    "plldb-restapi": "restapi",
    "plldb-websocket-authorize": "websocket_authorize",
    "plldb-websocket-connect": "websocket_connect",
    "plldb-websocket-disconnect": "websocket_disconnect",
    "plldb-websocket-default": "websocket_default",
    "plldb-instrumentation": "instrumentation",
    "plldb-sweeper": "sweeper",
}


@pytest.fixture
def sources(tmp_path):
    copy = tmp_path / "cloudformation"
    shutil.copytree(cloudformation_dir(), copy)
    return copy


def _keys(target, bucket):
    listing = target.client("s3").list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listing.get("Contents", [])}


def test_setup_creates_bucket_artifacts_template_and_stack(target, build, reporter):
    result = steps.setup(target, build, reporter)
    bucket = bucket_name(target.region, target.account_id)
    assert result.bucket == bucket and result.bucket_created
    assert _keys(target, bucket) == {
        *(f"{PREFIX}lambda_functions/{module}.zip" for module in FUNCTIONS.values()),
        f"{PREFIX}layer/plldb-debugger-layer.zip",
        f"{PREFIX}template.yaml",
    }
    assert result.template_url.endswith(f"/{bucket}/{PREFIX}template.yaml")
    assert result.deploy.action == "created"

    cfn = target.client("cloudformation")
    stack = cfn.describe_stacks(StackName="plldb")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {"Key": "plldb:version", "Value": __version__} in stack["Tags"]
    body = cfn.get_template(StackName="plldb")["TemplateBody"]
    assert "Transform" not in str(body)

    lambda_client = target.client("lambda")
    for function_name, module in FUNCTIONS.items():
        if function_name == "plldb-instrumentation":
            # Its PLLDB_LAYER_ARN is `!Ref` of a layer, which moto resolves to a Python object it
            # then cannot serialise; the offline cloud repairs it (tests/e2e cover that).
            continue
        config = lambda_client.get_function_configuration(FunctionName=function_name)
        assert config["Handler"] == f"{module}.handler"
        assert config["Runtime"] == "python3.13"
        assert config["Environment"]["Variables"]["SESSIONS_TABLE"] == "PLLDBSessions"

    dynamodb = target.client("dynamodb")
    sessions = dynamodb.describe_table(TableName="PLLDBSessions")["Table"]
    assert {i["IndexName"] for i in sessions["GlobalSecondaryIndexes"]} == {
        "GSI-StackName",
        "GSI-ConnectionId",
    }
    assert dynamodb.describe_table(TableName="PLLDBDebugger")["Table"]["KeySchema"] == [
        {"AttributeName": "RequestId", "KeyType": "HASH"}
    ]
    logs = target.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/plldb-")
    groups = {g["logGroupName"]: g.get("retentionInDays") for g in logs["logGroups"]}
    assert groups == {f"/aws/lambda/{name}": 14 for name in FUNCTIONS}
    outputs = result.deploy.outputs
    assert outputs["SessionsTableName"] == "PLLDBSessions"
    assert outputs["ManagementAPIURL"].startswith(
        f"https://{outputs['ManagementAPIId']}.execute-api."
    )
    assert any("Created bucket" in notice for notice in reporter.notices)
    assert any("CREATE_COMPLETE" in line for line in reporter.events)


def test_second_setup_uploads_nothing_and_keeps_object_versions(target, build, reporter):
    steps.setup(target, build, reporter)
    first = build.read_upload()
    second = steps.setup(target, build, reporter)
    assert second.bytes_uploaded == 0
    assert not second.bucket_created
    assert [a.version_id for a in build.read_upload().artifacts] == [
        a.version_id for a in first.artifacts
    ]
    assert target.client("cloudformation").describe_stacks(StackName="plldb")["Stacks"][0][
        "StackStatus"
    ] in {"UPDATE_COMPLETE", "CREATE_COMPLETE"}


def test_a_changed_function_under_the_same_version_reaches_the_deployed_function(
    target, build, reporter, sources
):
    steps.ensure_bucket(target, reporter)

    def run_steps():
        steps.package(build, reporter, sources)
        uploaded = steps.upload(target, build, reporter)
        steps.render(target, build, reporter, sources)
        steps.deploy(target, build, reporter)
        return uploaded

    run_steps()
    lambda_client = target.client("lambda")
    before = lambda_client.get_function_configuration(FunctionName="plldb-restapi")["CodeSha256"]
    unchanged = lambda_client.get_function_configuration(FunctionName="plldb-websocket-connect")
    with (sources / "lambda_functions" / "restapi.py").open("a") as handle:
        handle.write("\n# a fix shipped without a version bump\n")
    uploaded = run_steps()
    assert [a.name for a in uploaded.artifacts if a.uploaded] == ["lambda_functions/restapi.zip"]
    after = lambda_client.get_function_configuration(FunctionName="plldb-restapi")["CodeSha256"]
    assert after != before
    again = lambda_client.get_function_configuration(FunctionName="plldb-websocket-connect")
    assert again["CodeSha256"] == unchanged["CodeSha256"]
    rendered = build.rendered_template_text()
    restapi_version = build.read_upload().by_name()["lambda_functions/restapi.zip"].version_id
    assert f"S3ObjectVersion: {restapi_version}" in rendered


def test_each_step_alone_names_the_step_to_run_first(target, build, reporter):
    with pytest.raises(MissingStepError, match="run `plldb bootstrap package` first"):
        steps.upload(target, build, reporter)
    steps.package(build, reporter)
    with pytest.raises(MissingStepError, match="plldb bootstrap setup"):
        steps.upload(target, build, reporter)  # no bucket yet
    with pytest.raises(MissingStepError, match="run `plldb bootstrap upload` first"):
        steps.render(target, build, reporter)
    with pytest.raises(MissingStepError, match="run `plldb bootstrap render` first"):
        steps.deploy(target, build, reporter)
    steps.ensure_bucket(target, reporter)
    steps.upload(target, build, reporter)
    steps.render(target, build, reporter)
    assert steps.deploy(target, build, reporter).action == "created"


def test_a_new_package_makes_the_later_records_stale(target, build, reporter):
    steps.ensure_bucket(target, reporter)
    steps.package(build, reporter)
    steps.upload(target, build, reporter)
    steps.render(target, build, reporter)
    steps.package(build, reporter)
    with pytest.raises(MissingStepError, match="upload"):
        steps.render(target, build, reporter)


def test_a_tampered_artifact_is_refused(target, build, reporter):
    steps.ensure_bucket(target, reporter)
    record = steps.package(build, reporter)
    build.artifact_path(record.artifacts[0].name).write_bytes(b"not the packaged zip")
    with pytest.raises(MissingStepError, match="changed after packaging"):
        steps.upload(target, build, reporter)


def test_steps_refuse_records_from_another_region(target, build, reporter, monkeypatch):
    from plldb.aws import resolve_target

    steps.ensure_bucket(target, reporter)
    steps.package(build, reporter)
    steps.upload(target, build, reporter)
    other = resolve_target(region="us-west-2")
    with pytest.raises(MissingStepError, match="region eu-west-1, not us-west-2"):
        steps.render(other, build, reporter)


def test_a_template_with_a_syntax_error_stops_before_anything_is_uploaded(
    target, build, reporter, sources
):
    (sources / "template.yaml").write_text("Resources:\n  A: {Type: [\n")
    with pytest.raises(TemplateError, match=r"template\.yaml line"):
        steps.package(build, reporter, sources)
    assert not build.path.exists()


def test_destroy_keeps_bucket_and_artifacts_unless_all(target, build, reporter):
    steps.setup(target, build, reporter)
    bucket = bucket_name(target.region, target.account_id)
    result = steps.destroy(target, reporter)
    assert result.stack_deleted and result.bucket_deleted is None
    cfn = target.client("cloudformation")
    assert not [s for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"]
    assert f"{PREFIX}template.yaml" in _keys(target, bucket)

    again = steps.destroy(target, reporter)
    assert not again.stack_deleted
    assert "nothing to delete" in reporter.notices[-1]

    everything = steps.destroy(target, reporter, everything=True)
    assert everything.bucket_deleted is True and everything.versions_deleted >= 7
    assert bucket not in {b["Name"] for b in target.client("s3").list_buckets()["Buckets"]}
    assert steps.destroy(target, reporter, everything=True).bucket_deleted is False


def test_setup_after_destroy_all_builds_everything_again(target, build, reporter):
    steps.setup(target, build, reporter)
    steps.destroy(target, reporter, everything=True)
    # moto re-creates a deleted stack's tables when describe_stacks evaluates the Outputs that
    # refer to them (as our wait loop does); real CloudFormation does not. Remove the leftovers.
    dynamodb = target.client("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        dynamodb.delete_table(TableName=table)
    result = steps.setup(target, build, reporter)
    assert result.bucket_created and result.bytes_uploaded > 0
    assert result.deploy.action == "created"


def test_destroy_is_refused_while_a_session_records_instrumented_functions(target, build, reporter):
    from plldb.errors import DeployError

    steps.setup(target, build, reporter)
    table = target.client("dynamodb")
    table.put_item(
        TableName="PLLDBSessions",
        Item={
            "SessionId": {"S": "s-1"},
            "StackName": {"S": "my-app"},
            "Status": {"S": "CLOSED"},
            "Instrumented": {"M": {"my-app-orders": {"M": {"Timeout": {"N": "3"}}}}},
        },
    )
    with pytest.raises(DeployError) as refused:
        steps.destroy(target, reporter)
    assert "my-app: my-app-orders" in str(refused.value)
    assert "plldb detach --stack-name my-app" in str(refused.value)
    assert target.client("cloudformation").describe_stacks(StackName="plldb")["Stacks"]
    table.update_item(
        TableName="PLLDBSessions",
        Key={"SessionId": {"S": "s-1"}},
        UpdateExpression="SET Instrumented = :none",
        ExpressionAttributeValues={":none": {"M": {}}},
    )
    assert steps.destroy(target, reporter).stack_deleted

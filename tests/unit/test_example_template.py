"""The QR upload example's template, checked on the template itself: moto builds only part."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from plldb.bootstrap.render import load_template

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "qr-upload"
TEMPLATE_PATH = EXAMPLE_DIR / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(TEMPLATE_PATH.read_text(), str(TEMPLATE_PATH))


def _of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def test_cfn_lint_has_no_findings_including_informational():
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(TEMPLATE_PATH, config=ManualArgs(include_checks=["I"]))
    assert [str(match) for match in matches] == []


def test_parameters(template):
    parameters = template["Parameters"]
    assert set(parameters) == {"Environment", "ProjectName", "LambdaDeploymentBucket"}
    assert parameters["Environment"]["AllowedValues"] == ["dev", "prod"]
    assert parameters["Environment"]["Default"] == "dev"
    assert parameters["ProjectName"]["Default"] == "qr-upload"
    assert "Default" not in parameters["LambdaDeploymentBucket"]
    assert "Transform" not in template


def test_functions_point_plldb_at_existing_local_handlers(template):
    functions = _of_type(template, "AWS::Lambda::Function")
    expected = {
        "HttpApiLambda": ("${ProjectName}-http-api-${Environment}", "http_api_handler.zip"),
        "WebSocketEventLambda": (
            "${ProjectName}-websocket-event-${Environment}",
            "websocket_event_handler.zip",
        ),
    }
    assert set(functions) == set(expected)
    for logical_id, (name, key) in expected.items():
        properties = functions[logical_id]["Properties"]
        assert properties["FunctionName"] == {"Fn::Sub": name}
        assert properties["Runtime"] == "python3.12"
        assert properties["Handler"] == "lambda_function.lambda_handler"
        assert properties["Code"] == {"S3Bucket": {"Ref": "LambdaDeploymentBucket"}, "S3Key": key}
        source = EXAMPLE_DIR / functions[logical_id]["Metadata"]["plldb"]["SourceDir"]
        tree = ast.parse((source / "lambda_function.py").read_text())
        handlers = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert "lambda_handler" in handlers, logical_id


def test_function_code_imports_only_stdlib_and_boto3():
    import sys

    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore"}
    for path in (EXAMPLE_DIR / "src").rglob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        }
        assert imported <= allowed, (path, imported - allowed)


def test_environment_variables(template):
    http = template["Resources"]["HttpApiLambda"]["Properties"]["Environment"]["Variables"]
    assert http["SESSIONS_TABLE_NAME"] == {"Ref": "SessionsTable"}
    assert set(http) == {"SESSIONS_TABLE_NAME", "UPLOAD_BUCKET_NAME"}
    ws = template["Resources"]["WebSocketEventLambda"]["Properties"]["Environment"]["Variables"]
    assert ws["SESSIONS_TABLE_NAME"] == {"Ref": "SessionsTable"}
    assert ws["WS_API_ENDPOINT"] == {
        "Fn::Sub": "${WebSocketApi}.execute-api.${AWS::Region}.amazonaws.com/${Environment}"
    }


def test_upload_bucket_is_private_expiring_and_notifies_the_event_function(template):
    bucket = template["Resources"]["UploadBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 30
    assert bucket["CorsConfiguration"]["CorsRules"][0]["AllowedMethods"] == ["PUT", "POST"]
    (notification,) = bucket["NotificationConfiguration"]["LambdaConfigurations"]
    assert notification["Function"] == {"Fn::GetAtt": ["WebSocketEventLambda", "Arn"]}
    permissions = _of_type(template, "AWS::Lambda::Permission")
    principals = {p["Properties"]["Principal"] for p in permissions.values()}
    assert principals == {"s3.amazonaws.com", "apigateway.amazonaws.com"}


def test_sessions_table(template):
    table = template["Resources"]["SessionsTable"]["Properties"]
    assert table["TableName"] == {"Fn::Sub": "${ProjectName}-sessions-${Environment}"}
    assert table["KeySchema"] == [{"AttributeName": "sessionId", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"]["SSEEnabled"] is True


def test_roles_use_inline_policies_only_with_logs_scoped_to_their_log_group(template):
    roles = _of_type(template, "AWS::IAM::Role")
    assert set(roles) == {"HttpApiLambdaRole", "WebSocketEventLambdaRole"}
    assert "arn:aws:iam::aws:policy" not in json.dumps(template)
    assert not _of_type(template, "AWS::IAM::ManagedPolicy")
    log_groups = {"HttpApiLambdaRole": "HttpApiLambdaLogGroup"}
    log_groups["WebSocketEventLambdaRole"] = "WebSocketEventLambdaLogGroup"
    for logical_id, role in roles.items():
        assert "ManagedPolicyArns" not in role["Properties"]
        statements = [
            statement
            for policy in role["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
        ]
        logs = [s for s in statements if any(a.startswith("logs:") for a in s["Action"])]
        assert logs and all(
            s["Resource"] == {"Fn::GetAtt": [log_groups[logical_id], "Arn"]} for s in logs
        )
        assert all(s["Resource"] != "*" for s in statements)


def test_log_groups_are_named_for_the_functions(template):
    groups = _of_type(template, "AWS::Logs::LogGroup")
    names = {g["Properties"]["LogGroupName"]["Fn::Sub"] for g in groups.values()}
    assert names == {
        "/aws/lambda/${ProjectName}-http-api-${Environment}",
        "/aws/lambda/${ProjectName}-websocket-event-${Environment}",
    }
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {7}


def test_every_output_of_the_spec_is_exported(template):
    outputs = template["Outputs"]
    assert set(outputs) == {
        "WebsiteBucketName",
        "WebsiteURL",
        "UploadBucketName",
        "SessionsTableName",
        "HttpApiLambdaArn",
        "WebSocketEventLambdaArn",
        "WebSocketApiId",
    }
    for key, output in outputs.items():
        assert output["Export"]["Name"]["Fn::Sub"].startswith("${AWS::StackName}-"), key
    assert template["Resources"]["WebSocketApi"]["Properties"]["ProtocolType"] == "WEBSOCKET"

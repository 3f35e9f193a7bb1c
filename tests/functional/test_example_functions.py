"""The QR upload example's functions and deploy library against moto, loaded by path."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import quote_plus

import pytest

from tests.conftest import REGION

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "qr-upload"
TABLE = "qr-upload-sessions-test"
BUCKET = "qr-upload-uploads-test"
ACCOUNT = "123456789012"  # moto's default account


def _load(name: str, path: Path) -> ModuleType:
    """A fresh module each time, so no client cached by an earlier test outlives its moto."""
    sys.modules.pop(name, None)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, ...]]:
    import boto3

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)  # Lambda sets it; boto3 reads it
    monkeypatch.setenv("SESSIONS_TABLE_NAME", TABLE)
    monkeypatch.setenv("UPLOAD_BUCKET_NAME", BUCKET)
    monkeypatch.setenv("WS_API_ENDPOINT", f"abc123.execute-api.{REGION}.amazonaws.com/test")
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "sessionId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "sessionId", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    http = _load("qr_upload_http_api", EXAMPLE_DIR / "src" / "http_api" / "lambda_function.py")
    events = _load(
        "qr_upload_websocket_event",
        EXAMPLE_DIR / "src" / "websocket_event" / "lambda_function.py",
    )
    yield http, events
    sys.modules.pop("qr_upload_http_api", None)
    sys.modules.pop("qr_upload_websocket_event", None)


def _item(session_id: str) -> dict | None:
    import boto3

    return (
        boto3.resource("dynamodb").Table(TABLE).get_item(Key={"sessionId": session_id}).get("Item")
    )


def _http_v2(method: str, path: str, body: str | None = None, **extra) -> dict:
    event = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "isBase64Encoded": False,
        **extra,
    }
    if body is not None:
        event["body"] = body
    return event


def _rest_v1(method: str, path: str, body: str | None = None) -> dict:
    return {"httpMethod": method, "path": path, "body": body, "requestContext": {}}


def _s3_event(key: str) -> dict:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key)}},
            }
        ]
    }


def _ws_event(event_type: str, connection_id: str, body: str | None = None) -> dict:
    return {
        "requestContext": {
            "eventType": event_type,
            "connectionId": connection_id,
            "routeKey": "subscribe",
        },
        "body": body,
    }


def _create(http: ModuleType) -> dict:
    response = http.lambda_handler(_http_v2("POST", "/sessions", "{}"), None)
    assert response["statusCode"] == 201
    return json.loads(response["body"])


def _posted(connection_id: str) -> bytes:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    return apigatewaymanagementapi_backends[ACCOUNT][REGION].connections[connection_id].data


def test_post_sessions_stores_the_session_and_presigns_its_upload(app, capsys):
    http, _ = app
    created = _create(http)

    item = _item(created["sessionId"])
    assert item["status"] == "AWAITING_SCAN"
    assert item["expiresAt"] - item["createdAt"] == 1800
    assert created["expiresAt"] == item["expiresAt"]
    prefix = f"session-uploads/{created['sessionId']}/"
    assert created["uploadKey"].startswith(prefix) and created["uploadKey"].endswith(".jpg")
    assert BUCKET in created["uploadUrl"] and created["uploadKey"] in created["uploadUrl"]
    assert "X-Amz-Signature=" in created["uploadUrl"]
    assert f"http-api: created session {created['sessionId']}" in capsys.readouterr().out


def test_the_presigned_url_accepts_the_upload(app):
    import boto3
    import requests

    http, _ = app
    created = _create(http)
    # moto intercepts the request; nothing leaves the machine.
    put = requests.put(
        created["uploadUrl"],
        data=b"\xff\xd8jpeg",
        headers={"Content-Type": "image/jpeg"},
        timeout=10,
    )
    assert put.status_code == 200
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=created["uploadKey"])["Body"]
    assert body.read() == b"\xff\xd8jpeg"


def test_get_session_status_over_both_payload_versions(app):
    http, _ = app
    created = _create(http)
    session_id = created["sessionId"]

    v2 = http.lambda_handler(
        _http_v2("GET", f"/sessions/{session_id}", pathParameters={"sessionId": session_id}),
        None,
    )
    v1 = http.lambda_handler(_rest_v1("GET", f"/dev/sessions/{session_id}"), None)

    for response in (v2, v1):
        assert response["statusCode"] == 200
        assert json.loads(response["body"])["status"] == "AWAITING_SCAN"


def test_rest_post_with_a_base64_body(app):
    http, _ = app
    event = _rest_v1("POST", "/sessions", base64.b64encode(b'{"a": 1}').decode())
    event["isBase64Encoded"] = True
    assert http.lambda_handler(event, None)["statusCode"] == 201


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/sessions/no-such-session", None, 404),
        ("GET", "/elsewhere", None, 404),
        ("DELETE", "/sessions", None, 405),
        ("POST", "/sessions/abc", None, 405),
        ("POST", "/sessions", "{not json", 400),
        ("POST", "/sessions", "[1, 2]", 400),
    ],
)
def test_error_answers(app, method, path, body, status):
    http, _ = app
    response = http.lambda_handler(_http_v2(method, path, body), None)
    assert response["statusCode"] == status
    assert "message" in json.loads(response["body"])


def test_an_expired_session_is_not_found(app):
    import boto3

    http, _ = app
    session_id = _create(http)["sessionId"]
    boto3.resource("dynamodb").Table(TABLE).update_item(
        Key={"sessionId": session_id},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": 1},
    )
    response = http.lambda_handler(_http_v2("GET", f"/sessions/{session_id}"), None)
    assert response["statusCode"] == 404


def test_an_upload_marks_the_session_uploaded_and_notifies_its_connection(app, capsys):
    http, events = app
    created = _create(http)
    session_id = created["sessionId"]
    subscribe = json.dumps({"action": "subscribe", "sessionId": session_id})

    assert events.lambda_handler(_ws_event("CONNECT", "conn-1"), None) == {"statusCode": 200}
    assert events.lambda_handler(_ws_event("MESSAGE", "conn-1", subscribe), None) == {
        "statusCode": 200
    }
    assert _item(session_id)["wsConnectionId"] == "conn-1"
    assert _posted("conn-1") == b""

    assert events.lambda_handler(_s3_event(created["uploadKey"]), None) == {"statusCode": 200}

    item = _item(session_id)
    assert (item["status"], item["uploadKey"]) == ("UPLOADED", created["uploadKey"])
    assert json.loads(_posted("conn-1")) == {
        "type": "uploaded",
        "sessionId": session_id,
        "uploadKey": created["uploadKey"],
    }
    status = http.lambda_handler(_http_v2("GET", f"/sessions/{session_id}"), None)
    assert json.loads(status["body"])["status"] == "UPLOADED"
    out = capsys.readouterr().out
    assert f"websocket-event: session {session_id} uploaded" in out


def test_an_upload_before_the_subscription_is_announced_on_subscribing(app):
    http, events = app
    created = _create(http)
    events.lambda_handler(_s3_event(created["uploadKey"]), None)
    assert "wsConnectionId" not in _item(created["sessionId"])

    subscribe = json.dumps({"action": "subscribe", "sessionId": created["sessionId"]})
    events.lambda_handler(_ws_event("MESSAGE", "late", subscribe), None)

    assert json.loads(_posted("late"))["type"] == "uploaded"


def test_uploads_outside_sessions_create_nothing(app):
    _, events = app
    assert events.lambda_handler(_s3_event("session-uploads/unknown/x.jpg"), None) == {
        "statusCode": 200
    }
    events.lambda_handler(_s3_event("elsewhere/x.jpg"), None)
    assert _item("unknown") is None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("not json", 400),
        ('{"action": "other"}', 400),
        ('"a string"', 400),
        ('{"action": "subscribe", "sessionId": "missing"}', 404),
    ],
)
def test_bad_websocket_messages(app, body, status):
    _, events = app
    assert events.lambda_handler(_ws_event("MESSAGE", "c", body), None) == {"statusCode": status}
    assert _item("missing") is None


def test_a_gone_connection_is_not_an_error(app):
    from botocore.stub import Stubber

    http, events = app
    created = _create(http)
    subscribe = json.dumps({"action": "subscribe", "sessionId": created["sessionId"]})
    events.lambda_handler(_ws_event("MESSAGE", "gone", subscribe), None)
    client = events._management_api()
    with Stubber(client) as stubber:
        stubber.add_client_error("post_to_connection", "GoneException", http_status_code=410)
        events.lambda_handler(_s3_event(created["uploadKey"]), None)
        stubber.add_client_error("post_to_connection", "ForbiddenException", http_status_code=403)
        with pytest.raises(client.exceptions.ForbiddenException):
            events.lambda_handler(_s3_event(created["uploadKey"]), None)
    assert _item(created["sessionId"])["status"] == "UPLOADED"


# --- deploy.py ---


@pytest.fixture
def deploy_module() -> Iterator[ModuleType]:
    yield _load("qr_upload_deploy", EXAMPLE_DIR / "deploy.py")
    sys.modules.pop("qr_upload_deploy", None)


def test_packaging_is_deterministic_and_holds_each_handler(deploy_module):
    import io
    import zipfile

    first, second = deploy_module.package_functions(), deploy_module.package_functions()
    assert first == second
    assert set(first) == {"http_api_handler.zip", "websocket_event_handler.zip"}
    for data in first.values():
        assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["lambda_function.py"]


def test_deploy_creates_the_stack_and_returns_its_outputs(moto_aws, deploy_module):

    from plldb.aws import make_session

    session = make_session()
    outputs = deploy_module.deploy(session)

    bucket = f"qr-upload-lambda-deployments-{ACCOUNT}-{REGION}"
    s3 = session.client("s3")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {"http_api_handler.zip", "websocket_event_handler.zip"} <= keys
    # What moto models; the WebSocket API (ApiGatewayV2) is not built, so its output is not checked.
    assert outputs["UploadBucketName"] == "qr-upload-uploads-dev"
    assert outputs["WebsiteBucketName"] == "qr-upload-website-dev"
    assert outputs["SessionsTableName"] == "qr-upload-sessions-dev"
    assert outputs["HttpApiLambdaArn"].endswith(":function:qr-upload-http-api-dev")
    assert outputs["WebSocketEventLambdaArn"].endswith(":function:qr-upload-websocket-event-dev")
    function = session.client("lambda").get_function(FunctionName="qr-upload-http-api-dev")
    variables = function["Configuration"]["Environment"]["Variables"]
    assert variables["SESSIONS_TABLE_NAME"] == "qr-upload-sessions-dev"
    assert function["Configuration"]["Handler"] == "lambda_function.lambda_handler"

    # AWS answers an unchanged deploy with "No updates are to be performed", which StackOperator
    # treats as success; moto performs the update instead. Either way the outputs are the same.
    assert deploy_module.deploy(session) == outputs


def test_changed_code_reaches_the_function_through_its_object_version(
    moto_aws, deploy_module, monkeypatch
):
    from plldb.aws import make_session

    session = make_session()
    deploy_module.deploy(session)
    lambda_client = session.client("lambda")
    before = lambda_client.get_function(FunctionName="qr-upload-http-api-dev")["Configuration"]
    zips = deploy_module.package_functions()
    zips["http_api_handler.zip"] = deploy_module.build_zip([("lambda_function.py", b"x=1", 0o644)])
    monkeypatch.setattr(deploy_module, "package_functions", lambda: zips)

    deploy_module.deploy(session)

    after = lambda_client.get_function(FunctionName="qr-upload-http-api-dev")["Configuration"]
    assert after["CodeSha256"] != before["CodeSha256"]
    # moto re-reads the key on any update; AWS needs the new S3ObjectVersion to see the change.
    from plldb.bootstrap.render import load_template

    body = session.client("cloudformation").get_template(StackName="qr-upload-dev")
    code = load_template(body["TemplateBody"])["Resources"]["HttpApiLambda"]["Properties"]["Code"]
    bucket = f"qr-upload-lambda-deployments-{ACCOUNT}-{REGION}"
    head = session.client("s3").head_object(Bucket=bucket, Key="http_api_handler.zip")
    assert code["S3ObjectVersion"] == head["VersionId"]


def test_destroy_empties_the_buckets_and_deletes_the_stack(moto_aws, deploy_module):

    from plldb.aws import make_session

    session = make_session()
    deploy_module.deploy(session, stack_name="qr-upload-test", environment="prod")
    session.client("s3").put_object(Bucket="qr-upload-uploads-prod", Key="session-uploads/a/b.jpg")

    assert deploy_module.destroy(session, "qr-upload-test") is True

    stacks = session.client("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks if s["StackName"] == "qr-upload-test"] == [
        "DELETE_COMPLETE"
    ]
    assert deploy_module.destroy(session, "qr-upload-test") is False

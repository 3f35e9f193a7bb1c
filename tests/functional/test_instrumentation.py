"""The instrumentation function against a target stack (with a nested stack) in moto."""

from __future__ import annotations

import importlib
import io
import json
import logging
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from plldb.resources import cloudformation_dir
from tests.functional.lambda_support import create_sessions_table, shared_boto3_session

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
TABLE = "PLLDBSessions"
CALLBACK_URL = f"https://abc123.execute-api.{REGION}.amazonaws.com/live"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/plldb-debugger"
STACK = "target-app"
BUCKET = "target-artifacts"
FUNCTIONS_DIR = cloudformation_dir() / "lambda_functions"
MODULES = (
    "_common",
    "_protocol",
    "_sessions",
    "_instrumentation",
    "_ledger",
    "_grants",
    "_progress",
    "instrumentation",
)
PYTHON = ("orders-api", "reports-job", "nested-worker")
OWN_WRAPPER = "/opt/own-wrapper"
ORDERS_VARIABLES = {
    "TABLE": "orders",
    "EMPTY": "",
    "UNICODE": 'é ✓ "quoted" {json}',
    "AWS_LAMBDA_EXEC_WRAPPER": OWN_WRAPPER,
}


def _zip(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


def _function(name: str, runtime: str, timeout: int, variables: dict | None = None) -> dict:
    properties: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": runtime,
        "Handler": "app.handler",
        "Role": {"Fn::GetAtt": ["Role", "Arn"]},
        "Timeout": timeout,
        "Code": {"S3Bucket": BUCKET, "S3Key": "app.zip"},
    }
    if variables is not None:
        properties["Environment"] = {"Variables": variables}
    return {"Type": "AWS::Lambda::Function", "Properties": properties}


ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    },
}


def _purge_modules() -> None:
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def cloud(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """PLLDBSessions, the plldb layer and the target stack (3 functions + a nested stack)."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("SESSIONS_TABLE", TABLE)
    monkeypatch.setenv("DEBUGGER_TABLE", "PLLDBDebugger")
    monkeypatch.setenv("PLLDB_CALLBACK_URL", CALLBACK_URL)
    monkeypatch.setenv("PLLDB_DEBUGGER_ROLE_ARN", ROLE_ARN)
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.syspath_prepend(str(FUNCTIONS_DIR))
    _purge_modules()
    with mock_aws():
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", shared_boto3_session(REGION))
        create_sessions_table(REGION)
        awslambda = boto3.client("lambda", region_name=REGION)
        layers = {
            name: awslambda.publish_layer_version(
                LayerName=name, Content={"ZipFile": _zip("x.txt", name)}
            )["LayerVersionArn"]
            for name in ("plldb-debugger", "own-layer")
        }
        monkeypatch.setenv("PLLDB_LAYER_ARN", layers["plldb-debugger"])
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=BUCKET, Key="app.zip", Body=_zip("app.py", "def handler(e, c): 1"))
        nested = {
            "Resources": {
                "Role": ROLE,
                "Worker": _function("nested-worker", "python3.12", 60, {"QUEUE": "jobs"}),
            }
        }
        s3.put_object(Bucket=BUCKET, Key="nested.json", Body=json.dumps(nested))
        template = {
            "Resources": {
                "Role": ROLE,
                "Orders": _function("orders-api", "python3.12", 3, ORDERS_VARIABLES),
                "Reports": _function("reports-job", "python3.12", 30),
                "Web": _function("web-frontend", "nodejs20.x", 3, {"MODE": "web"}),
                "Inner": {
                    "Type": "AWS::CloudFormation::Stack",
                    "Properties": {"TemplateURL": f"https://{BUCKET}.s3.amazonaws.com/nested.json"},
                },
            }
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"]
        )
        # moto ignores a function's Layers in a template: give orders-api its own layer here.
        awslambda.update_function_configuration(
            FunctionName="orders-api", Layers=[layers["own-layer"]]
        )
        yield layers
    _purge_modules()


def load() -> ModuleType:
    module = importlib.import_module("instrumentation")
    module.sleep = lambda seconds: None
    return module


def run(action: str, session_id: str, **extra: Any) -> dict[str, Any]:
    event = {"action": action, "sessionId": session_id, "stackName": STACK, **extra}
    return load().handler(event, None)


def configuration(name: str) -> dict[str, Any]:
    return boto3.client("lambda", region_name=REGION).get_function_configuration(FunctionName=name)


def visible(name: str) -> tuple[Any, list[str], int]:
    answer = configuration(name)
    variables = (answer.get("Environment") or {}).get("Variables") or {}
    return variables, [layer["Arn"] for layer in answer.get("Layers", [])], answer["Timeout"]


def table() -> Any:
    return boto3.resource("dynamodb", region_name=REGION).Table(TABLE)


def item(session_id: str) -> dict[str, Any]:
    return table().get_item(Key={"SessionId": session_id}, ConsistentRead=True)["Item"]


def put_session(status: str = "ACTIVE", **extra: Any) -> str:
    session_id = str(uuid.uuid4())
    table().put_item(
        Item={
            "SessionId": session_id,
            "StackName": STACK,
            "TTL": int(time.time()) + 3600,
            "Status": status,
            **extra,
        }
    )
    return session_id


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    messages: list[tuple[str, str]] = []
    load()

    def post(conn: str, text: str, final: bool = False) -> None:
        messages.append((conn, f"[session_closed] {text}" if final else text))

    monkeypatch.setattr(importlib.import_module("_progress"), "post_progress", post)
    return messages


def test_instrument_changes_every_python_function_and_skips_the_node_one(cloud, caplog):
    caplog.set_level(logging.DEBUG, logger="instrumentation")
    before = {name: visible(name) for name in (*PYTHON, "web-frontend")}
    session_id = put_session()
    result = run("instrument", session_id)
    assert result["action"] == "instrument"
    assert result["changed"] == sorted(PYTHON)
    assert result["skipped"] == {"web-frontend": "runtime nodejs20.x is not Python"}
    assert result["failed"] == {}
    assert result["notes"]["orders-api"] == (
        "timeout raised from 3 s to 900 s; API Gateway REST callers still time out after 29 s"
    )
    session = {
        "PLLDB_SESSION_ID": session_id,
        "PLLDB_SESSIONS_TABLE": TABLE,
        "PLLDB_DEBUGGER_TABLE": "PLLDBDebugger",
        "PLLDB_CALLBACK_URL": CALLBACK_URL,
        "PLLDB_DEBUGGER_ROLE_ARN": ROLE_ARN,
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/bootstrap",
    }
    for name in PYTHON:
        variables, layers, timeout = visible(name)
        own_variables, own_layers, own_timeout = before[name]
        assert layers == [*own_layers, cloud["plldb-debugger"]], name
        assert timeout == 900
        expected = {**own_variables, **session, "PLLDB_ORIGINAL_TIMEOUT": str(own_timeout)}
        if name == "orders-api":
            expected["PLLDB_ORIGINAL_EXEC_WRAPPER"] = OWN_WRAPPER
        assert variables == expected, name
    assert visible("orders-api")[1] == [cloud["own-layer"], cloud["plldb-debugger"]]
    assert visible("web-frontend") == before["web-frontend"]
    assert session_id not in caplog.text and session_id[:8] in caplog.text
    assert "UNICODE" not in caplog.text  # the functions' own variables are never logged


def test_the_originals_are_recorded_in_the_session_item(cloud):
    session_id = put_session()
    run("instrument", session_id)
    recorded = item(session_id)["Instrumented"]
    assert sorted(recorded) == sorted(PYTHON)
    orders = recorded["orders-api"]
    assert orders["Environment"] == ORDERS_VARIABLES
    assert orders["Layers"] == [cloud["own-layer"]]
    assert orders["Timeout"] == 3
    assert orders["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-api"
    assert orders["LogicalId"] == "Orders"
    assert "Environment" not in recorded["reports-job"]  # it has no variables
    assert recorded["reports-job"]["Layers"] == []
    assert recorded["nested-worker"]["Environment"] == {"QUEUE": "jobs"}


def test_instrumenting_twice_keeps_the_first_originals(cloud):
    session_id = put_session()
    run("instrument", session_id)
    first = item(session_id)["Instrumented"]
    after_first = {name: visible(name) for name in PYTHON}
    result = run("instrument", session_id)
    assert result["changed"] == sorted(PYTHON)
    assert item(session_id)["Instrumented"] == first
    assert {name: visible(name) for name in PYTHON} == after_first  # layer not added twice


def test_restore_gives_back_the_exact_original_configuration(cloud):
    before = {name: configuration(name) for name in (*PYTHON, "web-frontend")}
    session_id = put_session()
    run("instrument", session_id)
    result = run("restore", session_id)
    assert result == {
        "action": "restore",
        "changed": sorted(PYTHON),
        "skipped": {},
        "failed": {},
        "notes": {},
        "warnings": {},
    }
    for name, original in before.items():
        now = configuration(name)
        assert now.get("Environment") == original.get("Environment"), name
        assert now["Layers"] == original["Layers"], name
        assert now["Timeout"] == original["Timeout"], name
    variables = configuration("orders-api")["Environment"]["Variables"]
    assert json.dumps(variables, sort_keys=True) == json.dumps(ORDERS_VARIABLES, sort_keys=True)
    assert "Environment" not in configuration("reports-job")
    assert item(session_id)["Instrumented"] == {}


def test_a_session_taking_over_inherits_the_originals_of_the_one_it_replaced(cloud):
    before = {name: configuration(name) for name in PYTHON}
    replaced = put_session()
    run("instrument", replaced)
    table().update_item(  # what POST /sessions with force does to the other session
        Key={"SessionId": replaced},
        UpdateExpression="SET #s = :closed REMOVE ConnectionId",
        ExpressionAttributeNames={"#s": "Status"},
        ExpressionAttributeValues={":closed": "CLOSED"},
    )
    successor = put_session()
    run("instrument", successor)
    assert all(
        configuration(name)["Environment"]["Variables"]["PLLDB_SESSION_ID"] == successor
        for name in PYTHON
    )
    run("restore", successor)
    for name, original in before.items():
        assert configuration(name)["Timeout"] == original["Timeout"], name
        assert configuration(name).get("Environment") == original.get("Environment"), name


def test_a_detach_during_instrumentation_leaves_nothing_instrumented(cloud, monkeypatch):
    before = {name: visible(name) for name in PYTHON}
    session_id = put_session()
    module = load()
    update = module._update
    sessions = table()  # made once: boto3 builds resources unsafely across threads

    def update_then_detach(name, changes):
        update(name, changes)
        # $disconnect closes the session and its restore runs before this update is seen.
        sessions.update_item(
            Key={"SessionId": session_id},
            UpdateExpression="SET #s = :closed",
            ExpressionAttributeNames={"#s": "Status"},
            ExpressionAttributeValues={":closed": "CLOSED"},
        )

    monkeypatch.setattr(module, "_update", update_then_detach)
    # One function at a time: in-process moto is not safe for this many concurrent writers.
    monkeypatch.setattr(module, "_map", lambda work, items: [work(item) for item in items])
    result = module.handler(
        {"action": "instrument", "sessionId": session_id, "stackName": STACK}, None
    )
    assert result["changed"] == []
    assert {name: visible(name) for name in PYTHON} == before


def test_restoring_twice_changes_nothing_the_second_time(cloud, monkeypatch):
    session_id = put_session()
    run("instrument", session_id)
    run("restore", session_id)
    restored = {name: (visible(name), configuration(name)["LastModified"]) for name in PYTHON}
    module = load()
    monkeypatch.setattr(module, "_update", lambda *args: pytest.fail("updated again"))
    result = run("restore", session_id)
    assert result["changed"] == [] and result["failed"] == {}
    assert result["message"] == "no instrumented functions to restore"
    assert {name: (visible(name), configuration(name)["LastModified"]) for name in PYTHON} == (
        restored
    )


def test_globs_narrow_the_functions_by_name_or_logical_id(cloud):
    session_id = put_session()
    result = run("instrument", session_id, functions=["orders-*", "Work*"])
    assert result["changed"] == ["nested-worker", "orders-api"]
    assert result["skipped"] == {}
    assert visible("reports-job")[2] == 30  # untouched
    assert sorted(item(session_id)["Instrumented"]) == ["nested-worker", "orders-api"]
    partial = run("restore", session_id, functions=["Orders"])
    assert partial["changed"] == ["orders-api"]
    assert sorted(item(session_id)["Instrumented"]) == ["nested-worker"]


def test_the_sessions_own_function_patterns_narrow_the_set(cloud):
    session_id = put_session(Functions=json.dumps(["orders-*"]))  # from `attach --function`
    result = run("instrument", session_id)
    assert result["changed"] == ["orders-api"]
    assert visible("reports-job")[2] == 30  # untouched


def test_a_stack_without_python_functions_changes_nothing_and_says_so(cloud, posted):
    session_id = put_session(ConnectionId="conn-1")
    result = run("instrument", session_id, functions=["web-*"])
    said = (
        f"no Python functions matching web-* in stack {STACK} "
        "(found 1: web-frontend (runtime nodejs20.x is not Python)): nothing changed"
    )
    assert result["message"] == said
    # What it found, then the end of the session: the CLI stops instead of waiting.
    assert posted == [
        ("conn-1", "found web-frontend: runtime nodejs20.x is not Python"),
        ("conn-1", f"[session_closed] {said}"),
    ]
    assert result["changed"] == []
    assert result["skipped"] == {"web-frontend": "runtime nodejs20.x is not Python"}
    assert "Instrumented" not in item(session_id)
    assert visible("web-frontend") == ({"MODE": "web"}, [], 3)


def test_globs_that_match_nothing_end_the_session_saying_so(cloud, posted):
    session_id = put_session(ConnectionId="conn-1")
    result = run("instrument", session_id, functions=["nomatch-*"])
    said = (
        f"no Python functions matching nomatch-* in stack {STACK} "
        "(no function of the stack matches): nothing changed"
    )
    assert result["message"] == said and result["changed"] == []
    assert posted == [("conn-1", f"[session_closed] {said}")]


def test_progress_goes_to_the_cli_connection(cloud, posted):
    session_id = put_session(ConnectionId="conn-1")
    run("instrument", session_id)
    assert {conn for conn, _ in posted} == {"conn-1"}
    texts = [text for _, text in posted]
    steps = [text for text in texts if text.startswith("instrumented ")]
    assert sorted(step.split(": ")[1] for step in steps) == sorted(PYTHON)
    assert [step.split(":")[0] for step in steps] == [f"instrumented {i}/3" for i in (1, 2, 3)]
    assert "skipped web-frontend: runtime nodejs20.x is not Python" in texts
    assert any("API Gateway REST callers still time out after 29 s" in text for text in texts)
    assert all(session_id not in text for text in texts)
    posted.clear()
    run("restore", session_id)
    assert [text.split(":")[0] for _, text in posted] == [f"restored {i}/3" for i in (1, 2, 3)]


def test_progress_is_posted_through_the_management_api(cloud):
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    connections = apigatewaymanagementapi_backends[ACCOUNT][REGION].connections
    session_id = put_session(ConnectionId="conn-2")
    run("instrument", session_id, functions=["orders-api"])
    data = connections["conn-2"].data.decode()
    decoder, messages, at = json.JSONDecoder(), [], 0
    while at < len(data):
        message, at = decoder.raw_decode(data, at)
        messages.append(message)
    assert messages[0] == {"type": "info", "message": "instrumented 1/1: orders-api"}


def test_no_progress_without_a_connection(cloud, posted):
    run("instrument", put_session())
    assert posted == []


def test_a_function_deleted_after_discovery_does_not_stop_the_others(cloud):
    boto3.client("lambda", region_name=REGION).delete_function(FunctionName="reports-job")
    session_id = put_session()
    result = run("instrument", session_id)  # the stack still lists reports-job
    assert result["changed"] == ["nested-worker", "orders-api"]
    assert "ResourceNotFoundException" in result["failed"]["reports-job"]
    assert visible("orders-api")[2] == 900


def test_a_failing_update_does_not_stop_the_others(cloud, monkeypatch):
    module = load()
    real = module._update

    def update(name: str, configuration: dict) -> None:
        if name == "orders-api":
            raise ClientError(
                {"Error": {"Code": "InvalidParameterValueException", "Message": "too big"}},
                "UpdateFunctionConfiguration",
            )
        real(name, configuration)

    monkeypatch.setattr(module, "_update", update)
    session_id = put_session()
    result = run("instrument", session_id)
    assert result["changed"] == ["nested-worker", "reports-job"]
    assert result["failed"] == {"orders-api": "InvalidParameterValueException: too big"}
    # Its original stays recorded: restoring an unchanged function is harmless.
    assert "orders-api" in item(session_id)["Instrumented"]


def test_restore_skips_and_forgets_a_function_that_no_longer_exists(cloud):
    session_id = put_session()
    run("instrument", session_id)
    boto3.client("lambda", region_name=REGION).delete_function(FunctionName="reports-job")
    result = run("restore", session_id)
    assert result["changed"] == ["nested-worker", "orders-api"]
    assert result["skipped"] == {"reports-job": "the function no longer exists"}
    assert item(session_id)["Instrumented"] == {}


def test_throttling_and_conflicts_are_retried(cloud, monkeypatch):
    module = load()
    client = module.lambda_client()
    real = client.update_function_configuration
    failures = {"orders-api": ["TooManyRequestsException", "ResourceConflictException"]}

    def flaky(**arguments: Any) -> dict:
        pending = failures.get(arguments["FunctionName"])
        if pending:
            raise ClientError({"Error": {"Code": pending.pop(0)}}, "UpdateFunctionConfiguration")
        return real(**arguments)

    monkeypatch.setattr(client, "update_function_configuration", flaky)
    result = run("instrument", put_session(), functions=["orders-api"])
    assert result["changed"] == ["orders-api"]
    assert failures["orders-api"] == []


def test_an_update_still_in_progress_is_awaited(cloud, monkeypatch):
    module = load()
    client = module.lambda_client()
    real_update, real_get = client.update_function_configuration, client.get_function_configuration
    polls: list[str] = []

    def update(**arguments: Any) -> dict:
        return {**real_update(**arguments), "LastUpdateStatus": "InProgress"}

    def get(**arguments: Any) -> dict:
        polls.append(arguments["FunctionName"])
        answer = real_get(**arguments)
        return {**answer, "LastUpdateStatus": "InProgress" if len(polls) < 3 else "Successful"}

    monkeypatch.setattr(client, "update_function_configuration", update)
    monkeypatch.setattr(client, "get_function_configuration", get)
    result = run("instrument", put_session(), functions=["orders-api"])
    assert result["changed"] == ["orders-api"]
    assert polls.count("orders-api") >= 3


def test_a_closed_session_is_not_instrumented(cloud):
    result = run("instrument", put_session("CLOSED"))
    assert result["error"].endswith("is closed")
    assert visible("orders-api")[2] == 3


def test_bad_requests_are_refused_with_a_reason(cloud, caplog):
    caplog.set_level(logging.INFO)
    handler = load().handler
    assert "action" in handler({"action": "explode", "sessionId": "s"}, None)["error"]
    assert "sessionId" in handler({"action": "restore"}, None)["error"]
    assert "stackName" in handler({"action": "instrument", "sessionId": "s"}, None)["error"]
    assert (
        "functions"
        in handler({"action": "restore", "sessionId": "s", "functions": "x"}, None)["error"]
    )
    assert "does not exist" in run("restore", "missing-session")["error"]
    assert caplog.records


def test_a_missing_layer_setting_is_refused(cloud, monkeypatch):
    monkeypatch.delenv("PLLDB_LAYER_ARN")
    assert run("instrument", put_session())["error"] == (
        "environment variable PLLDB_LAYER_ARN is not set"
    )


def test_plldbs_own_functions_are_never_instrumented(cloud):
    template = {"Resources": {"Role": ROLE, "Own": _function("plldb-restapi", "python3.13", 10)}}
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="plldb", TemplateBody=json.dumps(template)
    )
    session_id = put_session()
    result = load().handler(
        {"action": "instrument", "sessionId": session_id, "stackName": "plldb"}, None
    )
    assert result["skipped"] == {"plldb-restapi": "plldb's own function"}
    assert result["message"] == (
        "no Python functions in stack plldb (found 1: plldb-restapi (plldb's own function)): "
        "nothing changed"
    )
    assert visible("plldb-restapi") == ({}, [], 10)


def test_a_missing_stack_is_an_error_in_the_result(cloud):
    result = load().handler(
        {"action": "instrument", "sessionId": put_session(), "stackName": "nope"}, None
    )
    assert result["error"].startswith("AWS error: ValidationError")


def _attached(role_arn: str) -> list[str]:
    name = role_arn.rsplit("/", 1)[-1]
    policies = boto3.client("iam").list_attached_role_policies(RoleName=name)
    return [policy["PolicyArn"] for policy in policies["AttachedPolicies"]]


def test_the_relay_policy_is_attached_to_target_roles_and_detached_after(cloud, monkeypatch):
    statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE_ARN}
    policy_arn = boto3.client("iam").create_policy(
        PolicyName="PLLDBRelayPolicy",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )["Policy"]["Arn"]
    monkeypatch.setenv("PLLDB_RELAY_POLICY_ARN", policy_arn)
    roles = {name: configuration(name)["Role"] for name in PYTHON}
    session_id = put_session()
    result = run("instrument", session_id)
    assert result["warnings"] == {}
    assert all(_attached(role) == [policy_arn] for role in roles.values())
    partial = run("restore", session_id, functions=["nested-worker"])
    assert partial["changed"] == ["nested-worker"]
    assert _attached(roles["nested-worker"]) == []  # the nested stack's role serves only it
    assert _attached(roles["orders-api"]) == [policy_arn]  # still used by orders-api
    run("restore", session_id)
    assert all(_attached(role) == [] for role in roles.values())


def _relay_policy(monkeypatch: pytest.MonkeyPatch) -> str:
    statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE_ARN}
    policy_arn = boto3.client("iam").create_policy(
        PolicyName="PLLDBRelayPolicy",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )["Policy"]["Arn"]
    monkeypatch.setenv("PLLDB_RELAY_POLICY_ARN", policy_arn)
    return policy_arn


def test_a_replaced_sessions_restore_leaves_the_successor_its_functions_and_grant(
    cloud, monkeypatch
):
    """--force takeover: the old session's restore runs after the new one instrumented."""
    policy_arn = _relay_policy(monkeypatch)
    before = {name: visible(name) for name in PYTHON}
    roles = {configuration(name)["Role"] for name in PYTHON}
    replaced, successor = put_session(), put_session()
    run("instrument", replaced)
    run("instrument", successor)
    late = run("restore", replaced)
    assert late["changed"] == [] and sorted(late["skipped"]) == sorted(PYTHON)
    assert all(_attached(role) == [policy_arn] for role in roles)
    assert all(
        configuration(name)["Environment"]["Variables"]["PLLDB_SESSION_ID"] == successor
        for name in PYTHON
    )
    run("restore", successor)
    assert all(_attached(role) == [] for role in roles)
    assert {name: visible(name) for name in PYTHON} == before


def test_a_role_being_detached_takes_no_holder_until_the_detach_is_done(cloud):
    load()
    ledger = importlib.import_module("_ledger")
    role = f"arn:aws:iam::{ACCOUNT}:role/shared"
    assert ledger.hold(role, "s1/f")
    assert ledger.begin_detach(role) is None  # s1/f still holds it
    assert ledger.release(role, "s1/f")
    token = ledger.begin_detach(role)
    assert token and ledger.begin_detach(role) is None  # one detach at a time
    assert not ledger.hold(role, "s2/f")
    assert ledger.end_detach(role, token)
    assert ledger.hold(role, "s2/f")
    assert ledger.holders(role) == {"s2/f"}


def test_a_role_that_cannot_take_the_policy_is_a_warning_not_a_failure(cloud, monkeypatch, posted):
    monkeypatch.setenv("PLLDB_RELAY_POLICY_ARN", "arn:aws:iam::123456789012:policy/missing")
    session_id = put_session(ConnectionId="conn-1")
    result = run("instrument", session_id, functions=["orders-*"])
    assert result["changed"] == ["orders-api"]
    assert "may not assume the debugger role" in result["warnings"]["orders-api"]
    assert any(text.startswith("warning orders-api: its role may not") for _, text in posted)


def test_a_function_whose_variables_lambda_will_not_show_is_left_untouched(cloud, monkeypatch):
    """Lambda hides KMS-encrypted variables from callers without kms:Decrypt (Environment.Error)."""
    module = load()
    real = module._configuration
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    def hidden(name: str) -> tuple[dict[str, Any], str | None]:
        answer, problem = real(name)
        if name == "orders-api":
            error = {
                "ErrorCode": "AccessDeniedException",
                "Message": "Lambda was unable to decrypt",
            }
            answer = {**answer, "Environment": {"Error": error}, "KMSKeyArn": key}
        return answer, problem

    monkeypatch.setattr(module, "_configuration", hidden)
    before = visible("orders-api")
    session_id = put_session()
    result = run("instrument", session_id)
    assert "orders-api" not in result["changed"]
    assert "kms:Decrypt" in result["skipped"]["orders-api"]
    assert key in result["skipped"]["orders-api"]
    assert visible("orders-api") == before  # its own variables are still there, unchanged
    assert "orders-api" not in item(session_id).get("Instrumented", {})
    assert sorted(result["changed"]) == ["nested-worker", "reports-job"]


def test_attach_names_the_functions_whose_relay_grant_is_not_live_yet(cloud, monkeypatch, posted):
    """IAM applies a policy attached just now within seconds; one attached before is live."""
    statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE_ARN}
    policy_arn = boto3.client("iam").create_policy(
        PolicyName="PLLDBRelayPolicy",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )["Policy"]["Arn"]
    monkeypatch.setenv("PLLDB_RELAY_POLICY_ARN", policy_arn)
    first = put_session(ConnectionId="conn-1")
    run("instrument", first, functions=["orders-*"])
    pending = [text for _, text in posted if text.startswith("relay not live yet")]
    assert len(pending) == 1 and "(orders-api)" in pending[0], posted
    posted.clear()
    again = put_session(ConnectionId="conn-2")  # the role holds the policy already
    calls = []
    iam = importlib.import_module("_grants").iam()  # the module that attaches it
    monkeypatch.setattr(iam, "attach_role_policy", lambda **kw: calls.append(kw))
    run("instrument", again, functions=["orders-*"])
    assert not any(text.startswith("relay not live yet") for _, text in posted), posted
    assert calls == []  # not attached twice
    assert _attached(configuration("orders-api")["Role"]) == [policy_arn]

"""The example stack debugged end to end: both of its functions answer from local source."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from plldb.local.cloud import OfflineCloud
from plldb.local.demo import HTTP_FUNCTION, STACK, api_gateway_event
from tests.e2e.support import (
    AttachProcess,
    bootstrap,
    deployer_environment,
    developer_environment,
    wait_for,
)

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "qr-upload"
EVENT_FUNCTION = "qr-upload-websocket-event-dev"


def _deploy_module() -> Any:
    spec = importlib.util.spec_from_file_location("qr_upload_deploy_e2e", EXAMPLE / "deploy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with OfflineCloud(poll_seconds=0.2) as running, pytest.MonkeyPatch.context() as patch:
        done = bootstrap(deployer_environment(running), tmp_path_factory.mktemp("build"))
        assert done.returncode == 0, done.stderr
        for name, value in running.environment().items():
            patch.setenv(name, value)  # the example's deploy reaches AWS through boto3's settings
        running.outputs = _deploy_module().deploy(boto3.Session(), stack_name=STACK)
        running.sync()
        # A developer holding only PLLDBUserPolicy; the handlers run under the functions' own
        # roles (--function-role), so the example template's permissions are what they meet.
        running.env = developer_environment(running)
        yield running


def _invoke(name: str, event: dict[str, Any]) -> dict[str, Any]:
    lambda_client = boto3.Session().client("lambda")  # a fresh session reads the cloud's settings
    answer = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    assert "FunctionError" not in answer, answer
    return json.loads(answer["Payload"].read())


def _s3_upload_event(bucket: str, key: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "awsRegion": "eu-west-1",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1024}},
            }
        ]
    }


def test_both_example_functions_run_from_local_source_while_attached(cloud):
    attach = AttachProcess(cloud.env, "--stack-name", STACK, "--function-role", cwd=EXAMPLE)
    try:
        attach.wait_for("instrumented 2/2", timeout=60)
        created = _invoke(HTTP_FUNCTION, api_gateway_event("POST", "/sessions", {}))
        assert created["statusCode"] == 201, created
        session = json.loads(created["body"])
        attach.wait_for(f"http-api: created session {session['sessionId']}")  # printed here

        upload = _s3_upload_event(cloud.outputs["UploadBucketName"], session["uploadKey"])
        assert _invoke(EVENT_FUNCTION, upload) == {"statusCode": 200}
        attach.wait_for(f"websocket-event: session {session['sessionId']} uploaded")

        status = _invoke(
            HTTP_FUNCTION, api_gateway_event("GET", f"/sessions/{session['sessionId']}")
        )
        assert json.loads(status["body"])["status"] == "UPLOADED"
    finally:
        assert attach.stop() == 130  # Ctrl-C: docs/troubleshooting.md
    lambda_client = boto3.Session().client("lambda")
    assert wait_for(
        lambda: (
            "PLLDB_SESSION_ID"
            not in lambda_client.get_function_configuration(FunctionName=EVENT_FUNCTION)
            .get("Environment", {})
            .get("Variables", {})
        ),
        timeout=30,
    )

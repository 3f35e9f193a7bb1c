"""The offline cloud end to end: a stack made for the tests, driven through real sockets."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import boto3
import pytest
import requests
import websocket
from botocore.exceptions import ClientError
from requests_aws4auth import AWS4Auth

from plldb.local.cloud import OfflineCloud
from tests.e2e.offline_fixture.deploy import deploy_fixture
from tests.e2e.support import bootstrap, client, command_environment, user_environment, wait_for
from tests.e2e.support import outputs as outputs_of

pytestmark = pytest.mark.e2e

STACK = "offline-fixture"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with OfflineCloud(poll_seconds=0.2) as running:
        yield running


@pytest.fixture(scope="module")
def outputs(cloud):
    deploy_fixture(cloud.environment(), STACK)
    cloud.sync()
    assert STACK not in cloud.problems, cloud.problems.get(STACK)
    return _outputs(cloud)


def _outputs(cloud) -> dict[str, str]:
    return outputs_of(cloud, STACK)


def _client(cloud, service):
    return client(cloud, service)


def _invoke(cloud, name, payload=None):
    response = _client(cloud, "lambda").invoke(
        FunctionName=f"{STACK}-{name}", Payload=json.dumps(payload or {}).encode()
    )
    return response, json.loads(response["Payload"].read() or b"null")


def _events(cloud, prefix):
    items = _client(cloud, "dynamodb").scan(TableName=_table(cloud))["Items"]
    return sorted(item["Id"]["S"] for item in items if item["Id"]["S"].startswith(prefix))


def _table(cloud):
    resources = _client(cloud, "cloudformation").describe_stack_resource(
        StackName=STACK, LogicalResourceId="Events"
    )
    return resources["StackResourceDetail"]["PhysicalResourceId"]


# ---------------------------------------------------------------- repairs and outputs


def test_outputs_point_at_the_stand_in(outputs):
    assert outputs["WebSocketURL"].startswith("ws://127.0.0.1:")
    assert outputs["RestURL"].startswith("http://127.0.0.1:")
    assert outputs["CallbackURL"].startswith("http://127.0.0.1:")
    assert (
        outputs["LayerArn"].startswith("arn:aws:lambda:")
        and ":layer:offline-fixture-wrapper:" in (outputs["LayerArn"])
    )


def test_ttl_is_enabled_as_the_template_asks(cloud, outputs):
    ttl = _client(cloud, "dynamodb").describe_time_to_live(TableName=_table(cloud))
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "TTL"


def test_function_layers_and_variables_come_from_the_template(cloud, outputs):
    config = _client(cloud, "lambda").get_function_configuration(FunctionName=f"{STACK}-wrapped")
    assert [layer["Arn"] for layer in config["Layers"]] == [outputs["LayerArn"]]
    assert config["Environment"]["Variables"]["CALLBACK_URL"] == outputs["CallbackURL"]


# ---------------------------------------------------------------- Lambda


def test_a_plain_function_answers_with_its_payload(cloud, outputs):
    response, body = _invoke(cloud, "plain", {"n": 1})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert body == {"echo": {"n": 1}, "function": f"{STACK}-plain", "stage": "test"}


def test_a_raising_function_gives_lambdas_error_shape(cloud, outputs):
    response, body = _invoke(cloud, "failing")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "boom"
    assert isinstance(body["stackTrace"], list)
    assert _invoke(cloud, "plain", {"after": "failure"})[1]["echo"] == {"after": "failure"}


def test_a_function_that_times_out(cloud, outputs):
    started = time.monotonic()
    response, body = _invoke(cloud, "slow")
    assert time.monotonic() - started < 2.9
    assert response["FunctionError"] == "Unhandled"
    assert "timed out" in body["errorMessage"].lower()


def test_a_function_behind_an_exec_wrapper_from_its_layer(cloud, outputs):
    response, body = _invoke(cloud, "wrapped")
    assert "FunctionError" not in response, body
    assert body == {"wrapped_by": "fixture-wrapper", "layer": "fixture-layer"}


def test_twenty_concurrent_invokes_each_get_their_own_answer(cloud, outputs):
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda n: _invoke(cloud, "plain", {"n": n})[1], range(20)))
    assert [answer["echo"]["n"] for answer in answers] == list(range(20))


# ---------------------------------------------------------------- WebSocket


def test_the_authorizer_allows_and_denies_the_handshake(cloud, outputs):
    url = outputs["WebSocketURL"]
    allowed = websocket.create_connection(f"{url}?token=let-me-in", timeout=10)
    allowed.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as denied:
        websocket.create_connection(f"{url}?token=wrong", timeout=10)
    assert denied.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as missing:
        websocket.create_connection(url, timeout=10)
    assert missing.value.status_code == 401


def test_echo_routes_and_post_to_connection(cloud, outputs):
    client = websocket.create_connection(f"{outputs['WebSocketURL']}?token=let-me-in", timeout=10)
    try:
        client.send("hello")
        echo = json.loads(client.recv())
        assert echo["echo"] == "hello"
        connection_id = echo["connectionId"]
        assert wait_for(lambda: f"connect/{connection_id}" in _events(cloud, "connect/"))
        client.send(json.dumps({"action": "shout", "text": "quiet"}))
        assert json.loads(client.recv()) == {"shout": "QUIET"}

        management = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=outputs["CallbackURL"],
            region_name="eu-west-1",
            aws_access_key_id=cloud.environment()["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=cloud.environment()["AWS_SECRET_ACCESS_KEY"],
        )
        management.post_to_connection(ConnectionId=connection_id, Data=b"pushed")
        assert client.recv() == "pushed"
    finally:
        client.close()
    assert wait_for(lambda: f"disconnect/{connection_id}" in _events(cloud, "disconnect/"))
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"too late")


def test_the_management_api_needs_manage_connections_on_the_connection(cloud, outputs):
    client = websocket.create_connection(f"{outputs['WebSocketURL']}?token=let-me-in", timeout=10)
    try:
        client.send("who am i")
        connection_id = json.loads(client.recv())["connectionId"]
        api_arn = _connections_arn(cloud, outputs)
        for name, resource, allowed in (
            ("no-manage", None, False),
            ("other-connection", f"{api_arn}/POST/@connections/someone-else", False),
            ("get-only", f"{api_arn}/GET/@connections/*", False),
            ("may-post", f"{api_arn}/POST/@connections/{connection_id}", True),
        ):
            inline = None
            if resource:
                statement = {"Effect": "Allow", "Action": "execute-api:ManageConnections",
                             "Resource": resource}  # fmt: skip
                inline = {"Version": "2012-10-17", "Statement": [statement]}
            env = user_environment(cloud, name, inline=inline)
            management = boto3.client(
                "apigatewaymanagementapi", endpoint_url=outputs["CallbackURL"],
                region_name="eu-west-1", aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
            if allowed:
                management.post_to_connection(ConnectionId=connection_id, Data=b"allowed")
                assert client.recv() == "allowed"
                continue
            with pytest.raises(ClientError) as refused:
                management.post_to_connection(ConnectionId=connection_id, Data=b"refused")
            assert refused.value.response["Error"]["Code"] == "AccessDeniedException", name
    finally:
        client.close()


def _connections_arn(cloud, outputs) -> str:
    """arn:aws:execute-api:REGION:ACCOUNT:API/STAGE, read off the callback URL."""
    api_id, stage = urlsplit(outputs["CallbackURL"]).path.strip("/").split("/")[:2]
    return f"arn:aws:execute-api:{cloud.region}:123456789012:{api_id}/{stage}"


def test_a_function_answers_through_the_management_api(cloud, outputs):
    client = websocket.create_connection(f"{outputs['WebSocketURL']}?token=let-me-in", timeout=10)
    try:
        message = json.dumps({"action": "bounce", "n": 7})
        client.send(message)
        assert client.recv() == message
    finally:
        client.close()


def test_a_killed_client_fires_disconnect(cloud, outputs):
    client = websocket.create_connection(f"{outputs['WebSocketURL']}?token=let-me-in", timeout=10)
    client.send("who am i")
    connection_id = json.loads(client.recv())["connectionId"]
    client.sock.shutdown(socket.SHUT_RDWR)
    client.sock.close()
    assert wait_for(lambda: f"disconnect/{connection_id}" in _events(cloud, "disconnect/"))


# ---------------------------------------------------------------- REST


def test_signed_and_unsigned_rest_calls(cloud, outputs):
    url = f"{outputs['RestURL']}/whoami"
    key, secret = (
        cloud.environment()["AWS_ACCESS_KEY_ID"],
        cloud.environment()["AWS_SECRET_ACCESS_KEY"],
    )
    signed = requests.get(url, auth=AWS4Auth(key, secret, "eu-west-1", "execute-api"), timeout=10)
    assert signed.status_code == 200, signed.text
    assert signed.json()["userArn"].startswith("arn:aws:")
    assert signed.json()["path"] == "/whoami"
    unsigned = requests.get(url, timeout=10)
    assert unsigned.status_code == 403
    wrong = requests.get(url, auth=AWS4Auth(key, "not-it", "eu-west-1", "execute-api"), timeout=10)
    assert wrong.status_code == 403
    open_route = requests.get(f"{url}/ada", timeout=10)
    assert open_route.status_code == 200 and open_route.json()["name"] == "ada"


# ---------------------------------------------------------------- the plldb stack itself


def test_the_plldb_stack_bootstraps_into_the_offline_cloud_and_its_apis_are_served(cloud, tmp_path):
    env = command_environment(cloud)
    done = bootstrap(env, tmp_path)
    assert done.returncode == 0, done.stderr
    outputs = dict(line.split("\t", 1) for line in done.stdout.strip().splitlines())
    cloud.sync()
    assert "plldb" not in cloud.problems, cloud.problems.get("plldb")
    stack = _client(cloud, "cloudformation").describe_stacks(StackName="plldb")["Stacks"][0]
    synced = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert synced["WebSocketURL"].startswith("ws://127.0.0.1:")
    assert synced["DebuggerLayerArn"].startswith("arn:aws:lambda:")
    assert outputs["SessionsTableName"] == "PLLDBSessions"
    # The 0.1.0 authorizer denies everyone: the stand-in ran the deployed code to find out.
    with pytest.raises(websocket.WebSocketBadStatusException) as denied:
        websocket.create_connection(f"{synced['WebSocketURL']}?sessionId=abc", timeout=10)
    assert denied.value.status_code == 403
    unsigned = requests.post(f"{synced['ManagementAPIURL']}/sessions", json={}, timeout=10)
    assert unsigned.status_code == 403

    # An update (moto rebuilds the outputs) is repaired again, even within the same second.
    again = bootstrap(env, tmp_path)
    assert again.returncode == 0, again.stderr
    cloud.sync()
    stack = _client(cloud, "cloudformation").describe_stacks(StackName="plldb")["Stacks"][0]
    resynced = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert resynced["WebSocketURL"] == synced["WebSocketURL"]


# ---------------------------------------------------------------- plldb local up


def test_local_up_no_enforce_iam_accepts_any_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TMPDIR"] = str(tmp_path)
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    process = subprocess.Popen(
        [sys.executable, "-m", "plldb", "local", "up", "--no-enforce-iam"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        lines = [process.stdout.readline().strip() for _ in range(7)]
        exported = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        dummy = boto3.client(
            "dynamodb", endpoint_url=exported["AWS_ENDPOINT_URL"], region_name="eu-west-1",
            aws_access_key_id="anything", aws_secret_access_key="at-all")  # fmt: skip
        assert dummy.list_tables()["TableNames"] == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_local_up_prints_the_environment_and_stops_cleanly_on_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TMPDIR"] = str(tmp_path)
    env["XDG_STATE_HOME"] = str(tmp_path / "state")  # not the developer's own running cloud
    process = subprocess.Popen(
        [sys.executable, "-m", "plldb", "local", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = [process.stdout.readline().strip() for _ in range(7)]
        exported = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        assert exported["AWS_ENDPOINT_URL"].startswith("http://localhost:")
        assert exported["AWS_ENDPOINT_URL_LAMBDA"].startswith("http://127.0.0.1:")
        assert exported["AWS_REGION"] == "eu-west-1"
        sts = boto3.client(
            "sts",
            endpoint_url=exported["AWS_ENDPOINT_URL"],
            region_name="eu-west-1",
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
        )
        assert sts.get_caller_identity()["Arn"].endswith(":user/plldb-offline-admin")
        # IAM is enforced by default: moto's dummy key is an unknown key, as in AWS.
        dummy = boto3.client(
            "dynamodb", endpoint_url=exported["AWS_ENDPOINT_URL"], region_name="eu-west-1",
            aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        with pytest.raises(ClientError) as refused:
            dummy.list_tables()
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
        assert list(tmp_path.glob("plldb-local-*"))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert list(tmp_path.glob("plldb-local-*")) == []
    children = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert children.stdout.strip() == ""


def test_a_busy_moto_port_is_one_clear_line(tmp_path):
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "plldb", "local", "up", "--moto-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert done.returncode == 1
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith("plldb: error: offline cloud: the moto server failed to start")


def test_local_up_flags_make_websocket_connections_end_as_in_api_gateway(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TMPDIR"] = str(tmp_path)
    flags = [
        "--idle-timeout-seconds",
        "1.5",
        "--max-connection-seconds",
        "60",
        "--lossy-disconnect",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "plldb", "local", "up", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        lines = [process.stdout.readline().strip() for _ in range(7)]
        exported = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        deploy_fixture(exported, STACK)
        aws = boto3.Session(
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
            region_name="eu-west-1",
        )
        cfn = aws.client("cloudformation", endpoint_url=exported["AWS_ENDPOINT_URL"])

        def stack_outputs() -> dict[str, str]:
            stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
            return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

        assert wait_for(lambda: stack_outputs()["WebSocketURL"].startswith("ws://127.0.0.1:"))
        outputs = stack_outputs()
        table = cfn.describe_stack_resource(StackName=STACK, LogicalResourceId="Events")
        dynamodb = aws.client("dynamodb", endpoint_url=exported["AWS_ENDPOINT_URL"])

        def events() -> set[str]:
            name = table["StackResourceDetail"]["PhysicalResourceId"]
            return {item["Id"]["S"] for item in dynamodb.scan(TableName=name)["Items"]}

        client = websocket.create_connection(
            f"{outputs['WebSocketURL']}?token=let-me-in", timeout=10
        )
        client.send("who am i")
        connection_id = json.loads(client.recv())["connectionId"]
        opcode, frame = client.recv_data_frame(control_frame=True)  # idle from here on
        client.shutdown()
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame.data[:2], "big") == 1001
        management = aws.client("apigatewaymanagementapi", endpoint_url=outputs["CallbackURL"])
        with pytest.raises(management.exceptions.GoneException):
            management.get_connection(ConnectionId=connection_id)
        with pytest.raises(management.exceptions.GoneException):
            management.post_to_connection(ConnectionId=connection_id, Data=b"too late")
        assert f"connect/{connection_id}" in events()
        time.sleep(4)  # a delivered $disconnect (a cold function) would have written by now
        assert f"disconnect/{connection_id}" not in events()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()

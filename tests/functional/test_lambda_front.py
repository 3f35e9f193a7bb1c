"""The offline Lambda front: Invoke runs deployed code under awslambdaric; the rest is moto's."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from plldb.local.function_store import FunctionNotFoundError
from plldb.local.lambda_front import LambdaApiError, LambdaFront
from plldb.local.motoserver import MotoServer
from plldb.local.unpacking import unzip

REGION = "eu-west-1"
ACCOUNT = "123456789012"
FIXTURES = Path(__file__).parent / "lambda_fixtures"
CREDENTIALS = {
    "region_name": REGION,
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


def zip_directory(directory: Path) -> bytes:
    """A zip that keeps each file's mode, so the wrapper stays executable as in Lambda."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts:
                continue
            entry = zipfile.ZipInfo(path.relative_to(directory).as_posix())
            entry.external_attr = (path.stat().st_mode & 0xFFFF) << 16
            archive.writestr(entry, path.read_bytes())
    return buffer.getvalue()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent has not reaped it


def _wait_until_gone(pids: list[int], seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    alive = [pid for pid in pids if _running(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _running(pid)]
    return alive


def _eventually(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        server.reset()  # moto's state lives in the process: start from an empty account
        yield server
        server.reset()


@pytest.fixture(scope="module")
def front(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaFront]:
    workdir = tmp_path_factory.mktemp("lambda-front")
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL")]:
            patch.delenv(name)  # the runtimes get the front's defaults: moto, and the front
        with LambdaFront(moto.endpoint, REGION, workdir) as front:
            yield front


@pytest.fixture(scope="module")
def moto_lambda(moto: MotoServer):
    return boto3.client("lambda", endpoint_url=moto.endpoint, **CREDENTIALS)


@pytest.fixture(scope="module")
def lambda_client(front: LambdaFront):
    config = Config(max_pool_connections=32, retries={"max_attempts": 1}, read_timeout=30)
    return boto3.client("lambda", endpoint_url=front.endpoint, config=config, **CREDENTIALS)


@pytest.fixture(scope="module")
def s3(moto: MotoServer):
    return boto3.client("s3", endpoint_url=moto.endpoint, **CREDENTIALS)


@pytest.fixture(scope="module")
def layer_arn(moto_lambda) -> str:
    content = {"ZipFile": zip_directory(FIXTURES / "layer")}
    layer = moto_lambda.publish_layer_version(LayerName="fixture-layer", Content=content)
    return layer["LayerVersionArn"]


@pytest.fixture(scope="module")
def deploy(moto: MotoServer, moto_lambda):
    """Creates a function from the fixture handlers (in moto, not through the front)."""
    iam = boto3.client("iam", endpoint_url=moto.endpoint, **CREDENTIALS)
    role = iam.create_role(RoleName="fixture-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = _handlers_zip()

    def create(name: str, handler: str, **settings) -> str:
        moto_lambda.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler=handler if "." in handler else f"handlers.{handler}",
            Code={"ZipFile": code},
            **settings,
        )
        return name

    return create


def _handlers_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(FIXTURES / "handlers.py", "handlers.py")
    return buffer.getvalue()


def _invoke(client, name: str, event: object, **settings) -> tuple[dict, object]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **settings)
    return response, json.loads(response["Payload"].read())


def test_plain_function_returns_its_event_in_a_lambda_environment(
    deploy, lambda_client, front, moto
):
    deploy("echo", "echo")
    response, payload = _invoke(lambda_client, "echo", {"hello": "world", "n": [1, 2]})
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert payload == {"hello": "world", "n": [1, 2]}
    # The runtime prints before it answers; the front reads its output on another thread.
    line = 'echo got {"hello": "world", "n": [1, 2]}'
    assert _eventually(lambda: line in front.logs("echo"))

    deploy("describe", "describe", Environment={"Variables": {"GREETING": "hi"}}, Timeout=7)
    response, payload = _invoke(lambda_client, "describe", {})
    environ = payload["environ"]
    assert payload["request_id"] == response["ResponseMetadata"]["RequestId"]
    assert payload["function_name"] == "describe"
    assert payload["invoked_arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:describe"
    assert 0 < payload["remaining_ms"] <= 7000
    assert environ["AWS_LAMBDA_FUNCTION_NAME"] == "describe"
    assert environ["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert environ["_HANDLER"] == "handlers.describe"
    assert environ["AWS_REGION"] == REGION
    assert environ["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert environ["GREETING"] == "hi"
    assert environ["LAMBDA_TASK_ROOT"] == payload["cwd"]
    assert environ["AWS_ENDPOINT_URL"] == moto.endpoint
    assert environ["AWS_ENDPOINT_URL_LAMBDA"] == front.endpoint
    assert environ["AWS_ACCESS_KEY_ID"]


def test_the_warm_environment_is_reused(deploy, lambda_client):
    deploy("warm", "sleep")
    pids = {_invoke(lambda_client, "warm", {"seconds": 0})[1]["pid"] for _ in range(5)}
    assert len(pids) == 1


def test_function_by_arn_partial_arn_and_qualifier(deploy, front):
    deploy("by-arn", "echo")
    for reference in (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:by-arn",
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:by-arn:$LATEST",
        f"{ACCOUNT}:function:by-arn",
        "by-arn:$LATEST",
    ):
        result = front.invoke(reference, b'{"via": "arn"}')
        assert (result.status_code, result.function_error) == (200, None), reference
        assert json.loads(result.payload) == {"via": "arn"}


def test_a_raising_handler_gives_lambdas_error_shape_and_the_front_goes_on(deploy, lambda_client):
    deploy("fails", "fail")
    response, payload = _invoke(lambda_client, "fails", {"why": "no name"})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "bad input: no name"
    assert isinstance(payload["stackTrace"], list) and payload["stackTrace"]
    assert any("handlers.py" in line for line in payload["stackTrace"])

    _, payload = _invoke(lambda_client, "fails", {"why": "twice"})
    assert payload["errorMessage"] == "bad input: twice"
    deploy("after-failure", "echo")
    assert _invoke(lambda_client, "after-failure", {"still": "serving"})[1] == {"still": "serving"}


def test_a_timeout_gives_sandbox_timedout_and_a_fresh_environment(deploy, lambda_client):
    deploy("slow", "sleep", Timeout=1)
    started = time.monotonic()
    response, payload = _invoke(lambda_client, "slow", {"seconds": 6})
    elapsed = time.monotonic() - started
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    request_id = response["ResponseMetadata"]["RequestId"]
    assert (
        payload["errorMessage"]
        == f"RequestId: {request_id} Error: Task timed out after 1.00 seconds"
    )
    assert 0.9 < elapsed < 5  # the handler would have slept 6 s

    response, payload = _invoke(lambda_client, "slow", {"seconds": 0})
    assert "FunctionError" not in response
    assert payload["slept"] == 0


def test_a_runtime_that_exits_gives_runtime_exit_error(deploy, lambda_client):
    deploy("crashes", "crash")
    response, payload = _invoke(lambda_client, "crashes", {})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
    response, payload = _invoke(lambda_client, "crashes", {})
    assert payload["errorType"] == "Runtime.ExitError"  # a fresh environment, which exits again


def test_a_handler_that_cannot_be_imported_gives_the_init_error(deploy, lambda_client):
    deploy("no-module", "nowhere.handler")
    response, payload = _invoke(lambda_client, "no-module", {})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "nowhere" in payload["errorMessage"]
    deploy("no-handler", "handlers.missing")
    response, payload = _invoke(lambda_client, "no-handler", {})
    assert payload["errorType"] == "Runtime.HandlerNotFound"


def test_exec_wrapper_and_module_from_a_layer(deploy, moto_lambda, lambda_client, layer_arn):
    deploy("wrapped", "wrapped")
    response, payload = _invoke(lambda_client, "wrapped", {})
    assert payload == {"WRAPPED_BY": None, "WRAPPER_ARGS": None}

    moto_lambda.update_function_configuration(
        FunctionName="wrapped",
        Layers=[layer_arn],
        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/wrapper"}},
    )
    response, payload = _invoke(lambda_client, "wrapped", {})
    assert "FunctionError" not in response, payload
    assert payload["WRAPPED_BY"] == "fixture-wrapper"
    assert payload["WRAPPER_ARGS"].endswith("-m awslambdaric handlers.wrapped")

    deploy("uses-layer", "layer_import", Layers=[layer_arn])
    response, payload = _invoke(lambda_client, "uses-layer", {"name": "ada"})
    assert payload == {"greeting": "hello ada from the layer"}


def test_a_missing_exec_wrapper_is_an_error_not_a_crash(deploy, lambda_client):
    wrapper = {"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/not-there"}}
    deploy("bad-wrapper", "echo", Environment=wrapper)
    response, payload = _invoke(lambda_client, "bad-wrapper", {})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.InvalidEntrypoint"


def test_event_invocation_answers_202_and_runs_in_the_background(deploy, lambda_client, s3):
    s3.create_bucket(Bucket="events", CreateBucketConfiguration={"LocationConstraint": REGION})
    deploy("writer", "put_object")
    event = json.dumps({"bucket": "events", "key": "from-lambda"}).encode()
    response = lambda_client.invoke(FunctionName="writer", InvocationType="Event", Payload=event)
    assert response["StatusCode"] == 202
    assert response["Payload"].read() == b""
    deadline = time.monotonic() + 20
    while True:
        try:
            body = s3.get_object(Bucket="events", Key="from-lambda")["Body"].read()
            break
        except s3.exceptions.NoSuchKey:
            assert time.monotonic() < deadline, "the Event invocation never wrote its object"
            time.sleep(0.1)
    assert body == b"written"


def test_dry_run_checks_the_function_without_running_it(deploy, lambda_client):
    deploy("dry", "crash")
    response = lambda_client.invoke(FunctionName="dry", InvocationType="DryRun")
    assert response["StatusCode"] == 204


def test_concurrent_invokes_each_get_their_own_answer(deploy, lambda_client):
    deploy("parallel", "sleep")

    def call(number: int) -> dict:
        return _invoke(lambda_client, "parallel", {"seconds": 0.2, "n": number})[1]

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(call, range(20)))
    assert [answer["event"]["n"] for answer in answers] == list(range(20))
    # One invocation per environment at a time: overlapping calls ran in several processes.
    assert len({answer["pid"] for answer in answers}) > 1


def test_a_changed_configuration_is_seen_by_the_next_invoke(deploy, moto_lambda, lambda_client):
    deploy("configured", "describe", Environment={"Variables": {"GREETING": "before"}})
    first = _invoke(lambda_client, "configured", {})[1]
    assert first["environ"]["GREETING"] == "before"

    moto_lambda.update_function_configuration(
        FunctionName="configured", Environment={"Variables": {"GREETING": "after"}}
    )
    second = _invoke(lambda_client, "configured", {})[1]
    assert second["environ"]["GREETING"] == "after"
    assert second["pid"] != first["pid"]
    assert _wait_until_gone([first["pid"]]) == []  # the stale environment was stopped


def test_changed_code_is_seen_by_the_next_invoke(deploy, moto_lambda, lambda_client):
    deploy("recoded", "echo")
    assert _invoke(lambda_client, "recoded", {"v": 1})[1] == {"v": 1}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handlers.py", "def echo(event, context):\n    return {'v2': event}\n")
    moto_lambda.update_function_code(FunctionName="recoded", ZipFile=buffer.getvalue())
    assert _invoke(lambda_client, "recoded", {"v": 1})[1] == {"v2": {"v": 1}}


def test_other_lambda_calls_pass_through_to_moto(deploy, moto_lambda, lambda_client):
    deploy("passed", "echo", Timeout=9)
    via_front = lambda_client.get_function_configuration(FunctionName="passed")
    direct = moto_lambda.get_function_configuration(FunctionName="passed")
    via_front.pop("ResponseMetadata")
    direct.pop("ResponseMetadata")
    assert via_front == direct
    assert via_front["Timeout"] == 9
    names = [f["FunctionName"] for f in lambda_client.list_functions()["Functions"]]
    assert "passed" in names
    lambda_client.update_function_configuration(FunctionName="passed", Timeout=11)
    assert moto_lambda.get_function_configuration(FunctionName="passed")["Timeout"] == 11
    with pytest.raises(ClientError) as error:
        lambda_client.get_function_configuration(FunctionName="never-created")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_unknown_function_is_resource_not_found(lambda_client, front):
    with pytest.raises(ClientError) as error:
        lambda_client.invoke(FunctionName="does-not-exist", Payload=b"{}")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "function:does-not-exist" in error.value.response["Error"]["Message"]
    with pytest.raises(FunctionNotFoundError):
        front.invoke("does-not-exist", b"{}")


def test_a_payload_that_is_not_json_is_refused(deploy, lambda_client, front):
    deploy("strict", "echo")
    with pytest.raises(ClientError) as error:
        lambda_client.invoke(FunctionName="strict", Payload=b"{not json")
    assert error.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(LambdaApiError):
        front.invoke("strict", b"{not json")
    assert json.loads(front.invoke("strict", b"").payload) == {}


def test_stop_leaves_no_runtime_process_and_child_environment_is_given(
    moto, deploy, moto_lambda, layer_arn, tmp_path
):
    pid_file = tmp_path / "spawned.pid"
    variables = {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/spawning-wrapper",
        "SPAWNED_PID_FILE": str(pid_file),
    }
    deploy("spawner", "sleep", Layers=[layer_arn], Environment={"Variables": variables})
    deploy("described", "describe")
    extra = {"AWS_ACCESS_KEY_ID": "from-the-host", "GREETING": "from-the-host"}
    own = LambdaFront(moto.endpoint, REGION, tmp_path / "front", child_environment=extra).start()
    try:
        described = json.loads(own.invoke("described", b"{}").payload)
        assert described["environ"]["GREETING"] == "from-the-host"
        # As in Lambda, the keys are a session of the function's role, whatever the host gives.
        assert described["environ"]["AWS_ACCESS_KEY_ID"].startswith("ASIA")
        assert own.invoke("spawner", b'{"seconds": 30}', "Event").status_code == 202
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        # The Event call holds its environment, so this one needs a second environment.
        assert own.invoke("spawner", b'{"seconds": 0}').function_error is None
        pids = own.runtime_pids()
        assert len(pids) == 3
        spawned = [int(line) for line in pid_file.read_text().split()]
        assert len(spawned) == 2 and all(_running(pid) for pid in spawned)
    finally:
        own.stop()
    assert own.runtime_pids() == []
    assert _wait_until_gone([*pids, *spawned]) == []


def test_unpacking_keeps_modes_and_refuses_escaping_entries(tmp_path):
    unzip(zip_directory(FIXTURES / "layer"), tmp_path / "opt")
    assert (tmp_path / "opt" / "bin" / "wrapper").stat().st_mode & 0o111
    assert (tmp_path / "opt" / "python" / "layer_greeting.py").is_file()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../outside.py", "x = 1")
    with pytest.raises(ValueError, match="escapes"):
        unzip(buffer.getvalue(), tmp_path / "task")
    assert not (tmp_path / "outside.py").exists()

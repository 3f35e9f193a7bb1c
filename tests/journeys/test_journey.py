"""The whole journey, step by step, against the offline cloud or (opt-in) a real account.

The same `plldb` commands a user runs, in subprocesses; boto3 only to deploy the example and to
check. Steps run in file order and share one Journey; a step after a failed one fails at once.
Everything this run creates has its own prefix and is removed in the `journey` fixture's
finalizer, whichever step failed.
"""

from __future__ import annotations

import json
import signal

import pytest

from plldb.bootstrap.names import STACK_NAME
from plldb.local.demo import api_gateway_event
from tests.e2e.support import wait_for

from .journey import Journey, example_module

INSTRUMENTED = "/opt/bin/bootstrap"  # AWS_LAMBDA_EXEC_WRAPPER while a debugger is attached


@pytest.fixture
def step(journey: Journey) -> Journey:
    if journey.failed_step:
        pytest.fail(f"not run: the earlier step {journey.failed_step} failed")
    return journey


def _http_function(journey: Journey) -> str:
    (name,) = [n for n in journey.functions() if "http-api" in n]
    return name


def _create_upload_session(journey: Journey) -> dict:
    """POST /sessions to the example's HTTP function in the cloud, as API Gateway sends it."""
    answer = journey.client("lambda").invoke(
        FunctionName=_http_function(journey),
        Payload=json.dumps(api_gateway_event("POST", "/sessions", {})).encode(),
    )
    payload = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, payload
    assert payload["statusCode"] == 201, payload
    return json.loads(payload["body"])


def test_01_bootstrap_setup(step: Journey):
    step.look_at_helper()
    done = step.plldb("bootstrap", "setup", "--build-dir", str(step.build_dir))
    assert done.returncode == 0, done.stderr
    assert step.stack_exists(STACK_NAME)


def test_02_deploy_the_example(step: Journey):
    step.account_id = step.account_id or step.client("sts").get_caller_identity()["Account"]
    step.example_deployed = True  # from here on, cleanup looks for the stack
    example_module().deploy(
        step.target.session(),
        stack_name=step.stack,
        bucket=step.deployment_bucket,
        project_name=step.stack,
    )
    assert all(name.startswith(step.prefix) for name in step.functions())
    step.originals = step.configurations()
    assert len(step.originals) == 2, step.originals
    assert not any(c["Environment"].get("AWS_LAMBDA_EXEC_WRAPPER") for c in step.originals.values())


def test_03_attach_instruments_every_function(step: Journey):
    attach = step.attach()
    attach.wait_for("connected", timeout=120)
    total = len(step.originals)
    attach.wait_for(f"instrumented {total}/{total}", timeout=300)
    step.wait_updated()
    instrumented = step.configurations()
    assert all(
        c["Environment"].get("AWS_LAMBDA_EXEC_WRAPPER") == INSTRUMENTED and c["Timeout"] == 900
        for c in instrumented.values()
    ), instrumented


def test_04_an_invocation_in_the_cloud_runs_the_local_handler(step: Journey):
    (attach,) = step.attaches
    session = _create_upload_session(step)  # the caller gets the local handler's answer ...
    attach.wait_for(f"http-api: created session {session['sessionId']}", timeout=60)  # ... here


def test_05_a_forced_attach_takes_over_and_the_first_is_told(step: Journey):
    (first,) = step.attaches
    second = step.attach("--force")
    second.wait_for("connected", timeout=120)
    assert first.process.wait(timeout=120) != 0
    assert any("took over" in line for line in first.stdout + first.stderr), first.stderr
    # The second session instruments afresh (its own variables); invoke once that is done.
    total = len(step.originals)
    second.wait_for(f"instrumented {total}/{total}", timeout=300)
    step.wait_updated()
    session = _create_upload_session(step)
    second.wait_for(f"http-api: created session {session['sessionId']}", timeout=60)


def test_06_a_killed_attach_leaves_every_function_restored(step: Journey):
    second = step.attaches[-1]
    second.process.send_signal(signal.SIGKILL)
    assert second.process.wait(timeout=30) == -signal.SIGKILL
    # No detach ran: the backend restores on $disconnect (see AwsTarget.restore_timeout).
    assert wait_for(
        lambda: step.configurations() == step.originals,
        timeout=step.target.restore_timeout,
        interval=1.0,
    ), step.configurations()


def test_07_destroy(step: Journey):
    step.destroy_example()
    assert not step.stack_exists(step.stack)
    done = step.destroy_helper()
    if step.helper_stack_existed or step.target.keep_helper:
        assert done is None  # someone else's helper stack stays, and one kept by --keep
        assert step.stack_exists(STACK_NAME)
    else:
        assert done is not None and done.returncode == 0, done.stderr
        assert not step.stack_exists(STACK_NAME)

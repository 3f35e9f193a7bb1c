"""`plldb attach` end to end in the offline cloud: sessions, the handshake, takeover, reconnects."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import requests
import websocket
from requests_aws4auth import AWS4Auth

from tests.e2e.support import (
    TARGET,
    client,
    configurations,
    is_instrumented,
    start_attach,
    wait_for,
)
from tests.e2e.support import outputs as outputs_of

pytestmark = pytest.mark.e2e
INTERRUPTED = 130  # attach stopped by Ctrl-C or SIGTERM (docs/troubleshooting.md)


def _outputs(cloud) -> dict[str, str]:
    return outputs_of(cloud, "plldb")


def _next_error(client) -> dict:
    """The next error message, past the instrumentation's progress (info) messages."""
    while True:
        message = json.loads(client.recv())
        if message["type"] != "info":
            return message


def _items(table, status=None) -> list[dict]:
    items = [i for i in table.scan()["Items"] if "Status" in i]  # not ledger or lock items
    return [i for i in items if status is None or i["Status"] == status]


def _create_session(cloud, stack=TARGET, secret=None, **extra) -> requests.Response:
    """POST /sessions signed with the CLI user's key (or that key with a wrong `secret`)."""
    url = f"{_outputs(cloud)['ManagementAPIURL']}/sessions"
    key = cloud.env["AWS_ACCESS_KEY_ID"]
    auth = AWS4Auth(key, secret or cloud.env["AWS_SECRET_ACCESS_KEY"], cloud.region, "execute-api")
    return requests.post(url, json={"stackName": stack, **extra}, auth=auth, timeout=10)


def test_without_the_user_policy_no_session_is_created(cloud, sessions):
    """The REST gateway asks IAM for execute-api:Invoke on POST /sessions, as API Gateway does."""
    from tests.e2e.support import user_environment

    nobody = user_environment(cloud, "plldb-no-policy")
    url = f"{_outputs(cloud)['ManagementAPIURL']}/sessions"
    auth = AWS4Auth(nobody["AWS_ACCESS_KEY_ID"], nobody["AWS_SECRET_ACCESS_KEY"], cloud.region,
                    "execute-api")  # fmt: skip
    refused = requests.post(url, json={"stackName": TARGET}, auth=auth, timeout=10)
    assert refused.status_code == 403
    assert refused.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert "execute-api:Invoke" in refused.json()["message"]
    assert _items(sessions) == []


def test_a_developer_who_cannot_change_the_functions_is_refused(cloud, sessions):
    """Issue 13, confused deputy: execute-api:Invoke alone opens no session for a stack."""
    from tests.e2e.support import user_environment

    invoker = user_environment(
        cloud, "plldb-invoke-only", (_outputs(cloud)["UserPolicyArn"],)
    )  # PLLDBUserPolicy alone: execute-api:Invoke on POST /sessions, no rights on functions
    done = subprocess.run(
        [sys.executable, "-m", "plldb", "attach", "--stack-name", TARGET],
        env=invoker,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cloud.project,
    )
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("plldb: error: arn:aws:iam::"), lines
    assert "user/plldb-invoke-only may not debug stack" in lines[0]
    assert "lambda:UpdateFunctionConfiguration" in lines[0]
    assert _items(sessions) == []


def test_plldb_policy_prints_the_policy_the_stack_ships(cloud):
    from tests.e2e.support import command_environment

    iam = client(cloud, "iam")
    arn = _outputs(cloud)["UserPolicyArn"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    shipped = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
    command = [sys.executable, "-m", "plldb", "policy"]
    env = command_environment(cloud)
    printed = subprocess.run(command, text=True, capture_output=True, env=env, timeout=60)
    assert printed.returncode == 0, printed.stderr
    document = shipped["Document"]
    assert json.loads(printed.stdout) == (
        json.loads(document) if isinstance(document, str) else document
    )


def test_attach_goes_pending_active_then_closed_on_ctrl_c(cloud, sessions):
    attach = start_attach(cloud)
    attach.wait_for("connected")
    (active,) = _items(sessions, "ACTIVE")
    assert active["StackName"] == TARGET and active["ConnectionId"]
    assert int(active["TTL"]) > time.time() + 3000
    assert attach.stop(signal.SIGINT) == INTERRUPTED
    # $disconnect closes the session, then releases the stack's lock item.
    assert wait_for(lambda: len(_items(sessions)) == 1 and _items(sessions, "CLOSED"), timeout=60)
    (closed,) = _items(sessions)
    assert closed["Status"] == "CLOSED" and "ConnectionId" not in closed


def test_sigterm_also_detaches_cleanly(cloud, sessions):
    attach = start_attach(cloud)
    attach.wait_for("connected")
    assert attach.stop(signal.SIGTERM) == INTERRUPTED
    assert wait_for(lambda: _items(sessions, "CLOSED"), timeout=60)


def test_a_session_id_works_once_and_not_after_it_expires(cloud, sessions):
    url = _outputs(cloud)["WebSocketURL"]
    created = _create_session(cloud)
    assert created.status_code == 201, created.text
    session_id = created.json()["sessionId"]
    first = websocket.create_connection(f"{url}?sessionId={session_id}", timeout=10)
    first.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as reused:
        websocket.create_connection(f"{url}?sessionId={session_id}", timeout=10)
    assert reused.value.status_code == 403

    expired = _create_session(cloud, force=True).json()["sessionId"]
    sessions.update_item(
        Key={"SessionId": expired},
        UpdateExpression="SET #t = :past",
        ExpressionAttributeNames={"#t": "TTL"},
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )
    with pytest.raises(websocket.WebSocketBadStatusException) as late:
        websocket.create_connection(f"{url}?sessionId={expired}", timeout=10)
    assert late.value.status_code == 403


def test_unsigned_and_wrongly_signed_session_requests_are_refused(cloud, sessions):
    url = f"{_outputs(cloud)['ManagementAPIURL']}/sessions"
    assert requests.post(url, json={"stackName": TARGET}, timeout=10).status_code == 403
    assert _create_session(cloud, secret="not-the-secret").status_code == 403
    assert _items(sessions) == []


def test_missing_target_stack_and_bad_names_are_clear(cloud, sessions):
    assert _create_session(cloud, stack="no-such-stack").status_code == 404
    assert _create_session(cloud, stack="bad name!").status_code == 400
    env = dict(cloud.env)
    done = subprocess.run(
        [sys.executable, "-m", "plldb", "attach", "--stack-name", "no-such-stack"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cloud.project,
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["plldb: error: Stack no-such-stack does not exist"], done.stderr
    assert _items(sessions, "ACTIVE") == []


def test_a_second_attach_is_refused_and_force_takes_over(cloud, sessions):
    first = start_attach(cloud)
    first.wait_for("connected")
    try:
        second = subprocess.run(
            [sys.executable, "-m", "plldb", "attach", "--stack-name", TARGET],
            env=cloud.env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=cloud.project,
        )
        assert second.returncode == 1
        assert "already has a debugger attached since" in second.stderr
        assert "--force" in second.stderr
        forced = start_attach(cloud, "--force")
        forced.wait_for("connected")
        assert first.process.wait(timeout=30) != 0  # taken over: it says so and stops
        assert wait_for(lambda: len(_items(sessions, "ACTIVE")) == 1)
        assert forced.stop() == INTERRUPTED
    finally:
        first.stop()
    assert wait_for(lambda: _items(sessions, "ACTIVE") == [])


def test_a_pending_session_cannot_connect_beside_an_attached_one(cloud, sessions):
    """Issue 13: a session created before the stack was attached must not take its traffic."""
    early = _create_session(cloud)
    assert early.status_code == 201, early.text
    attach = start_attach(cloud)
    attach.wait_for("connected")
    try:
        url = _outputs(cloud)["WebSocketURL"]
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"{url}?sessionId={early.json()['sessionId']}", timeout=10)
        assert refused.value.status_code == 403
        assert len(_items(sessions, "ACTIVE")) == 1
        assert _items(sessions, "PENDING") != []  # the early session never became ACTIVE
    finally:
        assert attach.stop() == INTERRUPTED


def test_two_attaches_started_together_end_with_one_debugger(cloud, sessions):
    """Whichever wins, the other is refused in one line: at POST (409) or at connect (403)."""
    both = [start_attach(cloud), start_attach(cloud)]
    try:
        assert wait_for(lambda: sum(a.process.poll() is not None for a in both) == 1, timeout=60)
        (loser,) = [a for a in both if a.process.poll() is not None]
        (winner,) = [a for a in both if a is not loser]
        winner.wait_for("connected")
        assert loser.process.returncode == 1
        said = lambda: [line for line in loser.stderr if line.startswith("plldb: error:")]  # noqa: E731
        assert wait_for(said), loser.stderr  # the reader thread may still be reading it
        errors = said()
        assert len(errors) == 1, loser.stderr
        assert "already has a debugger attached" in errors[0] or "refused session" in errors[0]
        assert len(_items(sessions, "ACTIVE")) == 1
    finally:
        codes = [a.stop() for a in both]
    assert INTERRUPTED in codes


def test_the_displaced_debugger_is_told_in_one_line_and_exits(cloud, sessions):
    first = start_attach(cloud)
    first.wait_for("connected")
    try:
        forced = start_attach(cloud, "--force")
        forced.wait_for("connected")
        told = first.wait_for("plldb: error:")
        assert told == (
            "plldb: error: The backend ended this debugger's session: another plldb attach "
            "took over this stack (--force)"
        )
        assert first.process.wait(timeout=30) == 1
        assert not any("Traceback" in line for line in first.stderr), first.stderr
        assert forced.stop() == INTERRUPTED
    finally:
        first.stop()


def test_a_dropped_connection_is_followed_by_a_reconnect(cloud, sessions):
    attach = start_attach(cloud)
    attach.wait_for("connected")
    try:
        (active,) = _items(sessions, "ACTIVE")
        assert cloud.websocket.sever(active["ConnectionId"])
        attach.wait_for("reconnect")
        attach.wait_for("connected")
        assert wait_for(lambda: len(_items(sessions, "ACTIVE")) == 1)
        (renewed,) = _items(sessions, "ACTIVE")
        assert renewed["SessionId"] != active["SessionId"]
    finally:
        assert attach.stop() == INTERRUPTED


def test_a_malformed_message_gets_an_error_back(cloud, sessions):
    session_id = _create_session(cloud).json()["sessionId"]
    url = _outputs(cloud)["WebSocketURL"]
    client = websocket.create_connection(f"{url}?sessionId={session_id}", timeout=10)
    try:
        client.send("not json")
        answer = _next_error(client)
        assert answer["type"] == "error" and "not JSON" in answer["message"]
        client.send(json.dumps({"type": "keepalive"}))
        client.send(json.dumps({"type": "nonsense"}))
        answer = _next_error(client)
        assert answer["type"] == "error" and "nonsense" in answer["message"]
    finally:
        client.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_attach_instruments_the_target_and_detaching_restores_it_exactly(cloud, sessions, signum):
    assert not any(is_instrumented(c) for c in cloud.originals.values())
    total = len(cloud.originals)
    attach = start_attach(cloud)
    attach.wait_for("connected")
    try:
        # The CLI's own progress says when the backend is done; then the state must match.
        attach.wait_for(f"instrumented {total}/{total}", timeout=180)
        assert wait_for(
            lambda: all(is_instrumented(c) for c in configurations(cloud).values()),
            timeout=60,
            interval=0.5,
        ), configurations(cloud)
        instrumented = configurations(cloud)
        wrapped = instrumented[f"{TARGET}-wrapped"]
        assert wrapped["Variables"]["PLLDB_ORIGINAL_EXEC_WRAPPER"] == "/opt/bin/wrapper"
        assert wrapped["Layers"][:-1] == cloud.originals[f"{TARGET}-wrapped"]["Layers"]
        assert all(c["Timeout"] == 900 for c in instrumented.values())
    finally:
        code = attach.stop(signum, timeout=120)
    assert any("instrumented" in line for line in attach.stdout)  # progress reached the CLI
    if signum == signal.SIGINT:
        assert code == INTERRUPTED
        assert any(line.startswith("plldb: restored ") for line in attach.stderr), attach.stderr
    # A killed CLI is noticed as a dropped connection: $disconnect restores all the same.
    assert wait_for(lambda: configurations(cloud) == cloud.originals, timeout=180, interval=0.5), (
        configurations(cloud)
    )


def test_function_narrows_what_isinstrumented(cloud, sessions):
    attach = start_attach(cloud, "--function", f"{TARGET}-plain", "--function", "Wrapped*")
    attach.wait_for("connected")
    narrowed = {f"{TARGET}-plain", f"{TARGET}-wrapped"}
    try:
        assert wait_for(
            lambda: {n for n, c in configurations(cloud).items() if is_instrumented(c)} == narrowed,
            timeout=30,
        ), configurations(cloud)
        time.sleep(0.5)  # nothing else follows
        assert {n for n, c in configurations(cloud).items() if is_instrumented(c)} == narrowed
    finally:
        assert attach.stop() == INTERRUPTED
    assert wait_for(lambda: configurations(cloud) == cloud.originals, timeout=60)


def _stack_of(cloud, name: str, resources: dict) -> None:
    """A small stack in the offline cloud: only what attach looks at."""
    cfn = client(cloud, "cloudformation")
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                               "Principal": {"Service": "lambda.amazonaws.com"}}],
            }
        },
    }  # fmt: skip
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps({"Resources": {"Role": role, **resources}}),
        Capabilities=["CAPABILITY_IAM"],
    )
    cfn.get_waiter("stack_create_complete").wait(StackName=name)


def _node_function(name: str) -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": name,
            "Runtime": "nodejs20.x",
            "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"S3Bucket": "offline-fixture-code", "S3Key": "fixture/echo.zip"},
        },
    }


def _attach_to_nothing(cloud, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plldb", "attach", *args],
        env=cloud.env,
        capture_output=True,
        text=True,
        timeout=180,  # it must end by itself; a hang fails here
        cwd=cloud.project,
    )


@pytest.mark.parametrize(
    ("stack", "args", "found", "says"),
    [
        ("node-only", [], ["found node-only-web: runtime nodejs20.x is not Python"],
         "(found 1: node-only-web (runtime nodejs20.x is not Python))"),
        ("no-functions", [], [], "(the stack has no Lambda functions)"),
        (TARGET, ["--function", "nomatch-*"], [],
         "matching nomatch-* in stack offline-fixture (no function of the stack matches)"),
    ],
)  # fmt: skip
def test_attach_with_nothing_to_debug_lists_what_it_found_and_ends_by_itself(
    cloud, sessions, stack, args, found, says
):
    if stack == "node-only":
        _stack_of(cloud, stack, {"Web": _node_function("node-only-web")})
    elif stack == "no-functions":
        _stack_of(cloud, stack, {})
    done = _attach_to_nothing(cloud, "--stack-name", stack, *args)
    assert done.returncode == 1, done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("found ")] == found
    errors = [line for line in done.stderr.splitlines() if line.startswith("plldb: error:")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(
        "plldb: error: The backend ended this debugger's session: no Python functions"
    )
    assert says in errors[0] and errors[0].endswith(": nothing changed")
    # The session is closed, and nothing of the fixture stack was touched.
    assert wait_for(lambda: _items(sessions, "ACTIVE") == [] and _items(sessions), timeout=60)
    assert configurations(cloud) == cloud.originals

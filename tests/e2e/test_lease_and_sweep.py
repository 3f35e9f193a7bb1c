"""Grants, leases and the sweeper under IAM enforcement, with `$disconnect` never delivered."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import boto3
import pytest
from botocore.config import Config

from plldb.local.cloud import OfflineCloud
from tests.e2e.offline_fixture.deploy import deploy_fixture
from tests.e2e.support import (
    TARGET,
    bootstrap,
    client,
    configurations,
    deployer_environment,
    developer_environment,
    is_instrumented,
    start_attach,
    wait_for,
    write_project,
)

pytestmark = pytest.mark.e2e
LEASE = 6  # seconds; the CLI heartbeats every LEASE / 3


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with OfflineCloud(poll_seconds=0.2, lossy_disconnect=True) as running:
        # The sweep never runs by itself here: the tests fire it when they mean to.
        done = bootstrap(
            deployer_environment(running),
            tmp_path_factory.mktemp("build"),
            "--parameter", f"SessionLeaseSeconds={LEASE}",
            "--parameter", "SweepSchedule=rate(1 day)",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        deploy_fixture(running.environment(), TARGET)
        running.sync()
        assert not running.problems, running.problems
        running.env = developer_environment(running)
        running.project = write_project(tmp_path_factory.mktemp("project"))
        running.originals = configurations(running)
        yield running


@pytest.fixture
def sessions(cloud):
    table = client(cloud, "dynamodb", resource=True).Table("PLLDBSessions")
    for item in table.scan()["Items"]:
        table.delete_item(Key={"SessionId": item["SessionId"]})
    return table


def _put_session(sessions) -> str:
    session_id = str(uuid.uuid4())
    sessions.put_item(
        Item={
            "SessionId": session_id,
            "StackName": TARGET,
            "Status": "ACTIVE",
            "TTL": int(time.time()) + 3600,
        }
    )
    return session_id


def _instrumentation(cloud, action: str, session_id: str) -> dict:
    """The deployed instrumentation function, run under its own role, as $connect starts it."""
    payload = {"action": action, "sessionId": session_id, "stackName": TARGET}
    result = _invoke(cloud, "plldb-instrumentation", payload)
    assert "error" not in result, result
    return result


def _invoke(cloud, function: str, payload: dict) -> dict:
    env = cloud.environment()
    awslambda = boto3.client(
        "lambda",
        endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(read_timeout=300, retries={"max_attempts": 1}),
    )
    answer = awslambda.invoke(FunctionName=function, Payload=json.dumps(payload))
    return json.loads(answer["Payload"].read())


def _relay_policy_roles(cloud) -> dict[str, bool]:
    """Each of the target stack's roles: does it hold PLLDBRelayPolicy?"""
    iam = client(cloud, "iam")
    policy = next(
        p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]
        if "PLLDBRelayPolicy" in p["PolicyName"]
    )  # fmt: skip
    roles = {
        client(cloud, "lambda").get_function_configuration(FunctionName=name)["Role"]
        for name in cloud.originals
    }
    held = {}
    for arn in roles:
        attached = iam.list_attached_role_policies(RoleName=arn.rsplit("/", 1)[-1])
        held[arn] = policy in [p["PolicyArn"] for p in attached["AttachedPolicies"]]
    return held


def test_a_replaced_sessions_restore_leaves_the_new_session_its_relay_grant(cloud, sessions):
    """--force takeover: the old session is closed and restored after the new one instrumented."""
    replaced = _put_session(sessions)
    assert _instrumentation(cloud, "instrument", replaced)["changed"]
    sessions.update_item(  # what POST /sessions with force does to the session it replaces
        Key={"SessionId": replaced},
        UpdateExpression="SET #s = :closed",
        ExpressionAttributeNames={"#s": "Status"},
        ExpressionAttributeValues={":closed": "CLOSED"},
    )
    successor = _put_session(sessions)
    assert _instrumentation(cloud, "instrument", successor)["changed"]
    _instrumentation(cloud, "restore", replaced)
    assert all(_relay_policy_roles(cloud).values())
    now = configurations(cloud)
    assert all(c["Variables"].get("PLLDB_SESSION_ID") == successor for c in now.values())

    done = _instrumentation(cloud, "restore", successor)
    assert done["warnings"] == {}, done
    assert not any(_relay_policy_roles(cloud).values())
    assert configurations(cloud) == cloud.originals


def _sweep(cloud) -> None:
    """Run the helper stack's sweep rule now, as EventBridge would on its schedule."""
    rule = client(cloud, "cloudformation").describe_stack_resource(
        StackName="plldb", LogicalResourceId="PLLDBSweepRule"
    )["StackResourceDetail"]["PhysicalResourceId"]
    (outcome,) = cloud.fire_schedule(rule)
    assert outcome.invoked, outcome


def _the_session(sessions) -> dict:
    (session,) = [i for i in sessions.scan(ConsistentRead=True)["Items"] if "StackName" in i]
    return session


def _past_the_lease(sessions, leases: int = 1) -> bool:
    """Wait until `leases` whole leases have passed since the session's current lease began."""
    until = int(_the_session(sessions)["LeaseUntil"]) + (leases - 1) * LEASE
    return wait_for(lambda: time.time() > until + 1, timeout=LEASE * leases + 5, interval=0.2)


def _attached(cloud):
    attach = start_attach(cloud)
    attach.wait_for("connected")
    total = len(cloud.originals)
    attach.wait_for(f"instrumented {total}/{total}", timeout=180)
    assert all(is_instrumented(c) for c in configurations(cloud).values())
    assert all(_relay_policy_roles(cloud).values())
    return attach


def test_a_killed_cli_without_disconnect_is_swept_and_everything_restored(cloud, sessions):
    attach = _attached(cloud)
    attach.stop(signal.SIGKILL)
    assert _past_the_lease(sessions)
    # No $disconnect came (lossy): without the sweeper the stack would stay instrumented.
    assert _the_session(sessions)["Status"] == "ACTIVE"
    assert all(is_instrumented(c) for c in configurations(cloud).values())
    _sweep(cloud)
    assert wait_for(lambda: configurations(cloud) == cloud.originals, timeout=180, interval=0.5)
    assert wait_for(lambda: not any(_relay_policy_roles(cloud).values()), timeout=30)
    assert _the_session(sessions)["Status"] == "CLOSED"


def test_a_live_cli_keeps_its_session_through_sweeps_with_its_heartbeats(cloud, sessions):
    attach = _attached(cloud)
    try:
        first = _the_session(sessions)
        assert _past_the_lease(sessions, leases=2)  # the first lease is long gone
        _sweep(cloud)
        # The scheduled run is asynchronous; one more, awaited, says what a sweep decides now.
        swept = _invoke(cloud, "plldb-sweeper", {"detail-type": "Scheduled Event"})
        assert swept == {"swept": [], "retried": [], "failed": []}
        session = _the_session(sessions)
        assert session["Status"] == "ACTIVE" and session["ConnectionId"] == first["ConnectionId"]
        assert int(session["LeaseUntil"]) > int(first["LeaseUntil"])
        assert all(is_instrumented(c) for c in configurations(cloud).values())
        assert attach.process.poll() is None
    finally:
        attach.stop(signal.SIGINT, timeout=120)


def _detach(cloud, *args: str) -> subprocess.CompletedProcess:
    """`plldb detach` as the developer holding only PLLDBUserPolicy."""
    command = [sys.executable, "-m", "plldb", "detach", "--stack-name", TARGET, *args]
    return subprocess.run(command, env=cloud.env, capture_output=True, text=True, timeout=120)


def _status(cloud, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "plldb", "status", *args]
    return subprocess.run(command, env=cloud.env, capture_output=True, text=True, timeout=120)


def test_plldb_detach_restores_a_stack_left_instrumented_and_is_idempotent(cloud, sessions):
    attach = _attached(cloud)
    attach.stop(signal.SIGKILL)  # no $disconnect, and no sweep: only detach restores here
    shown = _status(cloud, "--stack-name", TARGET)
    assert shown.returncode == 0, shown.stderr
    (line,) = [line for line in shown.stdout.splitlines() if line.startswith(TARGET)]
    assert "\tACTIVE\t" in line and "user/plldb-developer" in line and "lease" in line
    for name in cloud.originals:
        assert f"  instrumented {name}" in shown.stdout
    total = len(cloud.originals)
    assert f"PLLDBRelayPolicy held by {total} function(s)" in shown.stdout
    done = _detach(cloud)
    assert done.returncode == 0, done.stderr
    assert "1 session(s) closed, restore started for 1" in done.stdout
    assert wait_for(lambda: configurations(cloud) == cloud.originals, timeout=180, interval=0.5)
    assert wait_for(lambda: not any(_relay_policy_roles(cloud).values()), timeout=30)
    assert _the_session(sessions)["Status"] == "CLOSED"
    assert _status(cloud).stdout.strip() == "no debug sessions"
    again = _detach(cloud)
    assert again.returncode == 0, again.stderr
    assert "0 session(s) closed, restore started for 0" in again.stdout


def test_plldb_detach_of_an_unknown_session_is_one_line_and_exit_1(cloud, sessions):
    done = _detach(cloud, "--session", str(uuid.uuid4()))
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("plldb: error: ") and "has no session" in line

"""Grants, leases and the sweeper under IAM enforcement, with `$disconnect` never delivered."""

from __future__ import annotations

import json
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
    outputs,
    write_project,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with OfflineCloud(poll_seconds=0.2, lossy_disconnect=True) as running:
        done = bootstrap(deployer_environment(running), tmp_path_factory.mktemp("build"))
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
    env = cloud.environment()
    awslambda = boto3.client(
        "lambda",
        endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(read_timeout=300, retries={"max_attempts": 1}),
    )
    answer = awslambda.invoke(
        FunctionName="plldb-instrumentation",
        Payload=json.dumps({"action": action, "sessionId": session_id, "stackName": TARGET}),
    )
    result = json.loads(answer["Payload"].read())
    assert "error" not in result, result
    return result


def _relay_policy_roles(cloud) -> dict[str, bool]:
    """Each of the target stack's roles: does it hold PLLDBRelayPolicy?"""
    iam = client(cloud, "iam")
    policy = outputs(cloud, "plldb").get("RelayPolicyArn") or next(
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

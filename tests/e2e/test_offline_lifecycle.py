"""The offline cloud's stack lifecycle: repaired before *_COMPLETE, clean after a delete.

The watcher is slowed to once an hour here, so whatever these tests see repaired was repaired
inside moto's CreateStack/UpdateStack, before the stack said it was complete.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import requests

from plldb.local.cloud import OfflineCloud
from tests.e2e.offline_fixture.deploy import deploy_fixture
from tests.e2e.support import bootstrap, client, command_environment
from tests.e2e.support import outputs as outputs_of

pytestmark = pytest.mark.e2e

STACK = "offline-fixture"


@pytest.fixture(scope="module")
def cloud():
    with OfflineCloud(poll_seconds=3600) as running:
        yield running


def _first_complete_view(cloud, name, done: threading.Event) -> dict:
    """Polls describe_stacks from another thread; keeps the first answer that says COMPLETE."""
    cfn = client(cloud, "cloudformation")
    lambda_client = client(cloud, "lambda")
    seen: dict = {}

    def poll() -> None:
        while not done.is_set() or not seen:
            stacks = cfn.describe_stacks()["Stacks"]  # an empty list until it is created
            stack = next((s for s in stacks if s["StackName"] == name), None)
            if stack and stack["StackStatus"].endswith("_COMPLETE"):
                seen["outputs"] = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
                seen["layers"] = lambda_client.get_function_configuration(
                    FunctionName=f"{name}-wrapped"
                ).get("Layers", [])
                return

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    seen["thread"] = thread
    return seen


def test_a_stack_is_repaired_by_the_time_it_reads_create_complete(cloud):
    done = threading.Event()
    view = _first_complete_view(cloud, STACK, done)
    returned = deploy_fixture(cloud.environment(), STACK)  # create_stack, then the waiter
    done.set()
    view["thread"].join(timeout=30)

    for outputs in (view["outputs"], returned, outputs_of(cloud, STACK)):
        assert outputs["WebSocketURL"].startswith("ws://127.0.0.1:"), outputs
        assert outputs["RestURL"].startswith("http://127.0.0.1:"), outputs
        assert ":layer:offline-fixture-wrapper:" in outputs["LayerArn"], outputs
    assert view["outputs"] == returned == outputs_of(cloud, STACK)
    assert [layer["Arn"] for layer in view["layers"]] == [returned["LayerArn"]]
    wrapped = client(cloud, "lambda").get_function_configuration(FunctionName=f"{STACK}-wrapped")
    assert wrapped["Environment"]["Variables"]["CALLBACK_URL"].startswith("http://127.0.0.1:")


def _plldb(env, *arguments, cwd):
    return subprocess.run(
        [sys.executable, "-m", "plldb", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def _inventory(cloud) -> dict[str, set[str]]:
    """Everything a stack can leave behind, by kind."""
    moto_lambda = client(cloud, "lambda")
    iam = client(cloud, "iam")
    return {
        "tables": set(client(cloud, "dynamodb").list_tables()["TableNames"]),
        "rest apis": {a["id"] for a in client(cloud, "apigateway").get_rest_apis()["items"]},
        "functions": {f["FunctionName"] for f in moto_lambda.list_functions()["Functions"]},
        "layers": {layer["LayerName"] for layer in moto_lambda.list_layers()["Layers"]},
        "roles": {r["RoleName"] for r in iam.list_roles()["Roles"]},
        "policies": {p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]},
        "exports": {e["Name"] for e in client(cloud, "cloudformation").list_exports()["Exports"]},
    }


def test_bootstrap_outputs_are_repaired_and_setup_works_again_after_destroy_all(cloud, tmp_path):
    env = command_environment(cloud)
    before = _inventory(cloud)
    first = bootstrap(env, tmp_path / "build")
    assert first.returncode == 0, first.stderr
    printed = dict(line.split("\t", 1) for line in first.stdout.strip().splitlines())
    assert printed == outputs_of(cloud, "plldb")  # what setup printed is what stays
    assert printed["DebuggerLayerArn"].startswith("arn:aws:lambda:"), printed
    assert printed["WebSocketURL"].startswith("ws://127.0.0.1:"), printed
    assert _inventory(cloud)["tables"] > before["tables"]
    exports = client(cloud, "cloudformation").list_exports()["Exports"]
    exported = {e["Name"]: e["Value"] for e in exports}
    assert exported["plldb-DebuggerLayerArn"] == printed["DebuggerLayerArn"]
    assert exported["plldb-WebSocketURL"] == printed["WebSocketURL"]

    destroyed = _plldb(env, "bootstrap", "destroy", "--all", cwd=tmp_path)
    assert destroyed.returncode == 0, destroyed.stderr
    assert _inventory(cloud) == before

    second = bootstrap(env, tmp_path / "build")
    assert second.returncode == 0, second.stderr
    again = outputs_of(cloud, "plldb")
    assert again["WebSocketURL"].startswith("ws://127.0.0.1:")
    assert ":layer:plldb-debugger:" in again["DebuggerLayerArn"]
    # The second stack works: its management API is served and checks signatures.
    unsigned = requests.post(f"{again['ManagementAPIURL']}/sessions", json={}, timeout=10)
    assert unsigned.status_code == 403
    table = client(cloud, "dynamodb").describe_table(TableName="PLLDBSessions")["Table"]
    assert table["TableStatus"] == "ACTIVE"

"""`plldb attach` under API Gateway's connection limits, scaled down: keepalives and renewal."""

from __future__ import annotations

import pytest

from plldb.local.cloud import OfflineCloud
from tests.e2e.offline_fixture.deploy import deploy_fixture
from tests.e2e.support import (
    TARGET,
    bootstrap,
    command_environment,
    configurations,
    start_attach,
    wait_for,
    write_project,
)
from tests.e2e.test_relay_journey import invoke, wait_until_instrumented, wait_until_restored

pytestmark = pytest.mark.e2e

IDLE_TIMEOUT = 3.0
MAX_AGE = 8.0


# Replaces conftest's cloud for this module: the same one, with short limits.
@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    limits = {"idle_timeout_seconds": IDLE_TIMEOUT, "max_connection_seconds": MAX_AGE}
    with OfflineCloud(poll_seconds=0.2, **limits) as running:
        env = command_environment(running)
        done = bootstrap(env, tmp_path_factory.mktemp("build"))
        assert done.returncode == 0, done.stderr
        deploy_fixture(running.environment(), TARGET)
        running.sync()
        assert not running.problems, running.problems
        # The knobs a user sets to follow shorter limits: keepalive within the idle timeout,
        # renewal before the maximum age.
        running.env = {**env, "PLLDB_KEEPALIVE_SECONDS": "1", "PLLDB_RENEW_AFTER_SECONDS": "5"}
        running.project = write_project(tmp_path_factory.mktemp("project"))
        running.originals = configurations(running)
        yield running


def _active(sessions) -> list[str]:
    return [i["SessionId"] for i in sessions.scan()["Items"] if i.get("Status") == "ACTIVE"]


def _renewed(attach) -> None:
    """Wait for a renewal, and for the new session to instrument the target again.

    Until it has, the functions point at the closed session and run their own handlers:
    the renewal's window (seconds, every renewal) in which invocations are not relayed.
    """
    attach.wait_for("renewing the connection", timeout=MAX_AGE)
    attach.wait_for("reconnected", timeout=30)
    attach.wait_for("instrumented 1/1", timeout=30)


def test_attach_outlives_the_idle_timeout_and_renews_before_the_maximum_age(cloud, sessions):
    attach = start_attach(cloud, "--function", "*-plain")
    try:
        wait_until_instrumented(cloud, attach, ("plain",))
        (first,) = _active(sessions)
        _renewed(attach)
        assert wait_for(lambda: len(_active(sessions)) == 1 and _active(sessions) != [first])
        (second,) = _active(sessions)
        answer = invoke(cloud, "plain", {"after": "renewal"})
        assert answer["error"] is None
        assert answer["payload"].get("ran") == "locally", answer
        assert answer["payload"]["echo"] == {"after": "renewal"}
        # The renewed connection is kept alive and renewed in turn, never dropped by a limit.
        _renewed(attach)
        assert wait_for(lambda: len(_active(sessions)) == 1 and _active(sessions) != [second])
        assert invoke(cloud, "plain", {"n": 2})["payload"].get("ran") == "locally"
    finally:
        assert attach.stop() == 130  # Ctrl-C: docs/troubleshooting.md
    output = attach.stdout + attach.stderr
    assert not [line for line in output if "connection lost" in line], output
    wait_until_restored(cloud)

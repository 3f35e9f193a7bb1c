"""The offline cloud each attach and relay journey runs in: plldb bootstrapped, fixture deployed."""

from __future__ import annotations

import pytest

from plldb.local.cloud import OfflineCloud
from tests.e2e.offline_fixture.deploy import deploy_fixture
from tests.e2e.support import (
    TARGET,
    bootstrap,
    client,
    configurations,
    deployer_environment,
    developer_environment,
    write_project,
)


# Module scope: moto keeps one state per process, so two clouds must never be up at once.
@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with OfflineCloud(poll_seconds=0.2) as running:
        done = bootstrap(deployer_environment(running), tmp_path_factory.mktemp("build"))
        assert done.returncode == 0, done.stderr
        deploy_fixture(running.environment(), TARGET)
        running.sync()
        assert not running.problems, running.problems
        # attach runs as a developer holding exactly the policy plldb ships, nothing else
        running.env = developer_environment(running)
        running.project = write_project(tmp_path_factory.mktemp("project"))
        running.originals = configurations(running)
        yield running


@pytest.fixture
def sessions(cloud):
    """The sessions table, emptied before each test."""
    table = client(cloud, "dynamodb", resource=True).Table("PLLDBSessions")
    for item in table.scan()["Items"]:
        table.delete_item(Key={"SessionId": item["SessionId"]})
    return table

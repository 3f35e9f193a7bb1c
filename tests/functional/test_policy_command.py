"""`plldb policy [--bootstrap]` prints the policy for the caller's account and region."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from plldb.local.motoserver import MotoServer
from plldb.permissions import bootstrap_policy, user_policy


@pytest.fixture(scope="module")
def env():
    with MotoServer() as server:
        server.reset()
        variables = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PLLDB_"))}
        variables.update(server.environment("eu-central-1"))
        yield variables


def _policy(env, *args):
    done = subprocess.run([sys.executable, "-m", "plldb", "policy", *args], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_before_bootstrap_the_user_policy_names_any_management_api(env):
    assert _policy(env) == user_policy("eu-central-1", "123456789012", api_id="*")


def test_bootstrap_prints_the_deploy_policy_for_this_region(env):
    assert _policy(env, "--bootstrap") == bootstrap_policy("eu-central-1", "123456789012")

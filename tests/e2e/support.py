"""Helpers the end-to-end tests share: clients for the offline cloud, bootstrapping, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from plldb.local.cloud import OfflineCloud


def client(cloud: OfflineCloud, service: str, resource: bool = False) -> Any:
    """A boto3 client (or resource) for the offline cloud; Lambda goes to the Lambda front."""
    env = cloud.environment()
    endpoint = env["AWS_ENDPOINT_URL_LAMBDA"] if service == "lambda" else env["AWS_ENDPOINT_URL"]
    factory = boto3.resource if resource else boto3.client
    return factory(
        service,
        endpoint_url=endpoint,
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def outputs(cloud: OfflineCloud, stack: str) -> dict[str, str]:
    described = client(cloud, "cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def command_environment(cloud: OfflineCloud) -> dict[str, str]:
    """This process's environment without AWS or plldb settings, pointed at the offline cloud."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PLLDB_"))}
    env.update(cloud.environment())
    return env


def bootstrap(env: dict[str, str], build_dir: Path) -> subprocess.CompletedProcess:
    """`plldb bootstrap setup` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "plldb", "bootstrap", "setup", "--build-dir", str(build_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False

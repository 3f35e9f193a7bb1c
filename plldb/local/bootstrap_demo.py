"""A first look without an AWS account: `plldb bootstrap setup` and `destroy --all` on moto."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass

from plldb.local.motoserver import MotoServer


@dataclass(frozen=True)
class DemoStep:
    command: str
    returncode: int
    stdout: str
    stderr: str


def run_bootstrap_demo(region: str = "eu-west-1") -> list[DemoStep]:
    """Start moto's server, run the real `plldb` command against it, and tear everything down."""
    # moto warns for each AWS::ApiGatewayV2 resource it cannot build; the docs list those gaps.
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::ApiGateway")
    results = []
    with MotoServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(server.environment(region))
        for args in (
            ["bootstrap", "setup"],
            ["bootstrap", "setup"],
            ["bootstrap", "destroy", "--all"],
        ):
            done = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
                [sys.executable, "-m", "plldb", *args],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            results.append(
                DemoStep(f"plldb {' '.join(args)}", done.returncode, done.stdout, done.stderr)
            )
            if done.returncode != 0:
                break
    return results

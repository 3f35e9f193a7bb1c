"""Figures for issue 2: `plldb bootstrap setup` against moto's server, and `plldb --help` start-up.

Prints, does not assert. Run with `inv bench` or `python bench/bench_bootstrap.py [--rounds N]`.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time

import boto3

from plldb.local.motoserver import MotoServer

REGION = "eu-west-1"
BUCKET = f"plldb-core-infrastructure-{REGION}-123456789012"


def _timed(command: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def _stored_bytes(s3) -> int:
    """Every object version in the bucket: what has been uploaded so far."""
    total = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
        total += sum(version["Size"] for version in page.get("Versions", []))
    return total


def _summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.3f} s  p99 {p99:.3f} s  (n={len(ordered)})"


def bench_setup(rounds: int) -> None:
    logging.getLogger("moto").setLevel(logging.ERROR)  # its "not supported" notices, per resource
    plldb = [sys.executable, "-m", "plldb", "bootstrap", "setup"]
    firsts, seconds, first_bytes, second_bytes = [], [], [], []
    with MotoServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(server.environment(REGION))
        s3 = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for _ in range(rounds):
            server.reset()
            with tempfile.TemporaryDirectory() as cwd:
                firsts.append(_timed(plldb, env, cwd))
                after_first = _stored_bytes(s3)
                seconds.append(_timed(plldb, env, cwd))
                first_bytes.append(after_first)
                second_bytes.append(_stored_bytes(s3) - after_first)
    print("plldb bootstrap setup against moto's server")
    print(f"  first run   {_summary(firsts)}  uploaded {statistics.median(first_bytes):.0f} bytes")
    print(
        f"  second run  {_summary(seconds)}  uploaded {statistics.median(second_bytes):.0f} bytes"
    )
    ratio = statistics.median(seconds) / statistics.median(firsts)
    print(f"  ratio second/first (median) {ratio:.2f}")


def bench_help(rounds: int) -> None:
    baseline = [_timed([sys.executable, "-c", "pass"]) for _ in range(rounds)]
    boto = [_timed([sys.executable, "-c", "import boto3"]) for _ in range(rounds)]
    helps = [_timed([sys.executable, "-m", "plldb", "--help"]) for _ in range(rounds)]
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "plldb", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    imports_boto = any(" boto3" in line or " botocore" in line for line in trace.splitlines())
    print("plldb --help")
    print(f"  bare interpreter (baseline) {_summary(baseline)}")
    print(f"  python -c 'import boto3'    {_summary(boto)}")
    print(f"  plldb --help                {_summary(helps)}")
    ratio = statistics.median(helps) / statistics.median(baseline)
    print(f"  ratio plldb --help / bare interpreter (median) {ratio:.2f}")
    print(f"  boto3 imported by --help: {'yes' if imports_boto else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="setup pairs to time")
    parser.add_argument("--help-rounds", type=int, default=15, help="--help runs to time")
    options = parser.parse_args()
    bench_setup(options.rounds)
    bench_help(options.help_rounds)


if __name__ == "__main__":
    main()

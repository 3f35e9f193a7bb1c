"""Figures for issues 3 and 12: the offline cloud's start-up and warm invokes with IAM
enforcement on and off, WebSocket round trips, concurrency.

Prints, does not assert. Run with `python bench/bench_offline_cloud.py` from the repository root.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import websocket

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plldb.local.cloud import OfflineCloud
from tests.e2e.offline_fixture.deploy import deploy_fixture

STACK = "offline-fixture"


def _summary(samples: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    median = statistics.median(ordered)
    return f"median {median * scale:.2f} {unit}  p99 {p99 * scale:.2f} {unit}  (n={len(ordered)})"


def _timed(call, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def _startup(rounds: int, *flags: str) -> list[float]:
    samples = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # A state directory of its own: `plldb local up` holds one lock per user, and another
    # cloud of this user (a colleague's checkout, a shell) must not make this one refuse.
    env["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="plldb-bench-state-")
    for _ in range(rounds):
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "plldb", "local", "up", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        while "ready" not in process.stderr.readline():
            if process.poll() is not None:
                raise SystemExit(f"plldb local up {' '.join(flags)} ended: {process.stderr.read()}")
        samples.append(time.perf_counter() - started)
        process.terminate()
        process.wait(timeout=30)
    return samples


def bench_startup(rounds: int) -> None:
    enforced = _startup(rounds)
    lenient = _startup(rounds, "--no-enforce-iam")
    print("plldb local up, start until ready")
    print(f"  IAM enforced (default)  {_summary(enforced, 's', 1.0)}")
    print(f"  --no-enforce-iam        {_summary(lenient, 's', 1.0)}")
    ratio = statistics.median(enforced) / statistics.median(lenient)
    print(f"  ratio enforced / not (median) {ratio:.2f}")


def _warm_calls(count: int, enforce_iam: bool) -> tuple[list[float], list[float]]:
    """Warm Invoke (Lambda front) and GetFunctionConfiguration (moto) round trips."""
    with OfflineCloud(enforce_iam=enforce_iam) as cloud:
        env = cloud.environment()
        deploy_fixture(env, STACK)
        cloud.sync()
        credentials = {
            "region_name": env["AWS_REGION"],
            "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        }
        lam = boto3.client("lambda", endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"], **credentials)
        name = f"{STACK}-plain"
        lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()
        invoke = _timed(
            lambda: lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read(), count
        )
        moto = _timed(lambda: lam.get_function_configuration(FunctionName=name), count)
    return invoke, moto


def bench_enforcement(count: int) -> None:
    on_invoke, on_moto = _warm_calls(count, enforce_iam=True)
    off_invoke, off_moto = _warm_calls(count, enforce_iam=False)
    print("IAM enforcement on vs off, warm calls of a trivial function")
    for label, on, off in (
        ("Invoke (Lambda front, runs the code)", on_invoke, off_invoke),
        ("GetFunctionConfiguration (moto)     ", on_moto, off_moto),
    ):
        ratio = statistics.median(on) / statistics.median(off)
        print(f"  {label}  on:  {_summary(on)}")
        print(f"  {' ' * len(label)}  off: {_summary(off)}  ratio on/off (median) {ratio:.2f}")


def bench_cloud(count: int) -> None:
    with OfflineCloud() as cloud:
        env = cloud.environment()
        deploy_fixture(env, STACK)
        cloud.sync()
        credentials = {
            "region_name": env["AWS_REGION"],
            "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        }
        lam = boto3.client("lambda", endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"], **credentials)
        cfn = boto3.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL"], **credentials)
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
        }

        def invoke(payload: bytes = b"{}") -> None:
            lam.invoke(FunctionName=f"{STACK}-plain", Payload=payload)["Payload"].read()

        invoke()
        baseline = _timed(
            lambda: lam.get_function_configuration(FunctionName=f"{STACK}-plain"), count
        )
        warm = _timed(invoke, count)
        print(
            "warm invoke round trip of a trivial function (boto3 -> Lambda front -> awslambdaric)"
        )
        print(f"  baseline: GetFunctionConfiguration passed through to moto  {_summary(baseline)}")
        print(f"  invoke                                                     {_summary(warm)}")
        ratio = statistics.median(warm) / statistics.median(baseline)
        print(f"  ratio invoke / baseline (median) {ratio:.2f}")

        client = websocket.create_connection(
            f"{outputs['WebSocketURL']}?token=let-me-in", timeout=10
        )
        try:
            client.send("warm")
            client.recv()
            echo = _timed(lambda: (client.send("x"), client.recv()), count)
            bounce_message = json.dumps({"action": "bounce"})
            client.send(bounce_message)
            client.recv()
            bounce = _timed(lambda: (client.send(bounce_message), client.recv()), count)
        finally:
            client.close()
        print("WebSocket message round trip")
        print(f"  two-way $default route response (baseline)      {_summary(echo)}")
        print(f"  route function -> post_to_connection -> client  {_summary(bounce)}")
        ratio = statistics.median(bounce) / statistics.median(echo)
        print(f"  ratio post_to_connection / route response (median) {ratio:.2f}")

        print("concurrent invokes of a trivial function (10 each per worker)")
        single = None
        for workers in (1, 2, 4, 8, 16, 32):
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                invoke_clients = [
                    boto3.client(
                        "lambda", endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"], **credentials
                    )
                    for _ in range(workers)
                ]
                list(
                    pool.map(
                        lambda c: c.invoke(FunctionName=f"{STACK}-plain", Payload=b"{}"),
                        invoke_clients,
                    )
                )

                def run(c):
                    return _timed(
                        lambda: c.invoke(FunctionName=f"{STACK}-plain", Payload=b"{}")[
                            "Payload"
                        ].read(),
                        10,
                    )

                samples = [s for batch in pool.map(run, invoke_clients) for s in batch]
            median = statistics.median(samples)
            single = single or median
            flag = "  <- median doubled" if median >= 2 * single else ""
            print(f"  {workers:>2} concurrent  {_summary(samples)}  x{median / single:.2f}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200, help="round trips per figure")
    parser.add_argument("--startup-rounds", type=int, default=3)
    options = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.ERROR)
    bench_startup(options.startup_rounds)
    bench_enforcement(options.count)
    bench_cloud(options.count)


if __name__ == "__main__":
    main()

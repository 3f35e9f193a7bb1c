"""Figures for issue 4: `plldb attach` start to "connected", and messages per second it handles.

Runs in the offline cloud. Prints, does not assert: `python bench/bench_attach.py`.
"""

from __future__ import annotations

import argparse
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
import requests
import websocket
from requests_aws4auth import AWS4Auth

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plldb.local.cloud import OfflineCloud
from tests.e2e.offline_fixture.deploy import deploy_fixture
from tests.e2e.support import write_project

TARGET = "offline-fixture"


def _active_connection(table) -> str | None:
    for item in table.scan()["Items"]:
        if item["Status"] == "ACTIVE":
            return item["ConnectionId"]
    return None


def _push(cloud, websocket_url: str, connection_id: str, count: int) -> None:
    api_id, stage = websocket_url.rstrip("/").split("/")[-2:]  # ws://127.0.0.1:PORT/{api}/{stage}
    message = json.dumps({"type": "info", "message": "x" * 64}).encode()
    for _ in range(count):
        cloud.websocket.post_to_connection(api_id, stage, connection_id, message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=2000)
    options = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.ERROR)
    with OfflineCloud(poll_seconds=0.2) as cloud:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PLLDB_"))}
        env.update(cloud.environment())
        with tempfile.TemporaryDirectory() as build:
            subprocess.run(
                [sys.executable, "-m", "plldb", "bootstrap", "setup", "--build-dir", build],
                env=env,
                check=True,
                capture_output=True,
            )
        deploy_fixture(cloud.environment(), TARGET)
        cloud.sync()
        table = boto3.resource(
            "dynamodb",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=cloud.region,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ).Table("PLLDBSessions")

        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in boto3.client(
                "cloudformation",
                endpoint_url=env["AWS_ENDPOINT_URL"],
                region_name=cloud.region,
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            ).describe_stacks(StackName="plldb")["Stacks"][0]["Outputs"]
        }
        project = write_project(Path(tempfile.mkdtemp(prefix="plldb-bench-project-")))
        connect_times = []
        for _ in range(options.rounds):
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-m", "plldb", "attach", "--stack-name", TARGET, "--force"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=project,
            )
            while "connected" not in process.stderr.readline():
                if process.poll() is not None:
                    raise SystemExit(f"attach exited: {process.stderr.read()}")
            connect_times.append(time.perf_counter() - started)
            last = process
            if len(connect_times) < options.rounds:
                process.terminate()
                process.wait(timeout=30)

        while _active_connection(table) is None:
            time.sleep(0.05)
        started = time.perf_counter()
        _push(cloud, outputs["WebSocketURL"], _active_connection(table), options.messages)
        for _ in range(options.messages):
            last.stdout.readline()
        attach_rate = options.messages / (time.perf_counter() - started)
        last.terminate()
        last.wait(timeout=30)

        # Baseline: a bare websocket-client reader on a session of its own, same messages.
        while _active_connection(table) is not None:
            time.sleep(0.05)
        session = requests.post(
            f"{outputs['ManagementAPIURL']}/sessions",
            json={"stackName": TARGET},
            auth=AWS4Auth(
                env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], cloud.region, "execute-api"
            ),
            timeout=10,
        ).json()["sessionId"]
        client = websocket.create_connection(f"{outputs['WebSocketURL']}?sessionId={session}")
        started = time.perf_counter()
        _push(cloud, outputs["WebSocketURL"], _active_connection(table), options.messages)
        for _ in range(options.messages):
            client.recv()
        bare_rate = options.messages / (time.perf_counter() - started)
        client.close()

    ordered = sorted(connect_times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print("plldb attach, start to connected (offline cloud, subprocess)")
    print(f"  median {statistics.median(ordered):.3f} s  p99 {p99:.3f} s  (n={len(ordered)})")
    print(f"messages per second ({options.messages} info messages pushed with post_to_connection)")
    print(f"  bare websocket-client reader (baseline)  {bare_rate:,.0f}/s")
    print(f"  plldb attach, parsed and printed         {attach_rate:,.0f}/s")
    print(f"  ratio attach / baseline {attach_rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()

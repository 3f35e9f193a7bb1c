"""Figures for the debug relay (issue 5): what relaying costs an invocation.

1. Relay overhead per invocation in the offline cloud: the latency a caller sees minus the
   handler's own time, for the function relayed to a `plldb attach` on this machine, against
   the same function un-instrumented. Median and p99.
2. The relay's wait in-process against moto (the CLI answering after a given handler time):
   plldb's backing-off poll against a loop that polls every second.
3. The exec wrapper's added cold start when no session is live: first invocation of a fresh
   execution environment, instrumented with a closed session, against un-instrumented.

Prints, does not assert: `python bench/bench_relay.py`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plldb import protocol
from plldb.local.cloud import OfflineCloud
from plldb.resources import cloudformation_dir
from tests.e2e.offline_fixture.deploy import deploy_fixture
from tests.e2e.support import (
    TARGET,
    AttachProcess,
    bootstrap,
    client,
    command_environment,
    configurations,
    is_instrumented,
    write_project,
)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def line(label: str, values: list[float], unit: str = "ms") -> str:
    return (
        f"  {label:<44} median {statistics.median(values):8.1f} {unit}"
        f"  p99 {percentile(values, 0.99):8.1f} {unit}  (n={len(values)})"
    )


def timed_invoke(lambda_client: Any, name: str, event: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    answer = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, json.loads(answer["Payload"].read())


# ---------------------------------------------------------------- 1. end to end


def relay_overhead(cloud: Any, invocations: int) -> tuple[list[float], list[float]]:
    """(un-instrumented, relayed) caller latency minus the handler's own time, in ms."""
    lambda_client = client(cloud, "lambda")
    name = f"{TARGET}-plain"
    timed_invoke(lambda_client, name, {"warm": True})
    plain = [timed_invoke(lambda_client, name, {"n": n})[0] for n in range(invocations)]
    attach = AttachProcess(
        cloud.env, "--stack-name", TARGET, "--function", "*-plain", cwd=cloud.project
    )
    try:
        attach.wait_for("instrumented 1/1", timeout=60)
        while not is_instrumented(configurations(cloud)[name]):
            time.sleep(0.05)
        timed_invoke(lambda_client, name, {"warm": True})
        relayed = []
        for n in range(invocations):
            elapsed, payload = timed_invoke(lambda_client, name, {"n": n})
            assert payload.get("ran") == "locally", payload
            relayed.append(elapsed - payload["handler_ms"])
    finally:
        attach.stop()
    while configurations(cloud) != cloud.originals:
        time.sleep(0.1)
    return plain, relayed


# ---------------------------------------------------------------- 2. the wait, in-process


def relay_wait(handler_seconds: float, rounds: int, fixed_poll: float | None) -> list[float]:
    """Relay round trips through moto and the real $default; ms beyond the handler's time."""
    import boto3
    from moto import mock_aws

    from tests.functional.lambda_support import create_debugger_table, create_sessions_table

    for path in (
        cloudformation_dir() / "lambda_functions",
        cloudformation_dir() / "layer" / "plldb_relay",
    ):
        sys.path.insert(0, str(path))
    os.environ.update(  # what Lambda gives the functions; moto takes any credentials
        {
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "SESSIONS_TABLE": "PLLDBSessions",
            "DEBUGGER_TABLE": "PLLDBDebugger",
            "PLLDB_CALLBACK_URL": "https://x.execute-api.eu-west-1.amazonaws.com/live",
        }
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA", "AWS_PROFILE"):
        os.environ.pop(name, None)
    results = []
    with mock_aws():
        create_sessions_table("eu-west-1")
        create_debugger_table("eu-west-1")
        link_module = importlib.import_module("debugger_link")
        proxy_module = importlib.import_module("runtime_proxy")
        default_route = importlib.import_module("websocket_default").handler
        if fixed_poll is not None:
            link_module.FIRST_POLL_SECONDS = link_module.MAX_POLL_SECONDS = fixed_poll
        else:
            importlib.reload(link_module)
        session_id = str(uuid.uuid4())
        boto3.client("dynamodb", region_name="eu-west-1").put_item(
            TableName="PLLDBSessions",
            Item={
                "SessionId": {"S": session_id},
                "StackName": {"S": "bench"},
                "Status": {"S": "ACTIVE"},
                "ConnectionId": {"S": "conn"},
                "TTL": {"N": str(int(time.time()) + 3600)},
            },
        )

        class Cli:
            def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:
                request = protocol.parse(Data)

                def answer() -> None:
                    time.sleep(handler_seconds)
                    reply = protocol.encode(protocol.response(request["requestId"], "ok"))
                    default_route({"requestContext": {"connectionId": "conn"}, "body": reply}, None)

                threading.Thread(target=answer).start()

        settings = link_module.Settings.from_environ(
            {
                "PLLDB_SESSION_ID": session_id,
                "PLLDB_SESSIONS_TABLE": "PLLDBSessions",
                "PLLDB_DEBUGGER_TABLE": "PLLDBDebugger",
                "PLLDB_CALLBACK_URL": "https://x.execute-api.eu-west-1.amazonaws.com/live",
                "AWS_LAMBDA_FUNCTION_NAME": "bench",
            }
        )
        clients = link_module.Clients(settings)
        clients.get()
        clients.connections = Cli()
        link = link_module.DebuggerLink(settings, clients=clients)
        for _ in range(rounds):
            invocation = proxy_module.Invocation(
                request_id=str(uuid.uuid4()),
                deadline_ms=int((time.time() + 60) * 1000),
                invoked_function_arn="arn",
                headers=(),
                body=b"{}",
            )
            started = time.perf_counter()
            answer = link.relay(invocation)
            assert answer is not None and answer.body == b'"ok"'
            results.append((time.perf_counter() - started - handler_seconds) * 1000)
    return results


# ---------------------------------------------------------------- 3. cold start


def _no_session_variables() -> dict[str, str]:
    """What instrumentation writes, for a session that does not exist: the relay declines."""
    return {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/bootstrap",
        "PLLDB_SESSION_ID": str(uuid.uuid4()),
        "PLLDB_SESSIONS_TABLE": "PLLDBSessions",
        "PLLDB_DEBUGGER_TABLE": "PLLDBDebugger",
        "PLLDB_CALLBACK_URL": "http://127.0.0.1:9/unused",
    }


class _PlainFunction:
    """The fixture's plain function, switched between un-instrumented and wrapped with no live
    session; put back as it was on exit."""

    def __init__(self, cloud: Any) -> None:
        self.cloud = cloud
        self.lambda_client = client(cloud, "lambda")
        self.name = f"{TARGET}-plain"
        original = self.lambda_client.get_function_configuration(FunctionName=self.name)
        self.variables = original.get("Environment", {}).get("Variables", {})
        self.layer_arn = command_outputs(cloud)["DebuggerLayerArn"]
        self.plldb_variables = _no_session_variables()

    def __enter__(self) -> _PlainFunction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.configure(False, "")

    def configure(self, instrumented: bool, tag: str) -> None:
        """A changed variable (`tag`) makes the next invocation start a fresh environment."""
        extra = self.plldb_variables if instrumented else {}
        self.lambda_client.update_function_configuration(
            FunctionName=self.name,
            Environment={"Variables": {**self.variables, **extra, **({"TAG": tag} if tag else {})}},
            Layers=[self.layer_arn] if instrumented else [],
        )
        self.cloud.sync()

    def invoke(self, event: Any) -> float:
        return timed_invoke(self.lambda_client, self.name, event)[0]


def warm_declined(cloud: Any, invocations: int) -> tuple[list[float], list[float]]:
    """Warm invocations: plain, and wrapped with no live session (the relay declines each)."""
    series: dict[bool, list[float]] = {False: [], True: []}
    with _PlainFunction(cloud) as function:
        for instrumented in (False, True):
            function.configure(instrumented, f"warm-{instrumented}")
            function.invoke({"warm-up": True})  # the cold start, not counted
            series[instrumented] = [function.invoke({"warm": n}) for n in range(invocations)]
    return series[False], series[True]


def cold_starts(cloud: Any, rounds: int) -> tuple[list[float], list[float]]:
    """First-invocation latency of fresh environments: plain, and wrapped with a closed session."""
    plain, wrapped = [], []
    with _PlainFunction(cloud) as function:
        for n in range(rounds):
            for instrumented, sink in ((False, plain), (True, wrapped)):
                function.configure(instrumented, f"{n}-{instrumented}")
                sink.append(function.invoke({"cold": n}))
    return plain, wrapped


def command_outputs(cloud: Any) -> dict[str, str]:
    stack = client(cloud, "cloudformation").describe_stacks(StackName="plldb")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invocations", type=int, default=100)
    parser.add_argument("--cold-rounds", type=int, default=8)
    parser.add_argument("--wait-rounds", type=int, default=5)
    options = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.ERROR)

    with OfflineCloud(poll_seconds=0.2) as cloud:
        env = command_environment(cloud)
        with tempfile.TemporaryDirectory() as build, tempfile.TemporaryDirectory() as project:
            done = bootstrap(env, Path(build))
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            deploy_fixture(cloud.environment(), TARGET)
            cloud.sync()
            cloud.env = env
            cloud.project = write_project(Path(project))
            cloud.originals = configurations(cloud)
            plain, relayed = relay_overhead(cloud, options.invocations)
            warm_plain, warm_wrapped = warm_declined(cloud, options.invocations)
            cold_plain, cold_wrapped = cold_starts(cloud, options.cold_rounds)

    waits = {
        handler: (
            relay_wait(handler, options.wait_rounds, None),
            relay_wait(handler, options.wait_rounds, 1.0),
        )
        for handler in (0.0, 0.05)
    }

    print("relay overhead per invocation, offline cloud (caller latency - handler time)")
    print(line("un-instrumented (deployed handler)", plain))
    print(line("relayed to plldb attach (local handler)", relayed))
    added = statistics.median(relayed) - statistics.median(plain)
    print(f"  added by the relay: median {added:.1f} ms")
    print("the relay's wait for the answer, in-process against moto (beyond the handler's time)")
    for handler, (adaptive, fixed) in waits.items():
        print(line(f"handler {handler * 1000:.0f} ms, backing-off poll (5 -> 250 ms)", adaptive))
        print(line(f"handler {handler * 1000:.0f} ms, polling every second (baseline)", fixed))
        ratio = statistics.median(adaptive) / statistics.median(fixed)
        print(f"  ratio backing-off / every second: {ratio:.3f}")
    print("warm invocation, no session live (the relay declines, the deployed handler runs)")
    print(line("un-instrumented", warm_plain))
    print(line("behind the plldb exec wrapper", warm_wrapped))
    warm_added = statistics.median(warm_wrapped) - statistics.median(warm_plain)
    print(f"  added by the wrapper: median {warm_added:.1f} ms")
    print("cold start, first invocation of a fresh environment (no session live)")
    print(line("un-instrumented", cold_plain))
    print(line("behind the plldb exec wrapper", cold_wrapped))
    cold_added = statistics.median(cold_wrapped) - statistics.median(cold_plain)
    print(f"  added by the wrapper: median {cold_added:.1f} ms")


if __name__ == "__main__":
    main()

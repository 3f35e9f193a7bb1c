"""Helpers the end-to-end tests share: clients for the offline cloud, bootstrapping, waiting."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from plldb.local.cloud import OfflineCloud

TARGET = "offline-fixture"  # the stack offline_fixture/ deploys


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


def user_environment(
    cloud: OfflineCloud,
    name: str,
    policy_arns: tuple[str, ...] = (),
    inline: dict[str, Any] | None = None,
) -> dict[str, str]:
    """command_environment() signed as a new IAM user holding exactly the given policies."""
    import json

    iam = client(cloud, "iam")
    iam.create_user(UserName=name)
    for arn in policy_arns:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    if inline is not None:
        iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=json.dumps(inline))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    env = command_environment(cloud)
    env.update(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
    return env


def developer_environment(cloud: OfflineCloud) -> dict[str, str]:
    """A developer holding the stack's PLLDBUserPolicy and the rights of one who owns the
    target functions (docs/permissions.md: plldb debugs only what its caller could change)."""
    return user_environment(
        cloud,
        "plldb-developer",
        (outputs(cloud, "plldb")["UserPolicyArn"],),
        inline=function_owner_policy(cloud),
    )


def function_owner_policy(cloud: OfflineCloud) -> dict[str, Any]:
    account = client(cloud, "sts").get_caller_identity()["Account"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "lambda:UpdateFunctionConfiguration",
                "Resource": f"arn:aws:lambda:{cloud.region}:{account}:function:*",
            },
            {  # attach --function-role hands the debugger the functions' roles
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": f"arn:aws:iam::{account}:role/*",
            },
        ],
    }


def deployer_environment(cloud: OfflineCloud) -> dict[str, str]:
    """Someone holding only `plldb policy --bootstrap`'s policy for this account and region."""
    from plldb.permissions import bootstrap_policy

    account = client(cloud, "sts").get_caller_identity()["Account"]
    return user_environment(cloud, "plldb-deployer", inline=bootstrap_policy(cloud.region, account))


def bootstrap(env: dict[str, str], build_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`plldb bootstrap setup [ARGS]` as a user runs it."""
    command = ["bootstrap", "setup", "--build-dir", str(build_dir), *args]
    return subprocess.run(
        [sys.executable, "-m", "plldb", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> bool:
    """Poll `predicate` until it holds; one last look at the deadline, so a slow poll counts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class AttachProcess:
    """`plldb attach ARGS` in a subprocess; its stdout and stderr read line by line."""

    def __init__(self, env: dict[str, str], *args: str, cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "plldb", "attach", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.seen: list[str] = []
        for stream, sink in (
            (self.process.stdout, self.stdout),
            (self.process.stderr, self.stderr),
        ):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()

    def _read(self, stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """The next line (of either stream) that holds `text`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not seen; output so far: {self.seen}")

    def stop(self, signum: int = signal.SIGINT, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()


# The local source of the fixture stack's functions: what a developer has in their checkout.
# Each answers differently from its deployed twin, so a test sees which one ran.
LOCAL_SOURCES = {
    "plain.py": """
import os
import time


def handler(event, context):
    started = time.perf_counter()
    print(f"local plain handler got {event!r}", flush=True)
    return {
        "handler_ms": (time.perf_counter() - started) * 1000,
        "ran": "locally",
        "echo": event,
        "function": context.function_name,
        "stage": os.environ.get("STAGE"),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "log_group": context.log_group_name,
    }
""",
    "failing.py": """
def handler(event, context):
    raise KeyError("raised by the local handler")
""",
    "slow.py": """
import time


def handler(event, context):
    time.sleep(event.get("seconds", 1))
    return {"ran": "locally", "slept": event.get("seconds", 1)}
""",
    "wrapped.py": """
def handler(event, context):
    return {"ran": "locally", "size": len(event.get("blob", ""))}
""",
}
# Logical id -> handler, as in offline_fixture/template.yaml; Shout's module is missing locally.
LOCAL_FUNCTIONS = {
    "PlainFunction": "plain.handler",
    "FailingFunction": "failing.handler",
    "SlowFunction": "slow.handler",
    "WrappedFunction": "wrapped.handler",
    "ShoutFunction": "shout.handler",
}


def write_project(directory: Path) -> Path:
    """A SAM project mirroring the fixture stack: template.yaml and src/."""
    (directory / "src").mkdir(parents=True, exist_ok=True)
    for name, source in LOCAL_SOURCES.items():
        (directory / "src" / name).write_text(source.lstrip())
    resources = "".join(
        f"  {logical_id}:\n    Type: AWS::Serverless::Function\n"
        f"    Properties: {{Handler: {handler}, CodeUri: src, Runtime: python3.12}}\n"
        for logical_id, handler in LOCAL_FUNCTIONS.items()
    )
    (directory / "template.yaml").write_text(
        f"Transform: AWS::Serverless-2016-10-31\nResources:\n{resources}"
    )
    return directory


def configurations(cloud) -> dict[str, dict]:
    """Environment, layers and timeout of each of the target stack's functions, as Lambda says."""
    lambda_client = client(cloud, "lambda")
    found = {}
    for function in lambda_client.list_functions()["Functions"]:
        if function["FunctionName"].startswith(f"{TARGET}-"):
            config = lambda_client.get_function_configuration(FunctionName=function["FunctionName"])
            found[function["FunctionName"]] = {
                "Variables": config.get("Environment", {}).get("Variables", {}),
                "Layers": [layer["Arn"] for layer in config.get("Layers", [])],
                "Timeout": config["Timeout"],
            }
    return found


def is_instrumented(configuration: dict) -> bool:
    return configuration["Variables"].get("AWS_LAMBDA_EXEC_WRAPPER") == "/opt/bin/bootstrap"


def start_attach(cloud: Any, *args: str) -> AttachProcess:
    """`plldb attach` on the fixture stack, from the local project that mirrors it."""
    return AttachProcess(cloud.env, "--stack-name", TARGET, *args, cwd=cloud.project)

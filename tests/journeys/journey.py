"""The state one journey carries from step to step, and the cleanup that runs whatever happened."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from plldb.bootstrap.names import STACK_NAME, bucket_name
from tests.e2e.support import AttachProcess, wait_for

from .targets import AwsTarget, OfflineTarget

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "qr-upload"


def unique_prefix() -> str:
    """`plldbj-<8 hex>`: this run's resources never share a name with a user's or another run's."""
    return f"plldbj-{uuid.uuid4().hex[:8]}"


def example_module() -> ModuleType:
    """examples/qr-upload/deploy.py, loaded by path (`qr-upload` is not an importable name)."""
    spec = importlib.util.spec_from_file_location("qr_upload_deploy_journey", EXAMPLE / "deploy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Journey:
    target: OfflineTarget | AwsTarget
    build_dir: Path
    prefix: str = field(default_factory=unique_prefix)
    account_id: str = ""
    helper_stack_existed: bool = True  # until looked at: never destroy what may be a user's
    helper_bucket_existed: bool = True
    helper_destroyed: bool = False
    example_deployed: bool = False
    originals: dict[str, dict[str, Any]] = field(default_factory=dict)
    attaches: list[AttachProcess] = field(default_factory=list)
    failed_step: str | None = None

    @property
    def stack(self) -> str:
        return f"{self.prefix}-qr-upload"

    @property
    def deployment_bucket(self) -> str:
        return f"{self.prefix}-qr-deployments-{self.account_id}-{self.target.session().region_name}"

    def client(self, service: str) -> Any:
        # A relayed invocation waits for the local handler: longer than boto3's 60 s default.
        return self.target.session().client(service, config=Config(read_timeout=300))

    def plldb(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        """`plldb ARGS` as a user runs it, in the target's environment."""
        return subprocess.run(
            [sys.executable, "-m", "plldb", *args],
            env=self.target.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def attach(self, *args: str) -> AttachProcess:
        """`plldb attach --stack-name STACK ARGS` from the example's directory."""
        process = AttachProcess(self.target.environment(), "--stack-name", self.stack, *args,
                                cwd=EXAMPLE)  # fmt: skip
        self.attaches.append(process)
        return process

    def stack_exists(self, name: str) -> bool:
        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if "does not exist" in str(error):
                return False
            raise
        return any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)

    def bucket_exists(self, name: str) -> bool:
        try:
            self.client("s3").head_bucket(Bucket=name)
        except ClientError:
            return False
        return True

    def look_at_helper(self) -> None:
        """Before bootstrap: is stack plldb (and its bucket) already there? Then it is not ours."""
        self.account_id = self.client("sts").get_caller_identity()["Account"]
        region = self.target.session().region_name
        self.helper_stack_existed = self.stack_exists(STACK_NAME)
        self.helper_bucket_existed = self.bucket_exists(bucket_name(region, self.account_id))

    def functions(self) -> list[str]:
        """The example stack's function names, from CloudFormation."""
        pages = self.client("cloudformation").get_paginator("list_stack_resources")
        return sorted(
            item["PhysicalResourceId"]
            for page in pages.paginate(StackName=self.stack)
            for item in page["StackResourceSummaries"]
            if item["ResourceType"] == "AWS::Lambda::Function"
        )

    def configurations(self) -> dict[str, dict[str, Any]]:
        """What instrumentation changes and restoring puts back: Environment, Layers, Timeout."""
        lambda_client = self.client("lambda")
        found = {}
        for name in self.functions():
            config = lambda_client.get_function_configuration(FunctionName=name)
            found[name] = {
                "Environment": config.get("Environment", {}).get("Variables", {}),
                "Layers": [layer["Arn"] for layer in config.get("Layers", [])],
                "Timeout": config["Timeout"],
            }
        return found

    def wait_updated(self) -> None:
        """Until Lambda has applied the last configuration change: on AWS an invocation right
        after UpdateFunctionConfiguration may still run the previous configuration."""
        lambda_client = self.client("lambda")
        for name in self.functions():
            lambda_client.get_waiter("function_updated").wait(FunctionName=name)

    def destroy_example(self) -> None:
        module = example_module()
        module.destroy(self.target.session(), stack_name=self.stack)
        self.example_deployed = False
        self._delete_bucket(self.deployment_bucket)

    def destroy_helper(self) -> subprocess.CompletedProcess | None:
        """`plldb bootstrap destroy` (--all when the bucket was ours too), only if we made it."""
        if self.helper_stack_existed or self.helper_destroyed or self.target.keep_helper:
            return None
        done = self.plldb(
            "bootstrap", "destroy", *([] if self.helper_bucket_existed else ["--all"])
        )
        self.helper_destroyed = done.returncode == 0
        return done

    def cleanup(self) -> list[str]:
        """Whatever step failed: stop the debuggers, remove what this run created.

        Each removal is tried even when an earlier one failed; returns what could not be done.
        """
        if self._stop_attaches():
            # The killed debugger's functions are restored on $disconnect; until then their roles
            # hold PLLDBRelayPolicy, and deleting the stack fails (DeleteConflict).
            self._wait_restored()
        problems = []
        try:
            if self.account_id and (self.example_deployed or self.stack_exists(self.stack)):
                self._destroy_example_retrying()
        except Exception as error:
            problems.append(f"example stack {self.stack} (and bucket): {error}")
        try:
            done = self.destroy_helper()
            if done is not None and done.returncode != 0:
                problems.append(f"helper stack {STACK_NAME}: {done.stderr.strip()}")
        except Exception as error:
            problems.append(f"helper stack {STACK_NAME}: {error}")
        return problems

    def _stop_attaches(self) -> bool:
        killed = False
        for attach in self.attaches:
            if attach.process.poll() is None:
                attach.process.kill()
                attach.process.wait(timeout=30)
                killed = True
        return killed

    def _wait_restored(self) -> None:
        def restored() -> bool:
            try:
                return self.configurations() == self.originals
            except ClientError:
                return True  # no stack or function to wait for

        wait_for(restored, timeout=self.target.restore_timeout, interval=1.0)

    def _destroy_example_retrying(self) -> None:
        """Deleting can race the restore's policy detach: try again until the restore timeout."""
        deadline = time.monotonic() + self.target.restore_timeout
        while True:
            try:
                self.destroy_example()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(5)

    def _delete_bucket(self, name: str) -> None:
        s3 = self.client("s3")
        if not self.bucket_exists(name):
            return
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            objects = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if objects:
                s3.delete_objects(Bucket=name, Delete={"Objects": objects, "Quiet": True})
        s3.delete_bucket(Bucket=name)

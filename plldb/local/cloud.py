"""The offline cloud: moto, the Lambda front and the API Gateway stand-in, run as one."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plldb.errors import PlldbError
from plldb.local import leftovers, settle
from plldb.local.catalog import CatalogError, build_catalog
from plldb.local.gateway.limits import (
    IDLE_TIMEOUT_SECONDS,
    MAX_CONNECTION_SECONDS,
    ConnectionLimits,
)
from plldb.local.motoserver import MotoServer
from plldb.local.repairs import Endpoints, Repairer
from plldb.local.resolver import DeployedStack, ResolveError
from plldb.local.service import Service
from plldb.local.specs import InvokeResult

log = logging.getLogger(__name__)

ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # noqa: S105 - moto's dummy credentials, printed for the user on purpose
_SETTLED = ("_COMPLETE",)
_SETTLING = "settling"  # a _synced marker: the settle hook has the stack, the watcher keeps off
# moto warns (and logs) that it builds none of these; the offline cloud serves or repairs them.
_HANDLED_TYPES = r"AWS::(ApiGateway(V2)?::\w+|S3::BucketPolicy|Lambda::Alias)"


def _quiet_handled_gaps() -> None:
    """moto's notes on resource types the offline cloud makes up for are not news to its user;
    notes on any other type still show."""
    pattern = re.compile(f"^{_HANDLED_TYPES}$")
    warnings.filterwarnings(
        "ignore", message=f"Tried to parse {_HANDLED_TYPES} but", category=UserWarning
    )

    def keep(record: logging.LogRecord) -> bool:
        handled = record.msg == "No Moto CloudFormation support for %s" and bool(
            record.args and pattern.match(str(record.args[0]))
        )
        return not handled

    parsing_log = logging.getLogger("moto")  # moto.cloudformation.parsing logs to "moto"
    if keep not in parsing_log.filters and not getattr(parsing_log, "_plldb_quiet", False):
        parsing_log.addFilter(keep)
        parsing_log._plldb_quiet = True


class OfflineCloudError(PlldbError):
    """A part of the offline cloud failed to start."""


class OfflineCloud(Service):
    """Everything on 127.0.0.1, as a context manager; `environment()` says how to reach it.

    WebSocket connections live at most `max_connection_seconds` and end after
    `idle_timeout_seconds` without a client message, as in API Gateway. `lossy_disconnect`
    closes them without any `$disconnect`; `disconnect_delivery` delivers it with that chance.
    """

    def __init__(
        self,
        region: str = "eu-west-1",
        moto_port: int = 0,
        poll_seconds: float = 0.5,
        workdir: Path | None = None,
        enforce_iam: bool = True,
        iam_propagation_seconds: float = 0.0,
        *,
        max_connection_seconds: float = MAX_CONNECTION_SECONDS,
        idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS,
        lossy_disconnect: bool = False,
        disconnect_delivery: float = 1.0,
        kms_decrypt_allowed: bool = False,
        schedule_scale: float = 1.0,
    ) -> None:
        """`enforce_iam` (default): every call must be signed by a known key and allowed by IAM
        policy; `environment()` carries the admin user's keys (docs/offline-cloud.md). False
        accepts any signature and allows everything, for speed comparisons.
        `iam_propagation_seconds`: a policy attached or put through IAM takes effect that long
        after the call, as IAM's eventual consistency can make it.
        `kms_decrypt_allowed`: without enforcement, whether GetFunction(Configuration) shows
        variables under a customer managed key (as to a caller with kms:Decrypt on it) or
        Lambda's AccessDeniedException in their place; with enforcement the caller's policies
        decide.
        `schedule_scale`: how many scheduled seconds pass per real second (60: rate(1 minute)
        runs every second); scheduled rules and schedules run on that clock."""
        if schedule_scale <= 0:
            raise ValueError("schedule_scale must be positive")
        # Checked here, so a bad limit stops `local up` before anything starts.
        self.connection_limits = ConnectionLimits(
            max_connection_seconds,
            idle_timeout_seconds,
            0.0 if lossy_disconnect else disconnect_delivery,
        )
        self.region = region
        self.schedule_scale = schedule_scale
        self.scheduler: Any = None
        self.enforce_iam = enforce_iam
        self.kms_decrypt_allowed = kms_decrypt_allowed
        self.iam_propagation_seconds = iam_propagation_seconds
        self.moto_port = moto_port
        self.poll_seconds = poll_seconds
        self._own_workdir = workdir is None
        self.workdir = workdir
        self.moto: MotoServer | None = None
        self.lambda_front: Any = None
        self.websocket: Any = None
        self.rest: Any = None
        self.problems: dict[str, str] = {}  # stack name -> why its APIs are not served
        self.repairs: dict[str, list[str]] = {}  # stack name -> what was repaired
        self._synced: dict[str, str] = {}  # stack id -> the version of it last synced
        self._served: dict[str, list[tuple[str, str]]] = {}  # stack id -> [(kind, api id)]
        self._repairer = Repairer(self._client)
        self._account_id = "123456789012"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._unlisten: Callable[[], None] | None = None
        self._leftovers: dict[str, list[leftovers.Leftover]] = {}  # stack id -> to remove

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> OfflineCloud:
        from plldb.local.gateway.rest import RestGateway
        from plldb.local.gateway.websocket import WebSocketGateway
        from plldb.local.lambda_front import LambdaFront

        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="plldb-local-"))
        try:
            self.moto = self._start_part(
                "moto server",
                lambda: MotoServer(
                    port=self.moto_port,
                    enforce_iam=self.enforce_iam,
                    region=self.region,
                    iam_propagation_seconds=self.iam_propagation_seconds,
                ).start(),
            )
            # moto keeps its state per process: start from an empty account, whatever ran before.
            self.moto.reset()
            _quiet_handled_gaps()
            self._unlisten = settle.listen(self)
            self._account_id = self._client("sts").get_caller_identity()["Account"]
            self.lambda_front = self._start_part(
                "Lambda front",
                lambda: LambdaFront(
                    self.moto.endpoint,
                    self.region,
                    self.workdir / "lambda",
                    account_id=self._account_id,
                    child_environment=self.environment(include_lambda=False),
                    enforce_iam=self.enforce_iam,
                    kms_decrypt_allowed=self.kms_decrypt_allowed,
                ).start(),
            )
            self.websocket = self._start_part(
                "WebSocket gateway",
                lambda: WebSocketGateway(
                    self.invoke,
                    self.region,
                    self._account_id,
                    max_connection_seconds=self.connection_limits.max_connection_seconds,
                    idle_timeout_seconds=self.connection_limits.idle_timeout_seconds,
                    disconnect_delivery=self.connection_limits.disconnect_delivery,
                ).start(),
            )
            if self.enforce_iam:
                self.websocket.management_check = self._manage_connections_check()
            self.rest = self._start_part(
                "REST gateway",
                lambda: RestGateway(
                    self.invoke,
                    self.region,
                    {self.moto.access_key: self.moto.secret_key},
                    self._account_id,
                    authorizer=self._execute_api_check() if self.enforce_iam else None,
                ).start(),
            )
        except OfflineCloudError:
            self.stop()
            raise
        self.sync()
        self.scheduler = self._start_scheduler()
        self._watcher = threading.Thread(target=self._watch, name="plldb-local-sync", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self._unlisten is not None:
            self._unlisten()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        for part in (self.websocket, self.rest, self.lambda_front, self.moto):
            if part is not None:
                try:
                    part.stop()
                except Exception:  # stopping the rest matters more than this part's failure
                    log.exception("stopping %s failed", type(part).__name__)
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ use
    def environment(self, include_lambda: bool = True) -> dict[str, str]:
        """The standard AWS variables that send boto3 (and so plldb) here."""
        assert self.moto is not None, "start() first"
        env = {
            "AWS_ENDPOINT_URL": self.moto.endpoint,
            "AWS_ACCESS_KEY_ID": self.moto.access_key,
            "AWS_SECRET_ACCESS_KEY": self.moto.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if include_lambda and self.lambda_front is not None:
            env["AWS_ENDPOINT_URL_LAMBDA"] = self.lambda_front.endpoint
        return env

    def invoke(self, function: str, payload: bytes) -> InvokeResult:
        return self.lambda_front.invoke(function, payload)

    def fire_schedule(self, name: str) -> list[Any]:
        """Run the scheduled rule or schedule `name` (or ARN) now, without waiting for its time;
        returns one Outcome per target (invoked, or why not)."""
        return self.scheduler.fire(name)

    def endpoints(self) -> dict[str, str]:
        return {
            "moto": self.moto.endpoint,
            "lambda": self.lambda_front.endpoint,
            "websocket": f"ws://127.0.0.1:{self.websocket.port}",
            "websocket management": f"http://127.0.0.1:{self.websocket.management_port}",
            "rest": f"http://127.0.0.1:{self.rest.port}",
        }

    def sync(self) -> None:
        """Serve the APIs of every settled stack and repair what moto left out, once per deploy."""
        with self._lock:
            stacks = self._client("cloudformation").describe_stacks().get("Stacks", [])
            live_ids = set()
            for summary in stacks:
                if summary["StackStatus"] == "DELETE_COMPLETE":
                    continue
                live_ids.add(summary["StackId"])
                if not summary["StackStatus"].endswith(_SETTLED):
                    continue
                if self._synced.get(summary["StackId"]) == _SETTLING:
                    continue
                version = self._latest_event(summary["StackId"])
                if self._synced.get(summary["StackId"]) == version:
                    continue
                self._sync_stack(summary)
                self._synced[summary["StackId"]] = version
            for stack_id in list(self._served):
                if stack_id not in live_ids:
                    self._unserve(stack_id)
                    self._synced.pop(stack_id, None)

    # ------------------------------------------------------------------ settle.Listener
    def changing(self, stack: Any, operation: str) -> None:
        """moto begins to change a stack: from here the watcher keeps off it until it settles.

        Taking the lock waits out a sync already under way, which read the stack as it was;
        a repair that ran during moto's change would mix the old parameters with new resources.
        """
        if (stack.account_id, stack.region_name) != (self._account_id, self.region):
            return
        with self._lock:
            self._synced[stack.stack_id] = _SETTLING

    def settling(self, stack: Any, operation: str) -> None:
        """Inside moto's CreateStack/UpdateStack/DeleteStack, before it reports completion."""
        if (stack.account_id, stack.region_name) != (self._account_id, self.region):
            return
        with self._lock:
            if operation == "DELETE":
                self._settle_delete(stack)
                return
            self._synced[stack.stack_id] = _SETTLING
            cfn = self._client("cloudformation")
            (summary,) = cfn.describe_stacks(StackName=stack.stack_id)["Stacks"]
            self._sync_stack(summary)

    def settled(self, stack: Any, operation: str) -> None:
        with self._lock:
            if operation == "DELETE":
                self._synced.pop(stack.stack_id, None)
            elif stack.events:
                self._synced[stack.stack_id] = str(stack.events[-1].event_id)
        if self.scheduler is not None and (stack.account_id, stack.region_name) == (
            self._account_id,
            self.region,
        ):
            self.scheduler.refresh()  # a deleted rule must not run once more before the poll

    # ------------------------------------------------------------------ internals
    def _start_scheduler(self) -> Any:
        from plldb.local.schedule_delivery import Delivery
        from plldb.local.schedule_sources import read_rules, read_schedules
        from plldb.local.schedules import Scheduler

        def jobs() -> list:
            return read_rules(self._client("events")) + read_schedules(self._client("scheduler"))

        delivery = Delivery(
            self._client,
            lambda arn, payload: self.lambda_front.invoke(arn, payload, "Event"),
            self._account_id,
            self.region,
        )
        return Scheduler(jobs, delivery.deliver, self.schedule_scale, self.poll_seconds).start()

    def _settle_delete(self, stack: Any) -> None:
        from plldb.local.outputs import forget

        forget(stack)
        self._unserve(stack.stack_id)
        items = self._leftovers.pop(stack.stack_id, [])
        for logical_id, arn in self._repairer.forget(stack.stack_id):
            items.extend(leftovers.layer_versions([arn], logical_id))
        for line in leftovers.remove(self._client, items) + self._repairer.schedules.forget(
            stack.stack_id
        ):
            log.info("stack %s: %s", stack.name, line)

    def _sync_stack(self, summary: dict) -> None:
        name = summary["StackName"]
        stack = self._deployed_stack(summary)
        self._leftovers[stack.stack_id] = leftovers.expected(stack)
        self._unserve(stack.stack_id)
        try:
            catalog = build_catalog(stack)
        except (CatalogError, ResolveError) as error:
            self.problems[name] = str(error)
            log.warning("stack %s: its APIs are not served: %s", name, error)
            return
        self.problems.pop(name, None)
        for line in catalog.idle:
            log.info("stack %s: nothing to serve for %s", name, line)
        served = []
        endpoints: Endpoints = {}
        for api in catalog.websocket_apis:
            self.websocket.add_api(api)
            served.append(("websocket", api.api_id))
            endpoints[api.api_id] = {
                "wss": f"ws://127.0.0.1:{self.websocket.port}",
                "https": f"http://127.0.0.1:{self.websocket.management_port}",
            }
        for api in catalog.rest_apis:
            self.rest.add_api(api)
            served.append(("rest", api.api_id))
            endpoints[api.api_id] = {"https": f"http://127.0.0.1:{self.rest.port}"}
        self._served[stack.stack_id] = served
        self.repairs[name] = self._repairer.repair(stack, endpoints)
        for line in self.repairs[name]:
            log.info("stack %s: %s", name, line)

    def _unserve(self, stack_id: str) -> None:
        for kind, api_id in self._served.pop(stack_id, []):
            (self.websocket if kind == "websocket" else self.rest).remove_api(api_id)

    def _deployed_stack(self, summary: dict) -> DeployedStack:
        from plldb.bootstrap.render import load_template

        cfn = self._client("cloudformation")
        body = cfn.get_template(StackName=summary["StackId"])["TemplateBody"]
        template = body if isinstance(body, dict) else load_template(body, summary["StackName"])
        physical = {}
        paginator = cfn.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=summary["StackId"]):
            for item in page["StackResourceSummaries"]:
                physical[item["LogicalResourceId"]] = item.get("PhysicalResourceId", "")
        return DeployedStack(
            name=summary["StackName"],
            stack_id=summary["StackId"],
            region=self.region,
            account_id=self._account_id,
            template=template,
            parameters={
                p["ParameterKey"]: p.get("ParameterValue", "")
                for p in summary.get("Parameters", [])
            },
            physical_ids=physical,
        )

    def _latest_event(self, stack_id: str) -> str:
        """Changes with every operation on the stack, even two within the same second."""
        events = self._client("cloudformation").describe_stack_events(StackName=stack_id)
        latest = events.get("StackEvents", [])
        return latest[0]["EventId"] if latest else ""

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.sync()
            except Exception:  # keep watching: one bad stack must not stop the others
                log.exception("offline cloud sync failed")

    def _client(self, service: str) -> Any:
        """One client per service, kept: the watcher asks every half second, and building a
        client loads its service model (tens of milliseconds). boto3 clients are thread-safe."""
        import boto3
        from botocore.config import Config

        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(
                    service,
                    endpoint_url=self.moto.endpoint if self.moto else None,
                    region_name=self.region,
                    aws_access_key_id=self.moto.access_key if self.moto else ACCESS_KEY,
                    aws_secret_access_key=self.moto.secret_key if self.moto else SECRET_KEY,
                    # moto on loopback fails deterministically or not at all: retrying a 500
                    # (a function whose variables hold an unresolved layer) only costs seconds.
                    config=Config(retries={"max_attempts": 1}),
                )
            return self._clients[service]

    def _execute_api_check(self) -> Callable[[Any, str], Any]:
        from plldb.local.iam import gateway

        return lambda request, arn: gateway.check(request, self.region, "execute-api:Invoke", arn)

    def _manage_connections_check(self) -> Callable[..., Any]:
        from plldb.local.gateway.arns import execute_api_arn
        from plldb.local.iam import gateway

        def check(request: Any, api_id: str, stage: str, verb: str, connection_id: str) -> Any:
            path = f"@connections/{connection_id}"
            arn = execute_api_arn(self.region, self._account_id, api_id, stage, verb, path)
            return gateway.check(request, self.region, "execute-api:ManageConnections", arn).verdict

        return check

    @staticmethod
    def _start_part(name: str, start: Callable[[], Any]) -> Any:
        try:
            return start()
        except OSError as error:
            raise OfflineCloudError(
                f"offline cloud: the {name} failed to start: {error}"
            ) from error

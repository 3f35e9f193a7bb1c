"""One execution environment: a process running awslambdaric against its own Runtime API."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from plldb.local.function_store import FunctionSpec
from plldb.local.role_credentials import REFRESH_MARGIN, assume_execution_role
from plldb.local.runtime_api import Invocation, Outcome, RuntimeApi
from plldb.local.unpacking import UnpackedFunction

logger = logging.getLogger(__name__)

INIT_SECONDS = 10.0  # Lambda's limit on a runtime's start before the invocation's own timeout
_POLL_SECONDS = 0.1  # how often a waiting invoke looks whether the runtime took its event yet


@dataclass(frozen=True)
class CloudContext:
    """What the offline cloud hands every runtime: where AWS is, and credentials to reach it."""

    endpoints: Mapping[str, str] = field(default_factory=dict)  # AWS_ENDPOINT_URL[_SERVICE]
    extra: Mapping[str, str] = field(default_factory=dict)  # given by the host; wins over all
    python: str = sys.executable

    def variables(self) -> dict[str, str]:
        """Endpoints and credentials, read when a runtime starts: the host's own settings win."""
        variables = dict(self.endpoints)
        variables.update(
            (name, value)
            for name, value in os.environ.items()
            if name.startswith("AWS_ENDPOINT_URL")
        )
        # Lambda hands a runtime its role's temporary credentials; offline, the host's (or dummies).
        names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        if "AWS_ACCESS_KEY_ID" in os.environ:
            variables.update((name, os.environ[name]) for name in names if name in os.environ)
        else:
            variables.update((name, "testing") for name in names)
        variables.update(self.extra)
        return variables


def new_request_id() -> str:
    return str(uuid.uuid4())


def new_trace_id() -> str:
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=0"


def runtime_command(spec: FunctionSpec, code: UnpackedFunction, python: str) -> list[str]:
    """The runtime's command line; with AWS_LAMBDA_EXEC_WRAPPER, the wrapper's arguments."""
    command = [python, "-m", "awslambdaric", spec.handler]
    wrapper = dict(spec.environment).get("AWS_LAMBDA_EXEC_WRAPPER")
    if wrapper:
        return [code.host_path(wrapper), *command]
    return command


def runtime_environment(
    spec: FunctionSpec, code: UnpackedFunction, api_address: str, context: CloudContext
) -> dict[str, str]:
    """The variables Lambda sets for a runtime, over the function's own, with /opt mapped here."""
    python_dir = _python_dir(spec.runtime)
    opt = code.opt
    python_path = [code.task_root, opt / "python" / "lib" / python_dir / "site-packages"]
    python_path.append(opt / "python")
    runtime_dir = importlib.util.find_spec("awslambdaric")
    path = [str(Path(context.python).parent), os.environ.get("PATH", os.defpath), str(opt / "bin")]
    library_path = [str(opt / "lib"), os.environ.get("LD_LIBRARY_PATH", "")]
    today = time.strftime("%Y/%m/%d", time.gmtime())
    variables = dict(spec.environment)
    variables.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{today}/[{spec.version}]{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_RUNTIME_API": api_address,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(code.task_root),
            "LAMBDA_RUNTIME_DIR": str(Path(runtime_dir.origin).parent.parent)
            if runtime_dir
            else "",
            "PYTHONPATH": os.pathsep.join(str(entry) for entry in python_path),
            "PATH": os.pathsep.join(entry for entry in path if entry),
            "LD_LIBRARY_PATH": os.pathsep.join(entry for entry in library_path if entry),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
        }
    )
    variables.update(context.variables())
    return variables


def _python_dir(runtime: str) -> str:
    if runtime.startswith("python"):
        return runtime
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def _error(request_id: str, error_type: str, detail: str) -> Outcome:
    message = f"RequestId: {request_id} Error: {detail}"
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return Outcome(body=body, error_type=error_type)


def _exit_detail(returncode: int) -> str:
    if returncode == 0:
        return "Runtime exited without providing a reason"
    if returncode < 0:
        name = signal.strsignal(-returncode) or f"signal {-returncode}"
        return f"Runtime exited with error: signal: {name.lower()}"
    return f"Runtime exited with error: exit status {returncode}"


class ExecutionEnvironment:
    """A runtime process for one function version; runs one invocation at a time."""

    def __init__(
        self,
        spec: FunctionSpec,
        code: UnpackedFunction,
        context: CloudContext,
        label: str,
        on_output: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.label = label
        self._code = code
        self._context = context
        self._on_output = on_output
        self._api = RuntimeApi(label)
        self._process: subprocess.Popen[bytes] | None = None
        self._spawn_error: str | None = None
        self._killed = False
        self._lifecycle = threading.Lock()  # start and stop may race when the front stops
        self.idle_since = time.monotonic()
        self.credentials_expire = float("inf")  # monotonic end of the role session it was given

    @property
    def alive(self) -> bool:
        process = self._process
        return process is not None and not self._killed and process.poll() is None

    @property
    def credentials_fresh(self) -> bool:
        return self.credentials_expire - time.monotonic() > REFRESH_MARGIN

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> ExecutionEnvironment:
        with self._lifecycle:
            if self._killed:
                self._spawn_error = "the environment was stopped before it started"
                return self
            self._spawn()
        return self

    def _spawn(self) -> None:
        self._api.start()
        command = runtime_command(self.spec, self._code, self._context.python)
        environment = runtime_environment(self.spec, self._code, self._api.address, self._context)
        if self.spec.role:
            # Lambda gives the runtime its role's session, whatever the host's credentials are.
            credentials, self.credentials_expire = assume_execution_role(
                self.spec.role, self.spec.name, self.spec.region
            )
            environment.update(credentials)
        try:
            self._process = subprocess.Popen(  # noqa: S603 - the function's own runtime command
                command,
                cwd=self._code.task_root,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a wrapper's children die with it
            )
        except OSError as error:
            # Lambda's words when the bootstrap or exec wrapper cannot be started.
            self._spawn_error = f"fork/exec {command[0]}: {error.strerror or error}"
            logger.warning("%s: cannot start the runtime: %s", self.label, self._spawn_error)
            return
        logger.debug("%s: started runtime pid %d: %s", self.label, self._process.pid, command)
        threading.Thread(target=self._read_output, name=f"{self.label}-out", daemon=True).start()
        threading.Thread(target=self._watch_exit, name=f"{self.label}-exit", daemon=True).start()

    def run(self, invocation: Invocation) -> Outcome:
        """Hands the event to the runtime and waits, enforcing the function's timeout."""
        if self._spawn_error is not None:
            return _error(invocation.request_id, "Runtime.InvalidEntrypoint", self._spawn_error)
        submitted = time.monotonic()
        self._api.submit(invocation)
        while not invocation.done.is_set():
            returncode = self._process.poll() if self._process else None
            if returncode is not None:  # died while idle, before the exit watcher saw work
                detail = _exit_detail(returncode)
                invocation.resolve(_error(invocation.request_id, "Runtime.ExitError", detail))
                break
            delivered = invocation.delivered_at
            start = delivered if delivered is not None else submitted + INIT_SECONDS
            remaining = start + invocation.timeout - time.monotonic()
            if remaining <= 0:
                detail = f"Task timed out after {invocation.timeout:.2f} seconds"
                if invocation.resolve(_error(invocation.request_id, "Sandbox.Timedout", detail)):
                    logger.info("%s: %s %s", self.label, invocation.request_id, detail)
                    self._kill()  # Lambda discards an environment whose invocation timed out
                break
            invocation.done.wait(min(remaining, _POLL_SECONDS))
        assert invocation.outcome is not None
        return invocation.outcome

    def stop(self) -> None:
        with self._lifecycle:
            self._kill()
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                logger.warning("%s: runtime pid %d did not exit", self.label, self._process.pid)
        self._api.stop()

    def _kill(self) -> None:
        self._killed = True
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(self._process.pid, signal.SIGKILL)

    def _watch_exit(self) -> None:
        assert self._process is not None
        returncode = self._process.wait()
        invocation = self._api.in_flight()
        level = logging.DEBUG if self._killed else logging.INFO
        logger.log(level, "%s: runtime exited with %s", self.label, returncode)
        if invocation is not None:
            detail = _exit_detail(returncode)
            self._api.abandon(_error(invocation.request_id, "Runtime.ExitError", detail))

    def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            logger.debug("[%s] %s", self.label, line)
            if self._on_output is not None:
                self._on_output(line)

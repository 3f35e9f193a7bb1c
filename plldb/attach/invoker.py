"""Runs a deployed function's handler from local source, the way Lambda's Python runtime would."""

from __future__ import annotations

import contextlib
import contextvars
import decimal
import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Protocol

from plldb.attach.environment import (
    enter_invocation,
    install_environ_overlay,
    uninstall_environ_overlay,
)
from plldb.attach.invocation import Invocation, InvocationResult, LambdaContext, Ran
from plldb.attach.local_source import LocalFunction, SourceNotFoundError, split_handler
from plldb.attach.workers import DaemonPool

logger = logging.getLogger(__name__)


class Sources(Protocol):
    def resolve(self, function_name: str) -> LocalFunction: ...


class Recorder(Protocol):
    """Keeps what ran (`attach --record`); called after the answer is on its way."""

    def record(self, ran: Ran) -> Any: ...


# --- loading handlers, one module set per function ----------------------------------------------


class _Fault(Exception):
    """A failure Lambda reports with a runtime error type rather than the exception's own."""

    def __init__(self, error_type: str, message: str, stack: list[str] | None = None) -> None:
        super().__init__(message)
        self.error = {"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}


@dataclass
class _LoadedCode:
    modules: dict[str, ModuleType] = field(default_factory=dict)
    handler: Callable[[Any, Any], Any] | None = None
    # source file -> its modification time when loaded: an edit reloads the function's code
    sources: dict[str, int] = field(default_factory=dict)

    def edited(self) -> bool:
        return any(_mtime(path) != loaded for path, loaded in self.sources.items())


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _module_name_at(path: str, root: str, is_package_dir: bool) -> str | None:
    """The dotted name a file or package directory has when `root` is the sys.path entry."""
    relative = os.path.relpath(os.path.abspath(path), root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        return None
    parts = list(Path(relative).parts)
    if not is_package_dir:
        stem = parts.pop().split(".", 1)[0]
        if stem != "__init__":
            parts.append(stem)
    return ".".join(parts) or None


def _loaded_from(module: ModuleType, name: str, root: str) -> bool:
    """True when `module` was found with `root` as its sys.path entry, not e.g. a venv inside it."""
    file = getattr(module, "__file__", None)
    if file:
        return _module_name_at(file, root, False) == name
    paths = list(getattr(module, "__path__", None) or [])
    return bool(paths) and all(_module_name_at(p, root, True) == name for p in paths)


class _CodeLoader:
    """Imports each function's handler once, keeping its modules out of the shared sys.modules.

    Two functions may both be `app.handler` from different directories; each import runs with
    its own modules put back into sys.modules and its code_dir first on sys.path, under a lock,
    and afterwards the modules found in code_dir are moved to the function's own dict.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._codes: dict[tuple[str, str, str], _LoadedCode] = {}

    def handler(self, function: LocalFunction) -> Callable[[Any, Any], Any]:
        # Keyed by function too: module-level code often reads that function's own variables.
        key = (function.function_name, str(function.code_dir), function.handler)
        with self._lock:
            code = self._codes.get(key)
            if code is None or code.edited():
                if code is not None:
                    logger.info("%s changed on disk: reloading it", function.handler)
                code = self._codes[key] = _LoadedCode()
            if code.handler is None:
                code.handler = self._import(function, code)
            return code.handler

    def _import(self, function: LocalFunction, code: _LoadedCode) -> Callable[[Any, Any], Any]:
        module_name, attribute = split_handler(function.handler)
        root = os.path.abspath(function.code_dir)
        before = dict(sys.modules)
        sys.modules.update(code.modules)
        sys.path.insert(0, root)
        importlib.invalidate_caches()
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise _Fault(
                "Runtime.ImportModuleError",
                f"Unable to import module '{module_name}': {error}",
            ) from error
        except SyntaxError as error:
            raise _Fault(
                "Runtime.UserCodeSyntaxError",
                f"Syntax error in module '{module_name}': {error}",
                [f'  File "{error.filename}" Line {error.lineno}\n    {error.text}'],
            ) from error
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(root)
            self._take_modules(code, before, root)
        handler = getattr(module, attribute, None)
        if handler is None:
            raise _Fault(
                "Runtime.HandlerNotFound",
                f"Handler '{attribute}' missing on module '{module_name}'",
            )
        return handler

    @staticmethod
    def _take_modules(code: _LoadedCode, before: dict[str, ModuleType], root: str) -> None:
        for name, module in list(sys.modules.items()):
            if before.get(name) is not module and _loaded_from(module, name, root):
                code.modules[name] = sys.modules.pop(name)
                if name in before:
                    sys.modules[name] = before[name]
                path = getattr(module, "__file__", None)
                if path:
                    code.sources[path] = _mtime(path)


# --- errors and results ------------------------------------------------------------------------

_THIS_FILE = os.path.normcase(os.path.abspath(__file__))


def _stack_trace(error: BaseException) -> list[str]:
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith("<frozen ")
        and os.path.normcase(os.path.abspath(frame.filename)) != _THIS_FILE
    ]
    return traceback.format_list(frames)


def _exception_error(error: BaseException) -> dict:
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": _stack_trace(error),
    }


def _json_default(value: Any) -> Any:
    # Lambda's runtime marshals Decimal (what DynamoDB returns) as a number.
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _failed(request_id: str, error_type: str, message: str) -> InvocationResult:
    return InvocationResult(request_id, error=_Fault(error_type, message).error)


def _marshal(request_id: str, payload: Any) -> InvocationResult:
    try:
        text = json.dumps(payload, default=_json_default)
    except (TypeError, ValueError, RecursionError) as error:
        return _failed(request_id, "Runtime.MarshalError", f"Unable to marshal response: {error}")
    return InvocationResult(request_id, payload=json.loads(text))


# --- the invoker -------------------------------------------------------------------------------


class LocalInvoker:
    """Runs invocations against local source: in the caller's thread or on a thread pool."""

    def __init__(
        self,
        sources: Sources,
        *,
        max_workers: int = 10,
        ready: threading.Event | None = None,
        close_wait_seconds: float = 1.0,
        recorder: Recorder | None = None,
    ) -> None:
        """`ready`, when given, holds submitted invocations until it is set (an IDE attached).

        Closing waits `close_wait_seconds` for running handlers, then leaves them behind: once
        detached, their answers have no connection to go to.
        """
        self._sources = sources
        self._recorder = recorder
        self._ready = ready
        self._loader = _CodeLoader()
        self._pool = DaemonPool(max_workers, "plldb-invoke")
        self._close_wait = close_wait_seconds
        self._closing = threading.Event()
        self._closed = False
        install_environ_overlay()

    def invoke(self, invocation: Invocation) -> InvocationResult:
        """Run one invocation; handler problems come back as an error result, never raised."""
        result, ran = self._run(invocation)
        self._record(ran)
        return result

    def submit(
        self, invocation: Invocation, done: Callable[[InvocationResult], None]
    ) -> Future[InvocationResult]:
        """Run an invocation on the pool and hand its result to `done` there."""
        return self._pool.submit(self._invoke_and_report, invocation, done)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        left = self._pool.shutdown(self._close_wait)
        if left:
            logger.info("left %d invocation(s) running after detaching", left)
        else:
            uninstall_environ_overlay()  # only once no handler reads the environment

    def __enter__(self) -> LocalInvoker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _invoke_and_report(
        self, invocation: Invocation, done: Callable[[InvocationResult], None]
    ) -> InvocationResult:
        held = self._held(invocation)
        result, ran = (held, None) if held else self._run(invocation)
        try:
            done(result)
        except Exception:
            logger.exception("reporting the result of request %s failed", invocation.request_id)
        self._record(ran)
        return result

    def _run(self, invocation: Invocation) -> tuple[InvocationResult, Ran | None]:
        # A fresh context per invocation: its environment overlay stays with it alone.
        return contextvars.copy_context().run(self._invoke, invocation)

    def _record(self, ran: Ran | None) -> None:
        if ran is None or self._recorder is None:
            return
        try:
            self._recorder.record(ran)
        except Exception:
            # The invocation was answered; a lost recording must not take attach down.
            logger.exception("recording request %s failed", ran.invocation.request_id)

    def _held(self, invocation: Invocation) -> InvocationResult | None:
        """Wait for `ready` until the invocation's deadline; an error result if it never came."""
        if self._ready is None or self._ready.is_set():
            return None
        logger.info("request %s waits for the debugger client", invocation.request_id)
        deadline = invocation.deadline_ms / 1000
        while not self._ready.wait(min(0.1, max(0.0, deadline - time.time()))):
            if self._closing.is_set():
                message = "plldb detached before a debugger client attached"
                return _failed(invocation.request_id, "plldb.DebuggerNotAttached", message)
            if time.time() >= deadline:
                break
        else:
            return None
        message = "no debugger client attached before the invocation's deadline"
        return _failed(invocation.request_id, "plldb.DebuggerNotAttached", message)

    def _invoke(self, invocation: Invocation) -> tuple[InvocationResult, Ran | None]:
        """The result, and what ran for the recorder: nothing when no local source was found."""
        request_id = invocation.request_id
        try:
            function = self._sources.resolve(invocation.function_name)
        except SourceNotFoundError as error:
            logger.warning("%s", error)
            return _failed(request_id, "plldb.SourceNotFound", str(error)), None
        except Exception as error:
            logger.exception("resolving the source of %s failed", invocation.function_name)
            return _failed(request_id, "plldb.InternalError", str(error)), None
        enter_invocation(invocation, function)
        logger.info("invoking %s (request %s)", function.handler, request_id)
        started_at, started = time.time(), time.perf_counter()
        result = self._call(invocation, function)
        duration_ms = (time.perf_counter() - started) * 1000
        return result, Ran(invocation, function, result, started_at, duration_ms)

    def _call(self, invocation: Invocation, function: LocalFunction) -> InvocationResult:
        request_id = invocation.request_id
        try:
            handler = self._loader.handler(function)
            payload = handler(invocation.event, LambdaContext(invocation))
        except _Fault as fault:
            return InvocationResult(request_id, error=fault.error)
        except SystemExit as error:
            message = f"Runtime exited with error: exit status {error.code}"
            return _failed(request_id, "Runtime.ExitError", message)
        except Exception as error:
            return InvocationResult(request_id, error=_exception_error(error))
        return _marshal(request_id, payload)

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
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType, TracebackType
from typing import Any, Protocol

from plldb.attach.local_source import LocalFunction, SourceNotFoundError, split_handler

logger = logging.getLogger(__name__)

CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
)  # fmt: skip
PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Invocation:
    request_id: str
    function_name: str
    event: Any
    deadline_ms: int
    invoked_function_arn: str = ""
    environment: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    context: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    credentials: Mapping[str, str] | None = None

    def __repr__(self) -> str:
        # Environment and credentials may hold secrets; keep them out of logs and tracebacks.
        return f"Invocation(request_id={self.request_id!r}, function_name={self.function_name!r})"


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    payload: Any = None
    error: dict | None = None


class Sources(Protocol):
    def resolve(self, function_name: str) -> LocalFunction: ...


# --- os.environ with a per-invocation overlay -------------------------------------------------

# None marks a variable the invocation hides from the process environment.
_overlay: contextvars.ContextVar[dict[str, str | None] | None] = contextvars.ContextVar(
    "plldb_environ_overlay", default=None
)


class OverlayEnviron(MutableMapping[str, str]):
    """os.environ as seen by the current invocation: its overlay over the real environment."""

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self.real = real

    def __getitem__(self, key: str) -> str:
        overlay = _overlay.get()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is None:
                raise KeyError(key)
            return value
        return self.real[key]

    def __setitem__(self, key: str, value: str) -> None:
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("os.environ keys and values must be str")
        overlay = _overlay.get()
        if overlay is None:
            self.real[key] = value
        else:
            overlay[key] = value

    def __delitem__(self, key: str) -> None:
        overlay = _overlay.get()
        if overlay is None:
            del self.real[key]
            return
        if key not in self:
            raise KeyError(key)
        overlay[key] = None

    def __contains__(self, key: object) -> bool:
        overlay = _overlay.get()
        if overlay is not None and key in overlay:
            return overlay[key] is not None  # type: ignore[index]
        return key in self.real

    def __iter__(self) -> Iterator[str]:
        overlay = _overlay.get()
        if overlay is None:
            yield from list(self.real)
            return
        overlay = dict(overlay)
        for key in list(self.real):
            if key not in overlay:
                yield key
        yield from (key for key, value in overlay.items() if value is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)

    def __repr__(self) -> str:
        return f"environ({dict(self)!r})"

    def __or__(self, other: Mapping[str, str]) -> dict[str, str]:
        return {**self, **other}

    def __ror__(self, other: Mapping[str, str]) -> dict[str, str]:
        return {**other, **self}

    def __ior__(self, other: Mapping[str, str]) -> OverlayEnviron:
        self.update(other)
        return self


_install_lock = threading.Lock()
_installed: list[MutableMapping[str, str]] = []  # the original os.environ, once per install


def install_environ_overlay() -> None:
    """Replace os.environ by an OverlayEnviron; nested installs are counted."""
    with _install_lock:
        if not _installed:
            _installed.append(os.environ)
            # Rebinding, not mutating, is the point: os.getenv reads the module's `environ`.
            os.environ = OverlayEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003
        else:
            _installed.append(_installed[0])


def uninstall_environ_overlay() -> None:
    """Undo one install_environ_overlay; the last one puts the original os.environ back."""
    with _install_lock:
        if not _installed:
            return
        original = _installed.pop()
        if not _installed and isinstance(os.environ, OverlayEnviron):
            os.environ = original  # type: ignore[assignment]  # noqa: B003


@contextlib.contextmanager
def environ_overlay() -> Iterator[None]:
    install_environ_overlay()
    try:
        yield
    finally:
        uninstall_environ_overlay()


def invocation_environment(
    invocation: Invocation, function: LocalFunction
) -> dict[str, str | None]:
    """The overlay one invocation sees: the function's variables and, if given, its role's keys.

    Without the role's keys the developer's own credentials apply, so any the function's
    environment carries are dropped; with them, the developer's profile and keys are hidden.
    """
    secret = (*CREDENTIAL_VARIABLES, *PROFILE_VARIABLES)
    overlay: dict[str, str | None] = {
        key: str(value) for key, value in invocation.environment.items() if key not in secret
    }
    if invocation.credentials is not None:
        overlay.update(dict.fromkeys(secret))
        overlay.update(
            {k: v for k, v in invocation.credentials.items() if k in CREDENTIAL_VARIABLES}
        )
    # Lambda's /var/task and handler point at the local copy here.
    overlay["LAMBDA_TASK_ROOT"] = str(function.code_dir)
    overlay["_HANDLER"] = function.handler
    return overlay


# --- the context object ------------------------------------------------------------------------


@dataclass
class CognitoIdentity:
    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


@dataclass
class Client:
    installation_id: str | None = None
    app_title: str | None = None
    app_version_name: str | None = None
    app_version_code: str | None = None
    app_package_name: str | None = None


@dataclass
class ClientContext:
    client: Client | None = None
    custom: Any = None
    env: Any = None


def _client_context(value: Any) -> ClientContext | None:
    if isinstance(value, str):
        value = json.loads(value) if value else None
    if not isinstance(value, Mapping):
        return None
    client = value.get("client")
    return ClientContext(
        client=Client(**{k: client.get(k) for k in Client.__dataclass_fields__})
        if isinstance(client, Mapping)
        else None,
        custom=value.get("custom"),
        env=value.get("env"),
    )


class LambdaContext:
    """The `context` argument of a handler, as Lambda's Python runtime builds it."""

    def __init__(self, invocation: Invocation) -> None:
        details = invocation.context
        identity = details.get("identity") or {}
        self.function_name = invocation.function_name
        self.function_version = str(details.get("functionVersion", "$LATEST"))
        self.invoked_function_arn = invocation.invoked_function_arn
        self.memory_limit_in_mb = int(details.get("memoryLimitInMB", 128))
        self.aws_request_id = invocation.request_id
        self.log_group_name = details.get("logGroupName", f"/aws/lambda/{invocation.function_name}")
        self.log_stream_name = details.get("logStreamName", "")
        self.identity = CognitoIdentity(
            identity.get("cognitoIdentityId"), identity.get("cognitoIdentityPoolId")
        )
        self.client_context = _client_context(details.get("clientContext"))
        self._deadline_ms = invocation.deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, message: str) -> None:
        # The handler's own output, as Lambda's context.log writes it.
        sys.stdout.write(message)

    def __repr__(self) -> str:
        return (
            f"LambdaContext(function_name={self.function_name!r}, "
            f"aws_request_id={self.aws_request_id!r})"
        )


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
            code = self._codes.setdefault(key, _LoadedCode())
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

    def __init__(self, sources: Sources, *, max_workers: int = 10) -> None:
        self._sources = sources
        self._loader = _CodeLoader()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="plldb-invoke")
        self._closed = False
        install_environ_overlay()

    def invoke(self, invocation: Invocation) -> InvocationResult:
        """Run one invocation; handler problems come back as an error result, never raised."""
        # A fresh context per invocation: its environment overlay stays with it alone.
        return contextvars.copy_context().run(self._invoke, invocation)

    def submit(
        self, invocation: Invocation, done: Callable[[InvocationResult], None]
    ) -> Future[InvocationResult]:
        """Run an invocation on the pool and hand its result to `done` there."""
        return self._pool.submit(self._invoke_and_report, invocation, done)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True)
        uninstall_environ_overlay()

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
        result = self.invoke(invocation)
        try:
            done(result)
        except Exception:
            logger.exception("reporting the result of request %s failed", invocation.request_id)
        return result

    def _invoke(self, invocation: Invocation) -> InvocationResult:
        request_id = invocation.request_id
        try:
            function = self._sources.resolve(invocation.function_name)
        except SourceNotFoundError as error:
            logger.warning("%s", error)
            return _failed(request_id, "plldb.SourceNotFound", str(error))
        except Exception as error:
            logger.exception("resolving the source of %s failed", invocation.function_name)
            return _failed(request_id, "plldb.InternalError", str(error))
        _overlay.set(invocation_environment(invocation, function))
        logger.info("invoking %s (request %s)", function.handler, request_id)
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

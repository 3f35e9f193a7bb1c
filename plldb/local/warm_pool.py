"""Keeps execution environments warm per function version, as Lambda does; retires stale ones."""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from pathlib import Path

from plldb.local.execution import CloudContext, ExecutionEnvironment
from plldb.local.function_store import FunctionSpec
from plldb.local.unpacking import unpack_function

logger = logging.getLogger(__name__)

IDLE_SECONDS = 600.0  # an idle environment older than this is stopped, as Lambda reclaims them
LOG_LINES = 2000  # output lines kept per function


class PoolClosedError(RuntimeError):
    """The front is stopping; no new environment starts."""


class WarmPool:
    """Environments keyed by function ARN; a new fingerprint (code, config) retires the old ones."""

    def __init__(self, workdir: Path, context: CloudContext) -> None:
        self._workdir = workdir
        self._context = context
        self._lock = threading.Lock()
        self._unpack_lock = threading.Lock()
        self._counter = itertools.count(1)
        self._fingerprints: dict[str, str] = {}  # function ARN -> current fingerprint
        self._idle: dict[str, list[ExecutionEnvironment]] = collections.defaultdict(list)
        self._all: set[ExecutionEnvironment] = set()
        self._logs: dict[str, collections.deque[str]] = {}
        self._closed = False

    def acquire(self, spec: FunctionSpec) -> ExecutionEnvironment:
        """An idle warm environment of this exact code and configuration, or a fresh one."""
        fingerprint = spec.fingerprint
        retired: list[ExecutionEnvironment] = []
        with self._lock:
            if self._closed:
                raise PoolClosedError("the Lambda front is stopping")
            if self._fingerprints.get(spec.arn) != fingerprint:
                self._fingerprints[spec.arn] = fingerprint
                retired = self._idle.pop(spec.arn, [])
            retired += self._expired()
            environment = None
            idle = self._idle[spec.arn]
            while idle and environment is None:
                candidate = idle.pop()  # the most recently used one, as Lambda favours
                if candidate.alive and candidate.credentials_fresh:
                    environment = candidate
                else:
                    retired.append(candidate)
            log = self._logs.setdefault(spec.name, collections.deque(maxlen=LOG_LINES))
        self._stop_all(retired)
        if environment is not None:
            return environment
        return self._start(spec, log)

    def release(self, environment: ExecutionEnvironment) -> None:
        """Back to the idle list if still healthy and current; otherwise stopped."""
        with self._lock:
            keep = (
                not self._closed
                and environment.alive
                and self._fingerprints.get(environment.spec.arn) == environment.spec.fingerprint
            )
            if keep:
                environment.idle_since = time.monotonic()
                self._idle[environment.spec.arn].append(environment)
        if not keep:
            self._stop_all([environment])

    def logs(self, function_name: str) -> list[str]:
        with self._lock:
            return list(self._logs.get(function_name, ()))

    def pids(self) -> list[int]:
        """Runtime processes this pool started and has not stopped yet."""
        with self._lock:
            return [env.pid for env in self._all if env.pid is not None]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            everything = list(self._all)
            self._idle.clear()
        self._stop_all(everything)

    def _start(self, spec: FunctionSpec, log: collections.deque[str]) -> ExecutionEnvironment:
        with self._unpack_lock:
            directory = self._workdir / "functions" / spec.name / spec.fingerprint[:16]
            code = unpack_function(spec, directory)
        label = f"{spec.name}#{next(self._counter)}"
        environment = ExecutionEnvironment(spec, code, self._context, label, log.append)
        with self._lock:
            if self._closed:
                raise PoolClosedError("the Lambda front is stopping")
            self._all.add(environment)
        logger.info("%s: starting an execution environment", label)
        return environment.start()

    def _expired(self) -> list[ExecutionEnvironment]:
        limit = time.monotonic() - IDLE_SECONDS
        expired: list[ExecutionEnvironment] = []
        for idle in self._idle.values():
            expired += [env for env in idle if env.idle_since < limit]
            idle[:] = [env for env in idle if env.idle_since >= limit]
        return expired

    def _stop_all(self, environments: list[ExecutionEnvironment]) -> None:
        for environment in environments:
            environment.stop()
            with self._lock:
                self._all.discard(environment)

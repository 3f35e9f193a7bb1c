"""PLLDBRelayPolicy on target roles: attached for its first holder, detached after its last.

Without it the relay runtime cannot assume PLLDBDebuggerRole and every invocation runs in AWS;
that is reported, never fatal. Who holds a role's grant is kept by _ledger, so one session's
restore never takes the grant from another session (a --force takeover, a stack sharing the role).
Standalone: standard library and boto3 only.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import _instrumentation as plan
import _ledger
import _relay_liveness
import _sessions
import boto3
from _common import get_logger
from botocore.exceptions import BotoCoreError, ClientError

logger = get_logger(__name__)

HOLD_ATTEMPTS = 20
HOLD_PAUSE_SECONDS = 0.5  # a detach in progress takes one IAM call

sleep: Callable[[float], None] = time.sleep  # replaced in tests


@functools.cache
def iam() -> Any:
    return boto3.client("iam", config=_sessions.CLIENT_CONFIG)


def policy_arn() -> str | None:
    return os.environ.get("PLLDB_RELAY_POLICY_ARN") or None


def describe(error: BaseException) -> str:
    if isinstance(error, ClientError):
        message = error.response.get("Error", {}).get("Message", "")
        return f"{_sessions.error_code(error)}: {message}".rstrip(": ")
    return str(error) or type(error).__name__


class RelayGrants:
    """One instrument run's grants: each function becomes a holder of its role's grant, and the
    policy is attached once per role; remembers what failed."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.policy_arn = policy_arn()
        self._done: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self.fresh: set[str] = set()  # attached by this run: IAM may not apply it for seconds

    def grant(self, role_arn: str, function_name: str) -> None:
        if not self.policy_arn or not plan.role_name(role_arn):
            return
        try:
            _hold(role_arn, _ledger.holder(self.session_id, function_name))
        except (BotoCoreError, ClientError, TimeoutError) as error:
            self._failed(role_arn, error)
            return
        with self._lock:
            if role_arn in self._done:
                return
            try:
                role = str(plan.role_name(role_arn))
                if not _relay_liveness.attached(iam(), role, str(self.policy_arn)):
                    attach(role_arn)
                    self.fresh.add(role_arn)
                self._done[role_arn] = None
            except (BotoCoreError, ClientError) as error:
                self._failed(role_arn, error)

    def _failed(self, role_arn: str, error: BaseException) -> None:
        logger.warning("granting the relay policy to %s failed: %s", role_arn, describe(error))
        self._done[role_arn] = (
            f"its role may not assume the debugger role ({describe(error)}): "
            "its invocations run in AWS"
        )

    def problem(self, role_arn: str) -> str | None:
        with self._lock:
            return self._done.get(role_arn)


def _hold(role_arn: str, who: str) -> None:
    for _ in range(HOLD_ATTEMPTS):
        if _ledger.hold(role_arn, who):
            return
        sleep(HOLD_PAUSE_SECONDS)
    raise TimeoutError(f"another request kept detaching the relay policy from {role_arn}")


def attach(role_arn: str) -> None:
    iam().attach_role_policy(RoleName=plan.role_name(role_arn), PolicyArn=policy_arn())


def release(session_id: str, functions: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The session's (function, role) pairs leave their grants; a role's policy is detached
    when its last holder left. Returns role name -> warning for detaches that failed."""
    warnings: dict[str, str] = {}
    if not policy_arn():
        return warnings
    last = set()
    for function_name, role_arn in functions:
        if plan.role_name(role_arn) and _ledger.release(
            role_arn, _ledger.holder(session_id, function_name)
        ):
            last.add(role_arn)
    for role_arn in sorted(last):
        problem = _detach(role_arn)
        if problem:
            warnings[str(plan.role_name(role_arn))] = problem
    return warnings


def _detach(role_arn: str) -> str | None:
    token = _ledger.begin_detach(role_arn)
    if token is None:
        return None  # a new holder came, or another release is detaching it
    role = plan.role_name(role_arn)
    try:
        iam().detach_role_policy(RoleName=role, PolicyArn=policy_arn())
    except ClientError as error:
        if _sessions.error_code(error) != "NoSuchEntity":
            return f"detaching the relay policy failed: {describe(error)}"
    except BotoCoreError as error:
        return f"detaching the relay policy failed: {describe(error)}"
    finally:
        if not _ledger.end_detach(role_arn, token) and _ledger.holders(role_arn):
            # This detach outlived its turn and a holder came meanwhile: give it back.
            attach(role_arn)
    logger.info("relay policy detached from %s: no holder left", role)
    return None

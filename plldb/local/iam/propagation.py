"""IAM's eventual consistency, on request: a policy attached or put takes effect N s later.

"Changes that I make are not always immediately visible" (IAM User Guide, Troubleshoot IAM,
https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency):
IAM is eventually consistent, so a new permission may not hold on the next call. With a delay
set, the evaluator ignores an attachment (or a put of an inline policy) made through the IAM
API until the delay has passed. Process-wide, like the enforcement hook.
"""

from __future__ import annotations

import threading
import time

from plldb.local.iam.operations import Operation

_OWNERS = {"UserName": "user", "RoleName": "role", "GroupName": "group"}
_OPERATIONS = {"AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy",
               "PutUserPolicy", "PutRolePolicy", "PutGroupPolicy"}  # fmt: skip
_lock = threading.Lock()
_delay = 0.0
_pending: dict[tuple[str, str, str, str], float] = {}  # (account, kind, owner, policy) -> when


def configure(seconds: float) -> None:
    """The delay for changes from now on (0: at once); forgets changes still pending."""
    global _delay
    with _lock:
        _delay = max(0.0, float(seconds))
        _pending.clear()


def delaying() -> bool:
    return _delay > 0


def record(operation: Operation, account_id: str) -> None:
    """Called for an authorized IAM request, before moto applies it."""
    if _delay <= 0 or operation.service != "iam" or operation.name not in _OPERATIONS:
        return
    params = operation.params
    policy = params.get("PolicyArn") or params.get("PolicyName")
    for member, kind in _OWNERS.items():
        if params.get(member) and policy:
            with _lock:
                key = (account_id, kind, params[member], policy)
                _pending[key] = time.monotonic() + _delay


def in_effect(account_id: str, kind: str, owner: str, policy: str) -> bool:
    """Whether an owner's policy (inline name or managed ARN) has propagated yet."""
    with _lock:
        effective_at = _pending.get((account_id, kind, owner, policy))
        if effective_at is not None and effective_at <= time.monotonic():
            del _pending[(account_id, kind, owner, policy)]
            return True
    return effective_at is None

"""Whether the relay of an instrumented function can work yet. Standalone: stdlib and boto3.

IAM is eventually consistent ("Changes that I make are not always immediately visible", IAM User
Guide): a PLLDBRelayPolicy attached just now may not let the function's role assume
PLLDBDebuggerRole for seconds, and nothing plldb may call proves that it does (only the role
itself could try). So attach names those functions as not live yet, and their relay retries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def attached(iam: Any, role: str, policy_arn: str) -> bool:
    """Whether the role already holds the policy (granted earlier, so IAM has applied it)."""
    paginator = iam.get_paginator("list_attached_role_policies")
    for page in paginator.paginate(RoleName=role):
        if any(p.get("PolicyArn") == policy_arn for p in page.get("AttachedPolicies", [])):
            return True
    return False


def not_live_yet(
    functions: Iterable[tuple[str, str, dict[str, Any]]], changed: list[str], fresh: set[str]
) -> list[str]:
    """The instrumented functions whose role was granted the relay policy just now."""
    done = set(changed)
    return sorted(name for name, _, conf in functions if name in done and conf.get("Role") in fresh)


def notice(names: list[str]) -> str:
    return (
        f"relay not live yet on {len(names)} function(s) ({', '.join(names)}): IAM is still "
        "applying the permission granted just now, usually within seconds; their invocations "
        "meanwhile wait for it (up to half their time) before being relayed"
    )

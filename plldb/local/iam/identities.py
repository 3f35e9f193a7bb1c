"""Who holds an access key, read from moto's IAM and STS backends in this process."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from plldb.local.iam import propagation
from plldb.local.iam.policy import Caller


@dataclass(frozen=True)
class Identity:
    """The principal behind an access key, and where its identity policies are read."""

    arn: str  # user ARN, or the session ARN arn:aws:sts::A:assumed-role/R/S
    account_id: str
    secret_key: str
    session_token: str | None
    kind: str  # "user" or "role"
    name: str  # the user's or the role's name

    @property
    def caller(self) -> Caller:
        """As a trust policy names it: a session is named by its role's ARN."""
        if self.kind == "role":
            return Caller(f"arn:aws:iam::{self.account_id}:role/{self.name}", self.account_id)
        return Caller(self.arn, self.account_id)

    def policies(self) -> list[str]:
        """The identity policies in force now: inline, attached, and (users) the groups'."""
        backend = _iam(self.account_id)
        if self.kind == "role":
            try:
                owners = [("role", backend.get_role(self.name))]
            except Exception:  # role deleted: a session of it is worth nothing
                return []
        else:
            user = backend.users.get(self.name)
            if user is None:
                return []
            groups = [("group", g) for g in backend.groups.values() if user in g.users]
            owners = [("user", user), *groups]
        documents: list[str] = []
        for kind, owner in owners:
            name = owner.name

            def seen(policy: str, kind: str = kind, name: str = name) -> bool:
                return propagation.in_effect(self.account_id, kind, name, policy)

            documents.extend(d for p, d in owner.policies.items() if seen(p))
            documents.extend(
                _default_version(p) for arn, p in owner.managed_policies.items() if seen(arn)
            )
        return documents


def find_identity(access_key: str) -> Identity | None:
    """The IAM user's key or the STS session with this id, if it exists and has not expired."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account_id in list(iam_backends.keys()):
        for user in list(_iam(account_id).users.values()):
            for key in user.access_keys:
                if key.access_key_id == access_key and key.status == "Active":
                    arn = f"arn:aws:iam::{account_id}:user/{user.name}"
                    return Identity(arn, account_id, key.secret_access_key, None, "user", user.name)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    for account_id in list(sts_backends.keys()):
        backend = sts_backends[account_id]["aws"]
        for session in list(backend.assumed_roles):
            if session.access_key_id == access_key and session.expiration > now:
                role_name = session.role_arn.split("/")[-1]
                return Identity(
                    f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session.session_name}",
                    account_id,
                    session.secret_access_key,
                    session.session_token,
                    "role",
                    role_name,
                )
    return None


def role_trust_policy(role_arn: str) -> str | None:
    account_id = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
    try:
        return _iam(account_id).get_role_by_arn(role_arn).assume_role_policy_document
    except Exception:  # no such role (or account): nothing trusts the caller
        return None


def _iam(account_id: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account_id]["aws"]


def _default_version(policy: Any) -> str:
    for version in policy.versions:
        if version.version_id == policy.default_version_id:
            return version.document
    return "{}"

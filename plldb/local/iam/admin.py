"""The offline account's bootstrap identity: what a root-like developer signs with."""

from __future__ import annotations

import json

ADMIN_USER = "plldb-offline-admin"
# AdministratorAccess's document, kept inline: moto has no AWS-managed policies to attach.
ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def create_admin(account_id: str, region: str) -> tuple[str, str]:
    """Creates the admin user in moto's IAM backend; returns its (access key id, secret).

    moto's state outlives a server in the same process, so an admin left by an earlier one is
    reused, with its old keys replaced: only the keys of the running cloud sign.
    """
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id]["aws"]
    if ADMIN_USER in backend.users:
        for old in list(backend.users[ADMIN_USER].access_keys):
            backend.delete_access_key(old.access_key_id, ADMIN_USER)
    else:
        backend.create_user(region, ADMIN_USER)
    backend.put_user_policy(ADMIN_USER, "AdministratorAccess", ADMIN_POLICY)
    key = backend.create_access_key(ADMIN_USER)
    return key.access_key_id, key.secret_access_key

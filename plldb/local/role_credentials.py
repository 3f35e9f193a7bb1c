"""A function's execution-role credentials, as Lambda hands them to its runtime."""

from __future__ import annotations

import datetime
import logging
import time

logger = logging.getLogger(__name__)

SESSION_SECONDS = 3600  # a role's default MaxSessionDuration
REFRESH_MARGIN = 300.0  # an environment whose keys expire sooner than this is not reused


def assume_execution_role(
    role_arn: str, function_name: str, region: str
) -> tuple[dict[str, str], float]:
    """The three AWS_* variables for a session of the role, and when (monotonic) it ends.

    The offline Lambda service assumes the role in moto's STS backend, in this process, as the
    Lambda service principal does in AWS; the session is named after the function, as Lambda's.
    """
    from moto.sts.models import sts_backends

    account_id = role_arn.split(":")[4] if role_arn.count(":") >= 5 else "123456789012"
    session = sts_backends[account_id]["aws"].assume_role(
        region_name=region,
        role_session_name=function_name[:64],
        role_arn=role_arn,
        policy="",
        duration=SESSION_SECONDS,
        external_id="",
    )
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    remaining = (session.expiration - now).total_seconds()
    variables = {
        "AWS_ACCESS_KEY_ID": session.access_key_id,
        "AWS_SECRET_ACCESS_KEY": session.secret_access_key,
        "AWS_SESSION_TOKEN": session.session_token,
    }
    return variables, time.monotonic() + remaining

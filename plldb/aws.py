"""The one place that builds boto3 sessions and turns AWS failures into plldb errors."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plldb.errors import AwsOperationError, ConfigurationError

if TYPE_CHECKING:
    import boto3

# Standard retry mode backs off on throttling, which a burst of uploads or
# stack-event polling can hit.
_RETRIES = {"max_attempts": 8, "mode": "standard"}


@dataclass(frozen=True)
class AwsTarget:
    """Where plldb works: the boto3 session plus the account and region it resolved."""

    session: boto3.Session
    account_id: str
    region: str

    def client(self, service: str) -> Any:
        return make_client(self.session, service)


def make_session(profile: str | None = None, region: str | None = None) -> boto3.Session:
    """Build a boto3 session; AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL apply as usual."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    # boto3 reads only AWS_DEFAULT_REGION; the AWS CLI v2 and the other SDKs read AWS_REGION
    # first, and users expect plldb to behave like them.
    region = region or os.environ.get("AWS_REGION") or None
    try:
        session = boto3.Session(profile_name=profile or None, region_name=region)
    except ProfileNotFound as error:
        raise ConfigurationError(
            f"AWS profile {profile!r} not found: check --profile / AWS_PROFILE "
            "against ~/.aws/config"
        ) from error
    if not session.region_name:
        raise ConfigurationError(
            "No AWS region configured: pass --region, set AWS_REGION or give the profile a region"
        )
    return session


def make_client(session: boto3.Session, service: str) -> Any:
    from botocore.config import Config

    return session.client(service, config=Config(retries=_RETRIES))


def resolve_target(profile: str | None = None, region: str | None = None) -> AwsTarget:
    """Build a session and ask STS who we are, so missing credentials fail early and clearly."""
    session = make_session(profile, region)
    with aws_errors("reading the caller identity from STS"):
        identity = make_client(session, "sts").get_caller_identity()
    return AwsTarget(session=session, account_id=identity["Account"], region=session.region_name)


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "")) or str(error)


@contextlib.contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Turn botocore failures raised while `doing` something into one-line plldb errors."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as error:
        raise ConfigurationError(
            f"No usable AWS credentials while {doing}: set AWS_PROFILE, run `aws configure` "
            "or `aws sso login`, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ) from error
    except NoRegionError as error:
        raise ConfigurationError(
            "No AWS region configured: pass --region or set AWS_REGION"
        ) from error
    except EndpointConnectionError as error:
        raise AwsOperationError(f"Cannot reach AWS while {doing}: {error}") from error
    except ClientError as error:
        code = error_code(error)
        if code in {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}:
            raise ConfigurationError(
                f"AWS credentials have expired while {doing}: refresh them and run again"
            ) from error
        if code in {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}:
            raise ConfigurationError(
                f"AWS rejected the credentials while {doing} ({code}): check the profile or keys"
            ) from error
        raise AwsOperationError(
            f"AWS error while {doing}: {code}: {error_message(error)}"
        ) from error
    except BotoCoreError as error:
        raise AwsOperationError(f"AWS error while {doing}: {error}") from error

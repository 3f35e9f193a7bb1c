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
    if not _endpoint_overridden(session):
        check_region(session.region_name, known_regions(session))
    return session


def known_regions(session: boto3.Session) -> set[str]:
    """Every region of every partition botocore knows, read from its bundled data (no call)."""
    botocore_session = session._session  # boto3 exposes the data loader only here
    regions: set[str] = set()
    for data in ("endpoints", "partitions"):
        try:
            partitions = botocore_session.get_data(data)["partitions"]
        except Exception:  # an older or trimmed botocore may lack one of the files
            partitions = []
        for partition in partitions:
            regions.update(partition.get("regions") or {})
    return regions


def check_region(region: str, known: set[str]) -> None:
    """Refuse a region name no partition has, e.g. a typo, before any call goes to its host."""
    if not known or region in known:
        return
    import difflib

    close = difflib.get_close_matches(region, sorted(known), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise ConfigurationError(
        f"{region!r} is not an AWS region: {hint}(a region newer than this botocore needs "
        "`pip install -U botocore`; for a custom endpoint set AWS_ENDPOINT_URL)"
    )


def _endpoint_overridden(session: boto3.Session) -> bool:
    """True when requests go to an endpoint the user set, where any region name may be valid."""
    if any(name.startswith("AWS_ENDPOINT_URL") and value for name, value in os.environ.items()):
        return True
    try:
        config = session._session.get_scoped_config()
    except Exception:  # a broken profile shows up at the first call, with its own error
        return False
    return bool(config.get("endpoint_url") or config.get("services"))


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
    from botocore.parsers import ResponseParserError

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
    except (BotoCoreError, ResponseParserError) as error:
        # ResponseParserError: an answer that is not AWS's (a proxy, a wrong endpoint).
        raise AwsOperationError(f"AWS error while {doing}: {_first_line(error)}") from error


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

"""The private artifact bucket: created when missing, emptied and removed on request."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from plldb.aws import aws_errors, error_code
from plldb.errors import AwsOperationError

log = logging.getLogger(__name__)

_MISSING = {"404", "NoSuchBucket", "NotFound"}
_FORBIDDEN = {"403", "AccessDenied", "Forbidden"}


def bucket_exists(s3: Any, bucket: str, account_id: str) -> bool:
    """True when the bucket exists and is ours; a name owned by another account is an error."""
    from botocore.exceptions import ClientError

    with aws_errors(f"checking bucket {bucket}"):
        try:
            s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account_id)
        except ClientError as error:
            if error_code(error) in _MISSING:
                return False
            if error_code(error) in _FORBIDDEN:
                raise _not_ours(bucket, account_id) from error
            raise
    return True


def ensure_bucket(s3: Any, bucket: str, region: str, account_id: str) -> bool:
    """Create the bucket if missing, then make sure it is private, encrypted and versioned.

    Returns True when the bucket was created by this call.
    """
    from botocore.exceptions import ClientError

    created = False
    if not bucket_exists(s3, bucket, account_id):
        log.info("creating bucket %s", bucket)
        arguments: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with aws_errors(f"creating bucket {bucket}"):
            try:
                s3.create_bucket(**arguments)
                created = True
            except ClientError as error:
                if error_code(error) == "BucketAlreadyOwnedByYou":
                    created = False
                elif error_code(error) == "BucketAlreadyExists":
                    raise _not_ours(bucket, account_id) from error
                else:
                    raise
    # Applied on every run: idempotent, and repairs a bucket whose settings drifted.
    with aws_errors(f"securing bucket {bucket}"):
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return created


def delete_bucket(
    s3: Any,
    bucket: str,
    account_id: str,
    on_deleted: Callable[[int], None] | None = None,
) -> int | None:
    """Delete every object version and delete marker, then the bucket.

    Returns the number of versions deleted, or None when the bucket was already gone.
    """
    if not bucket_exists(s3, bucket, account_id):
        return None
    deleted = 0
    with aws_errors(f"emptying bucket {bucket}"):
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            batch = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            # DeleteObjects takes at most 1000 keys, which is also the page size.
            for start in range(0, len(batch), 1000):
                chunk = batch[start : start + 1000]
                response = s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": chunk, "Quiet": True}
                )
                errors = response.get("Errors", [])
                if errors:
                    first = errors[0]
                    raise AwsOperationError(
                        f"Could not delete {first.get('Key')} from bucket {bucket}: "
                        f"{first.get('Code')}: {first.get('Message')}"
                    )
                deleted += len(chunk)
                if on_deleted:
                    on_deleted(len(chunk))
    with aws_errors(f"deleting bucket {bucket}"):
        s3.delete_bucket(Bucket=bucket)
    return deleted


def _not_ours(bucket: str, account_id: str) -> AwsOperationError:
    return AwsOperationError(
        f"Bucket {bucket} exists but is not owned by account {account_id} (or access is denied): "
        "S3 bucket names are global, so remove or rename the other bucket, or check that your "
        "credentials may use s3:ListBucket on it"
    )

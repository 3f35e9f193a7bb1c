"""Puts artifacts into the bucket, skipping any object that already holds the same bytes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plldb.aws import aws_errors, error_code

log = logging.getLogger(__name__)

# Stored on every object we write, so a later run can tell "same bytes" without downloading.
SHA256_METADATA = "plldb-sha256"


@dataclass(frozen=True)
class PutResult:
    key: str
    version_id: str | None
    uploaded: bool
    size: int


def put_if_changed(
    s3: Any, bucket: str, key: str, data: bytes, content_type: str = "application/zip"
) -> PutResult:
    """Upload `data` to `key` unless the current object already has the same SHA-256."""
    from botocore.exceptions import ClientError

    digest = hashlib.sha256(data).hexdigest()
    with aws_errors(f"uploading s3://{bucket}/{key}"):
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error_code(error) not in {"404", "NoSuchKey", "NotFound"}:
                raise
            head = None
        if head and head.get("Metadata", {}).get(SHA256_METADATA) == digest:
            log.debug("s3://%s/%s unchanged, not uploaded", bucket, key)
            return PutResult(key, head.get("VersionId"), uploaded=False, size=len(data))
        response = s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata={SHA256_METADATA: digest},
        )
    log.debug("uploaded s3://%s/%s (%d bytes)", bucket, key, len(data))
    return PutResult(key, response.get("VersionId"), uploaded=True, size=len(data))


def put_all(
    s3: Any,
    bucket: str,
    items: list[tuple[str, bytes]],
    on_done: Callable[[PutResult], None] | None = None,
) -> list[PutResult]:
    """Upload (key, data) pairs in order, reporting each result as it completes."""
    results = []
    for key, data in items:
        result = put_if_changed(s3, bucket, key, data)
        results.append(result)
        if on_done:
            on_done(result)
    return results

"""Names and S3 keys of everything bootstrap creates, as plain functions."""

from __future__ import annotations

import os
from pathlib import Path

from plldb import __version__

STACK_NAME = "plldb"
BUCKET_PREFIX = "plldb-core-infrastructure"
LAYER_ARTIFACT = "layer/plldb-debugger-layer.zip"
TEMPLATE_NAME = "template.yaml"
BUILD_DIR_ENV = "PLLDB_BUILD_DIR"


def bucket_name(region: str, account_id: str) -> str:
    """The private artifact bucket: one per account and region (REQ_FN_0001)."""
    return f"{BUCKET_PREFIX}-{region}-{account_id}"


def version_prefix(version: str = __version__) -> str:
    return f"plldb/versions/{version}/"


def function_artifact(function_name: str) -> str:
    """The artifact path of a Lambda function zip, relative to the version prefix."""
    return f"lambda_functions/{function_name}.zip"


def artifact_key(artifact: str, version: str = __version__) -> str:
    """The S3 key of an artifact, e.g. plldb/versions/0.1.0/lambda_functions/restapi.zip."""
    return version_prefix(version) + artifact


def template_key(version: str = __version__) -> str:
    return version_prefix(version) + TEMPLATE_NAME


def build_dir(version: str = __version__, root: Path | None = None) -> Path:
    """Where each step leaves its output for the next: .plldb/build/<version>/ by default."""
    if root is None:
        override = os.environ.get(BUILD_DIR_ENV)
        root = Path(override) if override else Path.cwd() / ".plldb" / "build"
    return root / version

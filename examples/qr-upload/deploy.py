"""Deploys and destroys the QR upload example stack, reusing plldb's bucket, upload and stack code.

`deploy` makes sure the deployment bucket exists (private, encrypted, versioned), zips each
`src/<name>/` deterministically, uploads the zips (unchanged bytes are not uploaded again),
renders the template for that bucket and those object versions, uploads it next to the zips and
creates or updates the stack. Rendering fills in the parameter defaults because plldb's
`StackOperator` deploys a template URL without parameters; the object versions make a changed
zip under the same key reach the functions.

This directory is not a package (`qr-upload` is not an importable name): load this file by
path, as the repository's tasks.py does with importlib.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plldb.aws import aws_errors, make_client
from plldb.bootstrap.bucket import ensure_bucket
from plldb.bootstrap.packaging import build_zip, tree_entries
from plldb.bootstrap.render import dump_template, load_template
from plldb.bootstrap.stack import StackEvent, StackOperator
from plldb.bootstrap.steps import template_url
from plldb.bootstrap.upload import put_if_changed

if TYPE_CHECKING:
    import boto3

log = logging.getLogger(__name__)

EXAMPLE_DIR = Path(__file__).resolve().parent
TEMPLATE_PATH = EXAMPLE_DIR / "template.yaml"
# Source directory under src/ -> the S3 key the template's Code names.
ARTIFACTS = {"http_api": "http_api_handler.zip", "websocket_event": "websocket_event_handler.zip"}


def deployment_bucket_name(account_id: str, region: str) -> str:
    return f"qr-upload-lambda-deployments-{account_id}-{region}"


def template_key(stack_name: str) -> str:
    return f"templates/{stack_name}.yaml"


def package_functions(src_dir: Path = EXAMPLE_DIR / "src") -> dict[str, bytes]:
    """S3 key -> zip bytes, one per function directory (pure: no AWS calls)."""
    zips = {}
    for name, key in ARTIFACTS.items():
        zips[key] = build_zip(tree_entries(src_dir / name))
    return zips


def render(
    template: dict,
    bucket: str,
    environment: str,
    versions: dict[str, str | None],
    project_name: str = "qr-upload",
) -> dict:
    """The template to deploy: parameter defaults set, code pinned to object versions (pure)."""
    rendered = copy.deepcopy(template)
    parameters = rendered["Parameters"]
    parameters["LambdaDeploymentBucket"]["Default"] = bucket
    parameters["Environment"]["Default"] = environment
    parameters["ProjectName"]["Default"] = project_name
    for resource in rendered["Resources"].values():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        code = resource["Properties"]["Code"]
        version = versions.get(code.get("S3Key"))
        if version and version != "null":
            code["S3ObjectVersion"] = version
    return rendered


def deploy(
    session: boto3.Session,
    stack_name: str = "qr-upload-dev",
    environment: str = "dev",
    bucket: str | None = None,
    project_name: str = "qr-upload",
) -> dict[str, str]:
    """Package, upload and create or update the stack; returns its outputs.

    `project_name` prefixes every named resource (functions, buckets, table, log groups), so
    two copies of the example can live in one account. "No updates are to be performed" is
    success: the current outputs are returned.
    """
    region = session.region_name
    s3 = make_client(session, "s3")
    with aws_errors("reading the caller identity from STS"):
        account_id = make_client(session, "sts").get_caller_identity()["Account"]
    bucket = bucket or deployment_bucket_name(account_id, region)
    if ensure_bucket(s3, bucket, region, account_id):
        log.info("created deployment bucket %s", bucket)
    versions = {}
    for key, data in package_functions().items():
        result = put_if_changed(s3, bucket, key, data)
        log.info("s3://%s/%s %s", bucket, key, "uploaded" if result.uploaded else "unchanged")
        versions[key] = result.version_id
    template = load_template(TEMPLATE_PATH.read_text(encoding="utf-8"), str(TEMPLATE_PATH))
    text = dump_template(render(template, bucket, environment, versions, project_name))
    key = template_key(stack_name)
    put_if_changed(s3, bucket, key, text.encode("utf-8"), "application/x-yaml")
    operator = StackOperator(
        make_client(session, "cloudformation"),
        stack_name,
        on_event=_log_event,
        on_notice=log.warning,
    )
    result = operator.deploy(template_url(s3, bucket, key))
    log.info("stack %s %s (%s)", stack_name, result.action, result.status)
    return result.outputs


def destroy(session: boto3.Session, stack_name: str = "qr-upload-dev") -> bool:
    """Empty the stack's buckets, delete the stack and wait; the deployment bucket stays.

    Returns False when there was no such stack.
    """
    cloudformation = make_client(session, "cloudformation")
    operator = StackOperator(cloudformation, stack_name, on_event=_log_event)
    stack = operator.describe()
    if stack is None:
        return False
    # CloudFormation cannot delete a bucket that still holds uploads.
    s3 = make_client(session, "s3")
    for bucket in _stack_buckets(cloudformation, stack["StackId"]):
        _empty_bucket(s3, bucket)
    return operator.destroy()


def _stack_buckets(cloudformation: Any, stack_id: str) -> list[str]:
    buckets = []
    with aws_errors(f"listing the resources of stack {stack_id}"):
        for page in cloudformation.get_paginator("list_stack_resources").paginate(
            StackName=stack_id
        ):
            buckets += [
                item["PhysicalResourceId"]
                for item in page["StackResourceSummaries"]
                if item.get("ResourceType") == "AWS::S3::Bucket" and item.get("PhysicalResourceId")
            ]
    return buckets


def _empty_bucket(s3: Any, bucket: str) -> None:
    from botocore.exceptions import ClientError

    with aws_errors(f"emptying bucket {bucket}"):
        try:
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                objects = [
                    {"Key": item["Key"], "VersionId": item["VersionId"]}
                    for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                if objects:  # a page holds at most 1000, DeleteObjects' limit
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchBucket":
                raise


def _log_event(event: StackEvent) -> None:
    level = logging.WARNING if event.failed else logging.INFO
    log.log(level, "%s %s %s", event.logical_id, event.status, event.reason)

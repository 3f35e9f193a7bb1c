"""The bootstrap steps (bucket, package, upload, render, deploy, destroy) and setup."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from plldb import __version__
from plldb.aws import AwsTarget
from plldb.bootstrap import bucket as buckets
from plldb.bootstrap import names
from plldb.bootstrap.build import (
    BuildDir,
    PackageRecord,
    RenderRecord,
    UploadedArtifact,
    UploadRecord,
)
from plldb.bootstrap.instrumented import instrumented_functions
from plldb.bootstrap.packaging import package_all
from plldb.bootstrap.parameters import parse_parameters
from plldb.bootstrap.render import (
    ArtifactLocation,
    artifact_references,
    dump_template,
    load_template,
    render_template,
)
from plldb.bootstrap.stack import DeployResult, StackEvent, StackOperator
from plldb.bootstrap.upload import put_all, put_if_changed
from plldb.errors import DeployError, MissingStepError
from plldb.reporting import Reporter
from plldb.resources import cloudformation_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SetupResult:
    bucket: str
    bucket_created: bool
    bytes_uploaded: int
    template_url: str
    deploy: DeployResult


@dataclass(frozen=True)
class DestroyResult:
    stack_deleted: bool
    bucket: str
    bucket_deleted: bool | None  # None: not asked to; False: was already gone
    versions_deleted: int = 0


def ensure_bucket(target: AwsTarget, reporter: Reporter) -> tuple[str, bool]:
    bucket = names.bucket_name(target.region, target.account_id)
    created = buckets.ensure_bucket(target.client("s3"), bucket, target.region, target.account_id)
    reporter.notice(f"{'Created' if created else 'Using'} bucket {bucket}")
    return bucket, created


def package(build: BuildDir, reporter: Reporter, source: Path | None = None) -> PackageRecord:
    """Zip every function and the layer into the build directory. No AWS calls."""
    source = source or cloudformation_dir()
    # Parse the template now, so a broken one stops the run before anything is uploaded.
    load_template((source / names.TEMPLATE_NAME).read_text(encoding="utf-8"), names.TEMPLATE_NAME)
    artifacts = package_all(source)
    with reporter.task("Packaging", len(artifacts), "zip") as advance:
        record = build.write_package(__version__, artifacts)
        advance(len(artifacts))
    total = sum(item.size for item in record.artifacts)
    reporter.notice(f"Packaged {len(artifacts)} artifacts ({total} bytes) in {build.path}")
    return record


def upload(target: AwsTarget, build: BuildDir, reporter: Reporter) -> UploadRecord:
    """Upload the packaged zips under plldb/versions/<version>/, skipping unchanged ones."""
    packaged = build.read_package()
    _check_version(packaged.version)
    bucket = names.bucket_name(target.region, target.account_id)
    s3 = target.client("s3")
    if not buckets.bucket_exists(s3, bucket, target.account_id):
        raise MissingStepError(
            f"Bucket {bucket} does not exist: run `plldb bootstrap setup` "
            "(or `plldb bootstrap bucket`) first"
        )
    artifacts = [build.read_artifact(item) for item in packaged.artifacts]
    items = [(names.artifact_key(a.name, packaged.version), a.data) for a in artifacts]
    total = sum(len(data) for _, data in items)
    with reporter.task(f"Uploading to s3://{bucket}", total, "B") as advance:
        results = put_all(s3, bucket, items, on_done=lambda result: advance(result.size))
    record = UploadRecord(
        bucket=bucket,
        region=target.region,
        artifacts=[
            UploadedArtifact(a.name, r.key, a.sha256, r.version_id, r.uploaded)
            for a, r in zip(artifacts, results, strict=True)
        ],
        bytes_uploaded=sum(r.size for r in results if r.uploaded),
    )
    build.write_upload(record)
    skipped = sum(1 for r in results if not r.uploaded)
    reporter.notice(
        f"Uploaded {len(results) - skipped} artifacts ({record.bytes_uploaded} bytes), "
        f"{skipped} unchanged"
    )
    return record


def render(
    target: AwsTarget, build: BuildDir, reporter: Reporter, source: Path | None = None
) -> RenderRecord:
    """Point the template at the uploaded artifacts and upload it next to them."""
    uploaded = build.read_upload()
    _check_region(target, uploaded.region, "upload")
    source = source or cloudformation_dir()
    template = load_template(
        (source / names.TEMPLATE_NAME).read_text(encoding="utf-8"), names.TEMPLATE_NAME
    )
    locations = {
        item.name: ArtifactLocation(item.key, item.version_id) for item in uploaded.artifacts
    }
    text = dump_template(render_template(template, uploaded.bucket, locations))
    key = names.template_key()
    s3 = target.client("s3")
    result = put_if_changed(s3, uploaded.bucket, key, text.encode("utf-8"), "application/x-yaml")
    record = RenderRecord(
        bucket=uploaded.bucket,
        region=target.region,
        template_key=key,
        template_url=template_url(s3, uploaded.bucket, key),
        template_sha256=_sha256(text),
        template_version_id=result.version_id,
        artifacts={
            logical_id: locations[artifact].key
            for logical_id, artifact in artifact_references(template).items()
        },
    )
    build.write_render(record, text)
    reporter.notice(f"Rendered template uploaded to {record.template_url}")
    return record


def deploy(
    target: AwsTarget, build: BuildDir, reporter: Reporter, parameters: Sequence[str] = ()
) -> DeployResult:
    """Create or update stack `plldb` from the rendered template's URL; `parameters` are
    `Key=Value` settings of the template's parameters (a bad one stops before any AWS call)."""
    rendered = build.read_render()
    _check_region(target, rendered.region, "render")
    template = load_template(build.rendered_template_text())
    declared = template.get("Parameters") or {}
    chosen = parse_parameters(parameters, declared)
    defaults = {
        key: str(spec["Default"])
        for key, spec in declared.items()
        if isinstance(spec, dict) and "Default" in spec
    }
    resource_count = len(template["Resources"])
    with reporter.task(
        f"Deploying stack {names.STACK_NAME}", resource_count, "resource"
    ) as advance:
        operator = StackOperator(
            target.client("cloudformation"),
            names.STACK_NAME,
            on_event=lambda event: _report_event(event, reporter, advance),
            on_notice=reporter.notice,
        )
        result = operator.deploy(
            rendered.template_url,
            tags={"plldb:version": __version__},
            parameters=chosen,
            defaults=defaults,
        )
    messages = {
        "created": "created",
        "recreated": "created again",
        "updated": "updated",
        "unchanged": "already up to date",
    }
    reporter.notice(f"Stack {names.STACK_NAME} {messages[result.action]} ({result.status})")
    return result


def check_parameters(parameters: Sequence[str]) -> dict[str, str]:
    """`Key=Value` settings checked against the shipped template's Parameters (no AWS calls)."""
    source = (cloudformation_dir() / "template.yaml").read_text()
    return parse_parameters(parameters, load_template(source).get("Parameters") or {})


def setup(
    target: AwsTarget, build: BuildDir, reporter: Reporter, parameters: Sequence[str] = ()
) -> SetupResult:
    """Make sure the bucket exists, then package, upload, render and deploy."""
    check_parameters(parameters)
    bucket, created = ensure_bucket(target, reporter)
    package(build, reporter)
    uploaded = upload(target, build, reporter)
    rendered = render(target, build, reporter)
    result = deploy(target, build, reporter, parameters)
    return SetupResult(bucket, created, uploaded.bytes_uploaded, rendered.template_url, result)


def destroy(target: AwsTarget, reporter: Reporter, everything: bool = False) -> DestroyResult:
    """Delete stack `plldb`; with `everything`, also empty and delete the bucket.

    Refused while a session still records instrumented functions: without the stack nothing
    could restore them, and their roles would keep PLLDBRelayPolicy."""
    left = instrumented_functions(target.client("dynamodb"))
    if left:
        stacks = "; ".join(f"{stack}: {', '.join(names)}" for stack, names in left.items())
        first = next(iter(left))
        raise DeployError(
            f"Functions are still instrumented ({stacks}): run `plldb detach --stack-name "
            f"{first}` for each stack first, then destroy again"
        )
    with reporter.task(f"Deleting stack {names.STACK_NAME}", 0, "resource") as advance:
        operator = StackOperator(
            target.client("cloudformation"),
            names.STACK_NAME,
            on_event=lambda event: _report_event(event, reporter, advance),
            on_notice=reporter.notice,
        )
        deleted = operator.destroy()
    reporter.notice(
        f"Stack {names.STACK_NAME} deleted"
        if deleted
        else f"Stack {names.STACK_NAME} does not exist: nothing to delete"
    )
    bucket = names.bucket_name(target.region, target.account_id)
    if not everything:
        return DestroyResult(deleted, bucket, None)
    with reporter.task(f"Emptying s3://{bucket}", 0, "version") as advance:
        versions = buckets.delete_bucket(
            target.client("s3"), bucket, target.account_id, on_deleted=advance
        )
    if versions is None:
        reporter.notice(f"Bucket {bucket} does not exist: nothing to delete")
        return DestroyResult(deleted, bucket, False)
    reporter.notice(f"Bucket {bucket} deleted ({versions} object versions removed)")
    return DestroyResult(deleted, bucket, True, versions)


def template_url(s3: object, bucket: str, key: str) -> str:
    """A path-style URL on the S3 endpoint boto3 resolved (honours AWS_ENDPOINT_URL)."""
    endpoint = s3.meta.endpoint_url.rstrip("/")  # type: ignore[attr-defined]
    return f"{endpoint}/{bucket}/{quote(key)}"


def _report_event(event: StackEvent, reporter: Reporter, advance) -> None:
    line = f"{event.status:<28} {event.resource_type:<36} {event.logical_id}"
    if event.reason:
        line += f"  {event.reason}"
    reporter.stack_event(line, failed=event.failed)
    if event.completed and event.resource_type != "AWS::CloudFormation::Stack":
        advance(1)


def _check_version(version: str) -> None:
    if version != __version__:
        raise MissingStepError(
            f"The build directory holds plldb {version} artifacts but this is plldb "
            f"{__version__}: run `plldb bootstrap package` first"
        )


def _check_region(target: AwsTarget, region: str, step: str) -> None:
    if region != target.region:
        raise MissingStepError(
            f"The {step} step ran for region {region}, not {target.region}: run "
            f"`plldb bootstrap {step}` for {target.region} first"
        )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

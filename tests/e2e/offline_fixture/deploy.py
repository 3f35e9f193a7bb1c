"""Deploys the offline cloud's test stack: zips its code, uploads it, creates the stack."""

from __future__ import annotations

from pathlib import Path

import boto3

from plldb.bootstrap.packaging import build_zip

HERE = Path(__file__).resolve().parent
BUCKET = "offline-fixture-code"


def _zip_dir(directory: Path) -> bytes:
    entries = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            relative = path.relative_to(directory)
            mode = 0o755 if relative.parts[0] == "bin" else 0o644
            entries.append((relative.as_posix(), path.read_bytes(), mode))
    return build_zip(entries)


def deploy_fixture(env: dict[str, str], stack_name: str = "offline-fixture") -> dict[str, str]:
    """Create the fixture stack in the offline cloud reached through `env`; returns its outputs."""
    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    s3 = session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": env["AWS_REGION"]}
        )
    for module in sorted((HERE / "functions").glob("*.py")):
        data = build_zip([(module.name, module.read_bytes(), 0o644)])
        s3.put_object(Bucket=BUCKET, Key=f"fixture/{module.stem}.zip", Body=data)
    s3.put_object(Bucket=BUCKET, Key="fixture/layer.zip", Body=_zip_dir(HERE / "layer"))
    cfn = session.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL"])
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=(HERE / "template.yaml").read_text(),
        Parameters=[{"ParameterKey": "CodeBucket", "ParameterValue": BUCKET}],
        Capabilities=["CAPABILITY_IAM"],
    )
    cfn.get_waiter("stack_create_complete").wait(StackName=stack_name)
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

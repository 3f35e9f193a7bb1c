"""Deploys the schedule fixture stack into an offline cloud."""

from __future__ import annotations

from pathlib import Path

import boto3

from plldb.bootstrap.packaging import build_zip

HERE = Path(__file__).resolve().parent
BUCKET = "schedule-fixture-code"


def _session(env: dict[str, str]) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )


def deploy(env: dict[str, str], stack_name: str, fast_state: str = "ENABLED") -> None:
    """Create the stack, or update it when it exists; waits until it is complete."""
    session = _session(env)
    s3 = session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": env["AWS_REGION"]}
        )
        code = (HERE / "record.py").read_bytes()
        s3.put_object(
            Bucket=BUCKET, Key="schedules/record.zip", Body=build_zip([("record.py", code, 0o644)])
        )
    cfn = session.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL"])
    arguments = {
        "StackName": stack_name,
        "TemplateBody": (HERE / "template.yaml").read_text(),
        "Parameters": [
            {"ParameterKey": "CodeBucket", "ParameterValue": BUCKET},
            {"ParameterKey": "FastState", "ParameterValue": fast_state},
        ],
        "Capabilities": ["CAPABILITY_IAM"],
    }
    existing = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == stack_name]
    if existing and existing[0]["StackStatus"] != "DELETE_COMPLETE":
        cfn.update_stack(**arguments)
        cfn.get_waiter("stack_update_complete").wait(StackName=stack_name)
    else:
        cfn.create_stack(**arguments)
        cfn.get_waiter("stack_create_complete").wait(StackName=stack_name)

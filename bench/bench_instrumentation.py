"""Figures for issue 5 (part): instrument and restore a stack of 50 Python functions, on moto.

Prints, does not assert: `python bench/bench_instrumentation.py [--functions N]`. moto answers
in about a millisecond, so this measures plldb's own work and call count, not Lambda's latency.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
import uuid
import zipfile
from pathlib import Path

import boto3

REGION = "eu-west-1"
FUNCTIONS_DIR = Path(__file__).resolve().parents[1] / "cloudformation" / "lambda_functions"
ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _setup(count: int) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="PLLDBSessions",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "SessionId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "SessionId", "KeyType": "HASH"}],
    )
    awslambda = boto3.client("lambda", region_name=REGION)
    layer = awslambda.publish_layer_version(LayerName="plldb-debugger", Content={"ZipFile": _zip()})
    os.environ["PLLDB_LAYER_ARN"] = layer["LayerVersionArn"]
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="code", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="code", Key="app.zip", Body=_zip())
    resources = {"Role": ROLE}
    for index in range(count):
        resources[f"Fn{index}"] = {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": f"app-fn-{index}",
                "Runtime": "python3.12",
                "Handler": "app.handler",
                "Timeout": 10,
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Code": {"S3Bucket": "code", "S3Key": "app.zip"},
                "Environment": {"Variables": {"INDEX": str(index)}},
            },
        }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="app", TemplateBody=json.dumps({"Resources": resources})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--functions", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        SESSIONS_TABLE="PLLDBSessions",
        DEBUGGER_TABLE="PLLDBDebugger",
        PLLDB_CALLBACK_URL="https://example.execute-api.eu-west-1.amazonaws.com/live",
        PLLDB_DEBUGGER_ROLE_ARN="arn:aws:iam::123456789012:role/plldb-debugger",
        LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(FUNCTIONS_DIR))
    from moto import mock_aws

    with mock_aws():
        _setup(options.functions)
        import instrumentation

        names = [f"app-fn-{index}" for index in range(options.functions)]
        awslambda = boto3.client("lambda", region_name=REGION)
        table = boto3.resource("dynamodb", region_name=REGION).Table("PLLDBSessions")
        reads, instruments, restores = [], [], []
        for _ in range(options.rounds):
            started = time.perf_counter()
            for name in names:
                awslambda.get_function_configuration(FunctionName=name)
            reads.append(time.perf_counter() - started)
            session_id = str(uuid.uuid4())
            table.put_item(
                Item={"SessionId": session_id, "StackName": "app", "Status": "ACTIVE", "TTL": 0}
            )
            event = {"sessionId": session_id, "stackName": "app"}
            started = time.perf_counter()
            result = instrumentation.handler({"action": "instrument", **event}, None)
            instruments.append(time.perf_counter() - started)
            assert len(result["changed"]) == options.functions, result
            started = time.perf_counter()
            result = instrumentation.handler({"action": "restore", **event}, None)
            restores.append(time.perf_counter() - started)
            assert len(result["changed"]) == options.functions, result
    print(f"instrumentation of a stack of {options.functions} Python functions (moto, in-process)")
    for label, samples in (
        ("baseline: read each configuration once", reads),
        ("instrument (record, update, wait)", instruments),
        ("restore (update, wait, forget)", restores),
    ):
        print(f"  {label:<40} median {statistics.median(samples):.3f} s  max {max(samples):.3f} s")
    ratio = statistics.median(instruments) / statistics.median(reads)
    print(f"  ratio instrument / baseline (median) {ratio:.1f}")


if __name__ == "__main__":
    main()

"""Records each disconnection, so the tests can see `$disconnect` fire."""

import os
import time

import boto3


def handler(event, context):
    connection = event["requestContext"]["connectionId"]
    boto3.client("dynamodb").put_item(
        TableName=os.environ["EVENTS_TABLE"],
        Item={"Id": {"S": f"disconnect/{connection}"}, "TTL": {"N": str(int(time.time()) + 600)}},
    )
    return {"statusCode": 200}

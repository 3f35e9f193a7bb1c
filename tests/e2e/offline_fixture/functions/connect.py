"""Records each connection, with what the authorizer said about it."""

import os
import time

import boto3


def handler(event, context):
    context_ = event["requestContext"]
    boto3.client("dynamodb").put_item(
        TableName=os.environ["EVENTS_TABLE"],
        Item={
            "Id": {"S": f"connect/{context_['connectionId']}"},
            "User": {"S": str(context_.get("authorizer", {}).get("user"))},
            "TTL": {"N": str(int(time.time()) + 600)},
        },
    )
    return {"statusCode": 200}

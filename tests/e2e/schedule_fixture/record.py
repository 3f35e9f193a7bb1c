"""Records every event it receives in the table named by RECORDS, for the tests to read."""

import json
import os
import time
import uuid

import boto3


def handler(event, context):
    boto3.client("dynamodb").put_item(
        TableName=os.environ["RECORDS"],
        Item={
            "Id": {"S": str(uuid.uuid4())},
            "Event": {"S": json.dumps(event)},
            "At": {"N": str(time.time())},
        },
    )
    return {"recorded": True}

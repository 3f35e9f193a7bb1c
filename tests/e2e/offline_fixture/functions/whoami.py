"""GET /whoami behind AWS_IAM: tells the caller who API Gateway says they are."""

import json


def handler(event, context):
    identity = event["requestContext"]["identity"]
    body = {
        "userArn": identity.get("userArn"),
        "path": event["path"],
        "name": (event.get("pathParameters") or {}).get("name"),
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }

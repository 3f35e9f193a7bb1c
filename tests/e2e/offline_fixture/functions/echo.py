"""`$default`, two-way: answers each message with what it received."""

import json


def handler(event, context):
    answer = {"echo": event.get("body"), "connectionId": event["requestContext"]["connectionId"]}
    return {"statusCode": 200, "body": json.dumps(answer)}

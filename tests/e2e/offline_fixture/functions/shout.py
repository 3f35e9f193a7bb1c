"""The `shout` route, chosen by the route selection expression."""

import json


def handler(event, context):
    message = json.loads(event["body"])
    return {"statusCode": 200, "body": json.dumps({"shout": str(message.get("text", "")).upper()})}

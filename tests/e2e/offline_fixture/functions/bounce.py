"""The `bounce` route: answers through the management API, as a relay in Lambda would."""

import os

import boto3


def handler(event, context):
    client = boto3.client("apigatewaymanagementapi", endpoint_url=os.environ["CALLBACK_URL"])
    client.post_to_connection(
        ConnectionId=event["requestContext"]["connectionId"], Data=event["body"].encode()
    )
    return {"statusCode": 200}

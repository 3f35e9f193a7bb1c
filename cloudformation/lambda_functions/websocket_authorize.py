"""WebSocket $connect authorizer on the sessionId query parameter. Standalone: stdlib and boto3."""

from _common import get_logger

logger = get_logger(__name__)


def handler(event, context):
    # Deny until session checks exist: an authorizer must never default to Allow.
    logger.info("connection %s denied", event.get("requestContext", {}).get("connectionId"))
    return {
        "principalId": "plldb",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": event["methodArn"]}
            ],
        },
    }

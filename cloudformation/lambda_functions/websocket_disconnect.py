"""WebSocket $disconnect route. Standalone: standard library and boto3 only."""

from _common import get_logger

logger = get_logger(__name__)


def handler(event, context):
    logger.info("$disconnect from %s", event.get("requestContext", {}).get("connectionId"))
    return {"statusCode": 200}

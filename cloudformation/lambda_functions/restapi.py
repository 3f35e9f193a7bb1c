"""Management REST API (POST /sessions). Standalone: standard library and boto3 only."""

from _common import get_logger, json_response

logger = get_logger(__name__)


def handler(event, context):
    # Session creation arrives with the sessions issue; until then the API says so plainly.
    logger.info("%s %s", event.get("httpMethod"), event.get("path"))
    return json_response(501, {"message": "Session management is not implemented yet"})

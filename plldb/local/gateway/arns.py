"""execute-api ARNs, as IAM policies name API Gateway calls.

Formats from the API Gateway Developer Guide: "Control access to a REST API with IAM permissions"
(API_ID/STAGE/HTTP-VERB/RESOURCE-PATH) and "Control access to WebSocket APIs with IAM
authorization" (API_ID/STAGE/POST/@connections/CONNECTION_ID for the @connections API).
"""

from __future__ import annotations


def execute_api_arn(
    region: str, account_id: str, api_id: str, stage: str, verb: str, path: str
) -> str:
    return f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{verb}/{path.lstrip('/')}"

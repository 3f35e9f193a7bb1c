"""API Gateway's IAM check (AWS_IAM methods, @connections): SigV4 by a known key, then policy.

The resource is the execute-api ARN of the call, as the API Gateway Developer Guide gives it
("Control access to a REST API with IAM permissions"):
arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/HTTP-VERB/RESOURCE-PATH.
"""

from __future__ import annotations

from dataclasses import dataclass

from plldb.local.gateway import sigv4
from plldb.local.gateway.sigv4 import SignedRequest, Verdict
from plldb.local.iam.enforcer import Allowed, Refusal, authorize
from plldb.local.iam.identities import find_identity
from plldb.local.iam.policy import RequestContext

ACCESS_DENIED = "AccessDeniedException"


@dataclass(frozen=True)
class GatewayCaller:
    verdict: Verdict
    arn: str | None = None  # the user or assumed-role session ARN, when authorized


def check(request: SignedRequest, region: str, action: str, resource: str) -> GatewayCaller:
    """Who signed the request, if the signature is theirs and a policy allows `action`."""
    header = request.header("Authorization")
    if header is None:
        return GatewayCaller(sigv4.verify(request, {}, region))  # "Missing Authentication Token"
    access_key = header.partition("Credential=")[2].partition("/")[0]
    identity = find_identity(access_key)
    if identity is None or request.header("X-Amz-Security-Token") != identity.session_token:
        # An unknown key and a session key without its token are refused alike, as AWS does.
        return GatewayCaller(sigv4.verify(request, {}, region))
    verdict = sigv4.verify(request, {access_key: identity.secret_key}, region)
    if not verdict.ok:
        return GatewayCaller(verdict)
    try:
        authorize(Allowed(identity, "execute-api", region), [RequestContext(action, resource)])
    except Refusal as refusal:
        return GatewayCaller(Verdict(error_type=ACCESS_DENIED, message=refusal.message))
    return GatewayCaller(verdict, identity.arn)

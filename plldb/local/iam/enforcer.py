"""Authenticate a signed request and authorize it with the caller's identity policies."""

from __future__ import annotations

from dataclasses import dataclass

from plldb.local.gateway import sigv4
from plldb.local.gateway.sigv4 import SignedRequest
from plldb.local.iam.identities import Identity, find_identity, role_trust_policy
from plldb.local.iam.operations import UnknownOperationError, read_operation
from plldb.local.iam.policy import Decision, RequestContext, evaluate, trust_decision
from plldb.local.iam.requests import Scope, authorizations

# Credential scope names that are not botocore's service names.
_MODEL_NAMES = {"execute-api": "apigateway"}
_ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}  # AWS answers it even under an explicit Deny


@dataclass(frozen=True)
class Refusal(Exception):
    """What AWS answers instead: a 403 with the error code of the service's protocol."""

    kind: str  # "signature", "unknown key", "token", "denied", "missing"
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Allowed:
    identity: Identity
    service: str  # the credential scope's service ("dynamodb", "lambda", ...)
    region: str


def authenticate(request: SignedRequest) -> Allowed:
    """The caller behind a valid SigV4 signature; raises Refusal otherwise."""
    header = request.header("Authorization")
    if header is None:
        raise Refusal("missing", "Request is missing Authentication Token")
    credential = header.partition("Credential=")[2].partition(",")[0].split("/")
    if len(credential) != 5:
        raise Refusal("signature", "Authorization header requires 'Credential' parameter.")
    access_key, _, region, service, _ = credential
    identity = find_identity(access_key)
    if identity is None:
        raise Refusal("unknown key", "The security token included in the request is invalid.")
    if request.header("X-Amz-Security-Token") != identity.session_token:
        raise Refusal("token", "The security token included in the request is invalid.")
    verdict = sigv4.verify(request, {access_key: identity.secret_key}, region, service)
    if not verdict.ok:
        raise Refusal("signature", verdict.message or "signature mismatch")
    return Allowed(identity, service, region)


def authorize(allowed: Allowed, needed: list[RequestContext], stack_id_known: bool = True) -> None:
    """Every context must be allowed by the identity's policies; raises Refusal("denied")."""
    identity = allowed.identity
    policies = identity.policies()
    for context in needed:
        if context.action in _ALWAYS_ALLOWED:
            continue
        full = RequestContext(
            context.action, context.resource, {**_global_keys(allowed), **context.keys}
        )
        decision = evaluate(policies, full)
        if context.action.lower() == "sts:assumerole" and decision is not Decision.EXPLICIT_DENY:
            decision = _assume_role(identity, full, decision)
        if not decision.allowed:
            raise Refusal("denied", _denial(identity, full, decision))


def requirements(allowed: Allowed, request: SignedRequest, scope: Scope) -> list[RequestContext]:
    """What the request asks IAM, read from the service's model; unknown calls ask for "*"."""
    service = _MODEL_NAMES.get(allowed.service, allowed.service)
    try:
        operation = read_operation(service, request)
    except (UnknownOperationError, ValueError):
        return [RequestContext(f"{allowed.service}:*", "*")]
    return authorizations(operation, scope)


def _assume_role(identity: Identity, request: RequestContext, decision: Decision) -> Decision:
    trust = role_trust_policy(request.resource)
    if trust is None:
        return Decision.IMPLICIT_DENY
    trusted, named = trust_decision(trust, identity.caller, request)
    if trusted is not Decision.ALLOW:
        return trusted
    # A trust naming the caller grants alone; one naming the account needs the identity policy.
    return Decision.ALLOW if named or decision.allowed else decision


def _global_keys(allowed: Allowed) -> dict[str, object]:
    identity = allowed.identity
    keys: dict[str, object] = {
        "aws:PrincipalArn": identity.caller.arn,
        "aws:PrincipalAccount": identity.account_id,
        "aws:PrincipalType": "AssumedRole" if identity.kind == "role" else "User",
        "aws:RequestedRegion": allowed.region,
        "aws:SecureTransport": False,  # the offline cloud speaks plain HTTP on loopback
    }
    if identity.kind == "user":
        keys["aws:username"] = identity.name
    return keys


def _denial(identity: Identity, request: RequestContext, decision: Decision) -> str:
    why = (
        "with an explicit deny in an identity-based policy"
        if decision is Decision.EXPLICIT_DENY
        else f"because no identity-based policy allows the {request.action} action"
    )
    return (
        f"User: {identity.arn} is not authorized to perform: {request.action} "
        f"on resource: {request.resource} {why}"
    )

"""Environment variables under a customer managed key, as Lambda shows them to a caller.

Lambda returns a function's variables in plain text only to a caller that may kms:Decrypt
with the function's KmsKeyArn; any other caller gets `Environment.Error` and no `Variables`
(EnvironmentResponse and EnvironmentError in the Lambda API reference). moto always answers
with the variables, so the Lambda front rewrites its answers (docs/offline-cloud.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

ERROR_CODE = "AccessDeniedException"
# GET paths whose answers hold function configurations, and where in the answer they are.
_READS = (
    (re.compile(r"^/2015-03-31/functions/[^/]+/configuration/?$"), None),
    (re.compile(r"^/2015-03-31/functions/[^/]+/?$"), "Configuration"),
    (re.compile(r"^/2015-03-31/functions/?$"), "Functions"),
    (re.compile(r"^/2015-03-31/functions/[^/]+/versions/?$"), "Versions"),
)

_UPDATE = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/configuration/?$")

# key ARN, function name -> None when the caller may decrypt, else KMS's refusal message
Decrypter = Callable[[str, str], "str | None"]


def shows_configurations(path: str) -> bool:
    """Whether a GET of `path` answers with function configurations."""
    return any(pattern.match(path) for pattern, _ in _READS)


def environment_error(kms_message: str) -> dict[str, Any]:
    """Lambda's EnvironmentResponse when the caller may not decrypt: an Error, no Variables."""
    message = (
        "Lambda was unable to decrypt the environment variables because KMS access was denied."
        f" Please check the function's KMS key settings. KMS Exception: {ERROR_CODE}"
        f" KMS Message: {kms_message}"
    )
    return {"Error": {"ErrorCode": ERROR_CODE, "Message": message}}


def hide_variables(config: dict[str, Any], may_decrypt: Decrypter) -> dict[str, Any]:
    """`config` as the caller sees it: variables kept, or replaced by the error."""
    key_arn = config.get("KMSKeyArn")
    if not key_arn or "Environment" not in config:
        return config
    refusal = may_decrypt(key_arn, str(config.get("FunctionName", "")))
    if refusal is None:
        return config
    return {**config, "Environment": environment_error(refusal)}


def rewrite_answer(path: str, body: bytes, may_decrypt: Decrypter) -> bytes:
    """moto's JSON answer to a configuration read, with each configuration as Lambda shows it."""
    for pattern, member in _READS:
        if not pattern.match(path):
            continue
        answer = json.loads(body)
        if member is None:
            answer = hide_variables(answer, may_decrypt)
        elif isinstance(answer.get(member), dict):
            answer[member] = hide_variables(answer[member], may_decrypt)
        elif isinstance(answer.get(member), list):
            answer[member] = [hide_variables(item, may_decrypt) for item in answer[member]]
        return json.dumps(answer).encode()
    return body


def setting_decrypter(allowed: bool) -> Decrypter:
    """Without IAM enforcement there is no caller to ask about: one answer for everyone."""

    def decide(key_arn: str, function: str) -> str | None:
        if allowed:
            return None
        return (
            f"The caller is not authorized to perform: kms:Decrypt on resource: {key_arn}"
            " (the offline cloud's kms_decrypt_allowed setting is off)"
        )

    return decide


def caller_decrypter(request: Any) -> Decrypter:
    """kms:Decrypt asked of the signer's identity policies, as IAM enforcement asks the rest.

    `request` is the SignedRequest moto has already authenticated and authorized.
    """
    from plldb.local.iam.enforcer import Refusal, authenticate, authorize
    from plldb.local.iam.policy import RequestContext

    try:
        allowed = authenticate(request)
    except Refusal as refusal:
        message = refusal.message
        return lambda key_arn, function: message

    def decide(key_arn: str, function: str) -> str | None:
        # Lambda decrypts with the function's name as encryption context.
        keys = {"kms:EncryptionContext:LambdaFunctionName": function}
        try:
            authorize(allowed, [RequestContext("kms:Decrypt", key_arn, keys)])
        except Refusal as refusal:
            return refusal.message
        return None

    return decide


def set_function_key(account_id: str, region: str, function: str, key_arn: str) -> None:
    """moto's UpdateFunctionConfiguration and CloudFormation ignore KMSKeyArn: set it on
    $LATEST in moto's backend (an empty ARN goes back to Lambda's own key, as in AWS)."""
    from moto.awslambda.models import lambda_backends

    latest = lambda_backends[account_id][region].get_function(function)
    latest.kms_key_arn = key_arn or None


def apply_key_update(
    path: str, request: bytes, answer: bytes, account_id: str, region: str
) -> bytes:
    """After moto's 200 to UpdateFunctionConfiguration: the KMSKeyArn it asked for, kept."""
    match = _UPDATE.match(path)
    asked = json.loads(request or b"{}") if match else {}
    if "KMSKeyArn" not in asked:
        return answer
    configuration = json.loads(answer)
    set_function_key(account_id, region, configuration["FunctionName"], asked["KMSKeyArn"])
    if asked["KMSKeyArn"]:
        configuration["KMSKeyArn"] = asked["KMSKeyArn"]
    else:
        configuration.pop("KMSKeyArn", None)
    return json.dumps(configuration).encode()

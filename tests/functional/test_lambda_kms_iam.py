"""With IAM enforcement, kms:Decrypt in the caller's policies decides whether variables show."""

from __future__ import annotations

import pytest

from tests.functional import test_iam_enforcement as shared
from tests.functional.test_iam_enforcement import (
    ACCOUNT,
    REGION,
    admin,
    client,
    functions,  # noqa: F401 - a fixture, used by name
    policy,
    user_keys,
)

moto = shared.moto
front = shared.front

SECRET = {"Variables": {"GREETING": "kept secret"}}


@pytest.fixture(scope="module")
def keyed(moto, front, functions) -> tuple[str, str]:  # noqa: F811 - the imported fixture
    kms = admin(moto, "kms")
    key_arn = kms.create_key(Description="function variables")["KeyMetadata"]["Arn"]
    admin(moto, "lambda", front.endpoint).update_function_configuration(
        FunctionName="iam-allowed", Environment=SECRET, KMSKeyArn=key_arn
    )
    return "iam-allowed", key_arn


def _reader(moto, front, name: str, key_arn: str, may_decrypt: bool):
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:iam-allowed"
    statements = [{"Effect": "Allow", "Action": "lambda:GetFunction*", "Resource": fn}]
    if may_decrypt:
        statements.append({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn})
    key, secret = user_keys(moto, name, policy(*statements))
    return client(moto, "lambda", key, secret, front.endpoint)


def test_a_caller_without_decrypt_sees_the_error_one_with_it_the_variables(moto, front, keyed):
    function, key_arn = keyed
    refused = _reader(moto, front, "kms-no-decrypt", key_arn, may_decrypt=False)
    config = refused.get_function_configuration(FunctionName=function)
    assert "Variables" not in config["Environment"]
    error = config["Environment"]["Error"]
    assert error["ErrorCode"] == "AccessDeniedException"
    assert f"kms:Decrypt on resource: {key_arn}" in error["Message"]
    assert "user/kms-no-decrypt" in error["Message"]
    assert (
        "Variables"
        not in refused.get_function(FunctionName=function)["Configuration"]["Environment"]
    )

    allowed = _reader(moto, front, "kms-decrypt", key_arn, may_decrypt=True)
    assert allowed.get_function_configuration(FunctionName=function)["Environment"] == SECRET
    admin_view = admin(moto, "lambda", front.endpoint).get_function(FunctionName=function)
    assert admin_view["Configuration"]["Environment"] == SECRET  # Action: * includes it


def test_a_decrypt_scoped_to_another_key_does_not_count(moto, front, keyed):
    function, _ = keyed
    other = admin(moto, "kms").create_key()["KeyMetadata"]["Arn"]
    reader = _reader(moto, front, "kms-other-key", other, may_decrypt=True)
    config = reader.get_function_configuration(FunctionName=function)
    assert config["Environment"]["Error"]["ErrorCode"] == "AccessDeniedException"

"""Variables under a customer managed key: shown only to a caller who may decrypt them."""

from __future__ import annotations

import json

import boto3
import pytest

from plldb.local.lambda_front import LambdaFront
from tests.functional import test_lambda_front as shared
from tests.functional.test_lambda_front import CREDENTIALS, REGION, _invoke

moto = shared.moto
front = shared.front
moto_lambda = shared.moto_lambda
lambda_client = shared.lambda_client
deploy = shared.deploy

SECRET = {"Variables": {"GREETING": "kept secret"}}


@pytest.fixture(scope="module")
def key_arn(moto) -> str:
    kms = boto3.client("kms", endpoint_url=moto.endpoint, **CREDENTIALS)
    return kms.create_key(Description="function variables")["KeyMetadata"]["Arn"]


@pytest.fixture(scope="module")
def keyed(deploy, key_arn) -> str:
    return deploy("keyed", "describe", Environment=SECRET, KMSKeyArn=key_arn)


def _assert_hidden(config: dict) -> None:
    environment = config["Environment"]
    assert "Variables" not in environment
    assert environment["Error"]["ErrorCode"] == "AccessDeniedException"
    assert "kms:Decrypt" in environment["Error"]["Message"]


def test_a_caller_without_decrypt_gets_the_error_and_no_variables(keyed, key_arn, lambda_client):
    config = lambda_client.get_function_configuration(FunctionName=keyed)
    assert config["KMSKeyArn"] == key_arn
    _assert_hidden(config)
    _assert_hidden(lambda_client.get_function(FunctionName=keyed)["Configuration"])
    listed = {f["FunctionName"]: f for f in lambda_client.list_functions()["Functions"]}
    _assert_hidden(listed[keyed])
    versions = lambda_client.list_versions_by_function(FunctionName=keyed)["Versions"]
    _assert_hidden(versions[0])


def test_the_function_itself_still_runs_with_its_variables(keyed, lambda_client):
    assert _invoke(lambda_client, keyed, {})[1]["environ"]["GREETING"] == "kept secret"


def test_variables_without_a_customer_managed_key_are_shown(deploy, lambda_client):
    deploy("unkeyed", "echo", Environment=SECRET)
    config = lambda_client.get_function_configuration(FunctionName="unkeyed")
    assert config["Environment"] == SECRET


def test_with_decrypt_allowed_the_variables_are_shown(moto, keyed, tmp_path):
    with LambdaFront(moto.endpoint, REGION, tmp_path, kms_decrypt_allowed=True) as allowed:
        client = boto3.client("lambda", endpoint_url=allowed.endpoint, **CREDENTIALS)
        assert client.get_function_configuration(FunctionName=keyed)["Environment"] == SECRET
        assert client.get_function(FunctionName=keyed)["Configuration"]["Environment"] == SECRET


def test_answers_other_than_configurations_pass_unchanged(keyed, lambda_client, moto_lambda):
    via_front = lambda_client.list_aliases(FunctionName=keyed)
    direct = moto_lambda.list_aliases(FunctionName=keyed)
    assert json.dumps(via_front["Aliases"]) == json.dumps(direct["Aliases"])


def test_a_key_set_and_removed_by_update_function_configuration(deploy, key_arn, lambda_client):
    deploy("rekeyed", "echo", Environment=SECRET)
    answer = lambda_client.update_function_configuration(FunctionName="rekeyed", KMSKeyArn=key_arn)
    assert answer["KMSKeyArn"] == key_arn
    _assert_hidden(lambda_client.get_function_configuration(FunctionName="rekeyed"))
    lambda_client.update_function_configuration(FunctionName="rekeyed", KMSKeyArn="")
    config = lambda_client.get_function_configuration(FunctionName="rekeyed")
    assert "KMSKeyArn" not in config and config["Environment"] == SECRET

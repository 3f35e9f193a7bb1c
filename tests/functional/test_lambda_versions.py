"""Published versions and aliases in the Lambda front: each runs its own code and configuration."""

from __future__ import annotations

import collections
import io
import zipfile

import pytest
from botocore.exceptions import ClientError

from tests.functional import test_lambda_front as shared
from tests.functional.test_lambda_front import ACCOUNT, REGION, _invoke

# The front's fixtures, shared with its own tests (module-scoped: one moto, one front here).
moto = shared.moto
front = shared.front
moto_lambda = shared.moto_lambda
lambda_client = shared.lambda_client
layer_arn = shared.layer_arn
deploy = shared.deploy


def _code(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handlers.py", source)
    return buffer.getvalue()


def test_a_published_version_keeps_its_code_and_configuration(deploy, moto_lambda, lambda_client):
    deploy("kept", "describe", Environment={"Variables": {"GREETING": "one"}}, Timeout=7)
    assert moto_lambda.publish_version(FunctionName="kept")["Version"] == "1"
    moto_lambda.update_function_configuration(
        FunctionName="kept", Environment={"Variables": {"GREETING": "two"}}, Timeout=3
    )
    moto_lambda.update_function_code(
        FunctionName="kept", ZipFile=_code("def describe(event, context):\n    return 'v2'\n")
    )
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:kept"
    for name, settings in (("kept:1", {}), ("kept", {"Qualifier": "1"}), (f"{arn}:1", {})):
        response, payload = _invoke(lambda_client, name, {}, **settings)
        assert response["ExecutedVersion"] == "1", name
        assert payload["environ"]["GREETING"] == "one"
        assert payload["environ"]["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
        assert payload["invoked_arn"] == f"{arn}:1"
        assert 3000 < payload["remaining_ms"] <= 7000  # version 1's timeout, not $LATEST's
    response, payload = _invoke(lambda_client, "kept", {})
    assert (response["ExecutedVersion"], payload) == ("$LATEST", "v2")


def test_a_version_keeps_its_layers_and_exec_wrapper(deploy, moto_lambda, lambda_client, layer_arn):
    wrapper = {"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/wrapper"}}
    deploy("wrapped-v", "wrapped", Layers=[layer_arn], Environment=wrapper)
    moto_lambda.publish_version(FunctionName="wrapped-v")
    moto_lambda.update_function_configuration(
        FunctionName="wrapped-v", Layers=[], Environment={"Variables": {}}
    )
    assert _invoke(lambda_client, "wrapped-v:1", {})[1]["WRAPPED_BY"] == "fixture-wrapper"
    assert _invoke(lambda_client, "wrapped-v", {})[1]["WRAPPED_BY"] is None


def test_an_alias_runs_its_version_and_reads_as_it(deploy, moto_lambda, lambda_client):
    deploy("aliased", "describe", Environment={"Variables": {"GREETING": "published"}})
    moto_lambda.publish_version(FunctionName="aliased")
    moto_lambda.update_function_configuration(
        FunctionName="aliased", Environment={"Variables": {"GREETING": "latest"}}
    )
    moto_lambda.create_alias(FunctionName="aliased", Name="live", FunctionVersion="1")
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:aliased:live"
    for name, settings in (("aliased:live", {}), ("aliased", {"Qualifier": "live"}), (arn, {})):
        response, payload = _invoke(lambda_client, name, {}, **settings)
        assert response["ExecutedVersion"] == "1", name
        assert payload["environ"]["GREETING"] == "published"
        assert payload["invoked_arn"] == arn  # the runtime sees the alias it was invoked by
    config = lambda_client.get_function_configuration(FunctionName="aliased", Qualifier="live")
    assert config["Version"] == "1"
    assert config["Environment"]["Variables"] == {"GREETING": "published"}


def test_a_weighted_alias_routes_by_its_weights(deploy, moto_lambda, lambda_client):
    deploy("weighted", "describe", Environment={"Variables": {"GREETING": "v1"}})
    moto_lambda.publish_version(FunctionName="weighted")
    moto_lambda.update_function_configuration(
        FunctionName="weighted", Environment={"Variables": {"GREETING": "v2"}}
    )
    moto_lambda.publish_version(FunctionName="weighted")
    moto_lambda.create_alias(
        FunctionName="weighted",
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )
    runs = 200
    executed: collections.Counter[str] = collections.Counter()
    for _ in range(runs):
        response, payload = _invoke(lambda_client, "weighted:canary", {})
        version = response["ExecutedVersion"]
        assert payload["environ"]["GREETING"] == f"v{version}"  # the header names what ran
        assert payload["environ"]["AWS_LAMBDA_FUNCTION_VERSION"] == version
        executed[version] += 1
    assert set(executed) == {"1", "2"}
    # 30 % of 200 is 60 (standard deviation 6.5): 30..90 fails by chance about once in 10^5.
    assert 30 <= executed["2"] <= 90, executed


@pytest.mark.parametrize(
    ("name", "settings", "missing"),
    [
        ("gone:9", {}, "gone:9"),
        ("gone:nope", {}, "gone:nope"),
        ("gone", {"Qualifier": "nope"}, "gone:nope"),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:gone:7", {}, "gone:7"),
    ],
)
def test_a_missing_version_or_alias_is_resource_not_found(
    deploy, moto_lambda, lambda_client, name, settings, missing
):
    if "gone" not in [f["FunctionName"] for f in moto_lambda.list_functions()["Functions"]]:
        deploy("gone", "echo")
        moto_lambda.publish_version(FunctionName="gone")
    with pytest.raises(ClientError) as error:
        lambda_client.invoke(FunctionName=name, Payload=b"{}", **settings)
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error.value.response["Error"]["Message"].endswith(f"function:{missing}")

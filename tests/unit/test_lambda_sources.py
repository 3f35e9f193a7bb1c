"""The code that ships into Lambda stands alone: standard library, boto3 and its own helpers."""

from __future__ import annotations

import ast
import importlib.util
import io
import logging
import sys
import zipfile

import pytest

from plldb.bootstrap.packaging import package_functions
from plldb.resources import cloudformation_dir

ALLOWED_THIRD_PARTY = {"boto3", "botocore"}
LAMBDA_SOURCES = sorted(
    [
        *(cloudformation_dir() / "lambda_functions").glob("*.py"),
        *(cloudformation_dir() / "layer").rglob("*.py"),
    ]
)


def _top_level_imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", LAMBDA_SOURCES, ids=lambda p: p.name)
def test_lambda_code_imports_only_stdlib_boto3_and_local_helpers(path):
    functions_dir = cloudformation_dir() / "lambda_functions"
    helpers = {p.stem for p in functions_dir.glob("_*.py")}
    # The relay runtime's modules import each other; packaging adds the helpers they import.
    siblings = set() if path.parent == functions_dir else {p.stem for p in path.parent.glob("*.py")}
    for name in _top_level_imports(path):
        assert (
            name in sys.stdlib_module_names
            or name in ALLOWED_THIRD_PARTY
            or name in helpers
            or name in siblings
            or name == "__future__"
        ), f"{path.name} imports {name}"
        assert name != "plldb", f"{path.name} must not import the plldb CLI package"


def _load_handler(zip_bytes: bytes, module: str, tmp_path):
    target = tmp_path / module
    zipfile.ZipFile(io.BytesIO(zip_bytes)).extractall(target)
    sys.path.insert(0, str(target))
    # The zip's helpers (_common, _sessions, ...) must be the ones imported, not a cached copy.
    modules = {name[: -len(".py")] for name in zipfile.ZipFile(io.BytesIO(zip_bytes)).namelist()}
    try:
        for cached in [m for m in sys.modules if m in modules]:
            del sys.modules[cached]
        spec = importlib.util.spec_from_file_location(module, target / f"{module}.py")
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded.handler
    finally:
        sys.path.remove(str(target))


@pytest.fixture
def packaged():
    return {
        a.name.split("/")[-1][: -len(".zip")]: a.data
        for a in package_functions(cloudformation_dir() / "lambda_functions")
    }


def test_every_packaged_handler_runs_from_its_zip_and_logs(
    packaged, tmp_path, caplog, moto_aws, monkeypatch
):
    # $disconnect looks the connection up and $default answers the empty message: both reach
    # AWS, which is moto here (with no tables: $disconnect logs the failure and still answers).
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("SESSIONS_TABLE", "PLLDBSessions")
    monkeypatch.setenv("PLLDB_CALLBACK_URL", "https://abc.execute-api.eu-west-1.amazonaws.com/live")
    caplog.set_level(logging.INFO)
    event = {
        "requestContext": {"connectionId": "conn-1", "routeKey": "$default"},
        "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abc/live/$connect",
        "httpMethod": "POST",
        "path": "/sessions",
    }
    for module, data in packaged.items():
        caplog.clear()
        result = _load_handler(data, module, tmp_path)(event, None)
        assert isinstance(result, dict), module
        assert caplog.records, f"{module} logged nothing"


def test_the_authorizer_denies_a_handshake_without_session_id(packaged, tmp_path):
    handler = _load_handler(packaged["websocket_authorize"], "websocket_authorize", tmp_path)
    event = {"methodArn": "arn:aws:execute-api:eu-west-1:1:abc/live/$connect", "requestContext": {}}
    statement = handler(event, None)["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Resource"] == event["methodArn"]


def test_the_exec_wrapper_runs_the_runtime_command_it_is_given(tmp_path):
    import subprocess

    wrapper = cloudformation_dir() / "layer" / "bin" / "bootstrap"
    done = subprocess.run(
        ["/bin/sh", str(wrapper), sys.executable, "-c", "import sys; print(sys.argv[1:])", "a b"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "['a b']"

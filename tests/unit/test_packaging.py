import io
import os
import shutil
import stat
import zipfile

import pytest

from plldb.bootstrap.packaging import package_all, package_functions, package_layer
from plldb.errors import TemplateError
from plldb.resources import cloudformation_dir


def _zip(artifact):
    return zipfile.ZipFile(io.BytesIO(artifact.data))


def _mode(info):
    return stat.S_IMODE(info.external_attr >> 16)


@pytest.fixture
def sources(tmp_path):
    copy = tmp_path / "cloudformation"
    shutil.copytree(cloudformation_dir(), copy)
    return copy


def test_each_function_module_becomes_its_own_zip_with_its_helpers(sources):
    artifacts = {a.name: a for a in package_functions(sources / "lambda_functions")}
    expected = {
        f"lambda_functions/{path.stem}.zip"
        for path in (sources / "lambda_functions").glob("*.py")
        if not path.name.startswith("_")
    }
    assert set(artifacts) == expected
    assert "lambda_functions/restapi.zip" in artifacts
    assert _zip(artifacts["lambda_functions/restapi.zip"]).namelist() == [
        "_caller_rights.py",
        "_common.py",
        "_instrumentation.py",
        "_protocol.py",
        "_sessions.py",
        "_stack_functions.py",
        "_stack_lock.py",
        "restapi.py",
    ]


def test_a_helper_is_packaged_only_where_imported_and_transitively(tmp_path):
    functions = tmp_path / "lambda_functions"
    functions.mkdir()
    (functions / "_a.py").write_text("import _b\n")
    (functions / "_b.py").write_text("X = 1\n")
    (functions / "_unused.py").write_text("Y = 2\n")
    (functions / "uses_a.py").write_text("from _a import *\n")
    (functions / "plain.py").write_text("import json\n")
    artifacts = {a.name: a for a in package_functions(functions)}
    assert _zip(artifacts["lambda_functions/uses_a.zip"]).namelist() == [
        "_a.py",
        "_b.py",
        "uses_a.py",
    ]
    assert _zip(artifacts["lambda_functions/plain.zip"]).namelist() == ["plain.py"]
    assert "lambda_functions/_a.zip" not in artifacts


def test_same_sources_give_the_same_bytes_whatever_the_timestamps_and_modes(sources, tmp_path):
    first = package_all(sources)
    for path in sources.rglob("*"):
        if path.is_file():
            os.utime(path, (1_700_000_000, 1_700_000_000))
            path.chmod(0o777)
    second = package_all(sources)
    assert [(a.name, a.data) for a in first] == [(a.name, a.data) for a in second]


def test_a_changed_source_changes_only_its_own_zip(sources):
    before = {a.name: a.sha256 for a in package_all(sources)}
    with (sources / "lambda_functions" / "restapi.py").open("a") as handle:
        handle.write("\n# changed\n")
    after = {a.name: a.sha256 for a in package_all(sources)}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"lambda_functions/restapi.zip"}


def test_layer_keeps_the_wrapper_executable_at_bin_bootstrap(sources):
    (sources / "layer" / "bin" / "bootstrap").chmod(0o644)  # a checkout that lost the bit
    (sources / "layer" / "python").mkdir(exist_ok=True)
    (sources / "layer" / "python" / "relay.py").write_text("X = 1\n")
    (sources / "layer" / "python" / "__pycache__").mkdir()
    (sources / "layer" / "python" / "__pycache__" / "relay.cpython-311.pyc").write_bytes(b"x")
    archive = _zip(package_layer(sources / "layer"))
    infos = {info.filename: info for info in archive.infolist()}
    relay = {name for name in infos if name.startswith("plldb_relay/")}
    assert set(infos) == {"bin/bootstrap", "python/relay.py", *relay}
    assert _mode(infos["bin/bootstrap"]) == 0o755
    assert _mode(infos["python/relay.py"]) == 0o644
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in infos.values())


def test_the_layer_carries_the_relay_runtime_with_the_protocol_it_imports(sources):
    archive = _zip(package_layer(sources / "layer", sources / "lambda_functions"))
    names = set(archive.namelist())
    assert {"plldb_relay/relay.py", "plldb_relay/runtime_proxy.py"} <= names
    assert "plldb_relay/debugger_link.py" in names
    protocol = (sources / "lambda_functions" / "_protocol.py").read_bytes()
    assert archive.read("plldb_relay/_protocol.py") == protocol
    assert "plldb_relay/_sessions.py" not in names  # only what the relay imports


def test_missing_wrapper_and_broken_function_are_clear_errors(sources):
    (sources / "layer" / "bin" / "bootstrap").unlink()
    with pytest.raises(TemplateError, match="exec wrapper"):
        package_layer(sources / "layer")
    (sources / "lambda_functions" / "broken.py").write_text("def handler(:\n")
    with pytest.raises(TemplateError, match=r"broken\.py: line 1"):
        package_functions(sources / "lambda_functions")

from pathlib import Path

from plldb import __version__
from plldb.bootstrap import names


def test_bucket_name_follows_req_fn_0001():
    assert names.bucket_name("eu-west-1", "123456789012") == (
        "plldb-core-infrastructure-eu-west-1-123456789012"
    )


def test_artifact_keys_live_under_the_plldb_version():
    assert names.artifact_key(names.function_artifact("restapi"), "1.2.3") == (
        "plldb/versions/1.2.3/lambda_functions/restapi.zip"
    )
    assert names.artifact_key(names.LAYER_ARTIFACT, "1.2.3").startswith(
        "plldb/versions/1.2.3/layer/"
    )
    assert names.template_key("1.2.3") == "plldb/versions/1.2.3/template.yaml"
    assert names.template_key() == f"plldb/versions/{__version__}/template.yaml"


def test_stack_name_is_plldb():
    assert names.STACK_NAME == "plldb"


def test_build_dir_defaults_to_dot_plldb_and_honours_the_override(monkeypatch, tmp_path):
    monkeypatch.delenv(names.BUILD_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert names.build_dir("9.9.9") == tmp_path / ".plldb" / "build" / "9.9.9"
    monkeypatch.setenv(names.BUILD_DIR_ENV, str(tmp_path / "elsewhere"))
    assert names.build_dir("9.9.9") == tmp_path / "elsewhere" / "9.9.9"
    assert names.build_dir("9.9.9", root=Path("/x")) == Path("/x/9.9.9")

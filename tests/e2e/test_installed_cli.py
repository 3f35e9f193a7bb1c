"""The installed `plldb` command, from a wheel in a fresh venv, against moto's server.

moto builds no AWS::ApiGatewayV2 resources and ignores some properties (see
docs/architecture.md); these tests assert what it does model: the bucket and its keys,
the stack and its status, functions, tables and log groups.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import boto3
import pytest

from plldb import __version__
from plldb.local.motoserver import MotoServer

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
BUCKET = f"plldb-core-infrastructure-{REGION}-123456789012"
PREFIX = f"plldb/versions/{__version__}/"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """Build the wheel and install it into a new venv outside the checkout; returns its bin/."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(work)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = work.glob("plldb-*.whl")
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    _see_running_environment(env_dir)
    subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    return env_dir / "bin"


def _see_running_environment(env_dir: Path) -> None:
    """Let the new venv import the dependencies installed where pytest runs, without a download.

    `system_site_packages` would expose the base interpreter's packages, not those of the venv
    pytest runs in. A .pth file adds this environment's site-packages after the new venv's
    own, so plldb itself still comes from the wheel.
    """
    outer = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (inner,) = (env_dir / "lib").glob("python*/site-packages")
    lines = "".join(f"import site; site.addsitedir({path!r})\n" for path in sorted(outer))
    (inner / "zz_plldb_test_outer_site.pth").write_text(lines)


@pytest.fixture(scope="module")
def server():
    with MotoServer() as running:
        yield running


@pytest.fixture
def aws(server):
    server.reset()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(server.environment(REGION))
    env.pop("PLLDB_BUILD_DIR", None)
    return env


def _client(server, service):
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )


def _run(bin_dir, args, env, cwd):
    return subprocess.run(
        [str(bin_dir / "plldb"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_the_wheel_carries_the_cloudformation_sources_and_packages_outside_the_checkout(
    installed, tmp_path, aws
):
    where = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "import plldb, plldb.resources as r; "
            "print(plldb.__file__); print(r.cloudformation_dir())",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.split()
    venv_root = str(installed.parent)
    assert where[0].startswith(venv_root) and where[1].startswith(venv_root)
    assert where[1].endswith("plldb/cloudformation")

    done = _run(installed, ["bootstrap", "package"], aws, tmp_path)
    assert done.returncode == 0, done.stderr
    artifacts = tmp_path / ".plldb" / "build" / __version__ / "artifacts"
    assert (artifacts / "lambda_functions" / "restapi.zip").is_file()
    assert (artifacts / "layer" / "plldb-debugger-layer.zip").is_file()


def test_setup_twice_then_destroy_then_destroy_all(installed, server, aws, tmp_path):
    first = _run(installed, ["bootstrap", "setup"], aws, tmp_path)
    assert first.returncode == 0, first.stderr

    s3 = _client(server, "s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert f"{PREFIX}template.yaml" in keys
    assert f"{PREFIX}lambda_functions/restapi.zip" in keys
    assert f"{PREFIX}layer/plldb-debugger-layer.zip" in keys
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    cfn = _client(server, "cloudformation")
    assert cfn.describe_stacks(StackName="plldb")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    assert _client(server, "lambda").get_function(FunctionName="plldb-restapi")
    assert "SessionsTableName\tPLLDBSessions" in first.stdout
    assert "Created bucket" in first.stderr

    second = _run(installed, ["bootstrap", "setup"], aws, tmp_path)
    assert second.returncode == 0, second.stderr
    assert re.search(r"Uploaded 0 artifacts \(0 bytes\), [1-9]\d* unchanged", second.stderr)

    destroyed = _run(installed, ["bootstrap", "destroy"], aws, tmp_path)
    assert destroyed.returncode == 0, destroyed.stderr
    assert "Stack plldb deleted" in destroyed.stderr
    live = [s for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"]
    assert live == []
    assert s3.head_bucket(Bucket=BUCKET)  # kept, with its artifacts

    everything = _run(installed, ["bootstrap", "destroy", "--all"], aws, tmp_path)
    assert everything.returncode == 0, everything.stderr
    assert "nothing to delete" in everything.stderr
    assert BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}

    again = _run(installed, ["bootstrap", "destroy", "--all"], aws, tmp_path)
    assert again.returncode == 0 and "does not exist: nothing to delete" in again.stderr


def test_steps_run_alone_in_ci_order_and_say_what_is_missing(installed, server, aws, tmp_path):
    early = _run(installed, ["bootstrap.upload"], aws, tmp_path)
    assert early.returncode == 1
    assert early.stderr.strip().splitlines() == [
        f"plldb: error: Nothing from the package step in {tmp_path}/.plldb/build/{__version__}: "
        "run `plldb bootstrap package` first"
    ]
    for step in ("bucket", "package", "upload", "render", "deploy"):
        done = _run(installed, [f"bootstrap.{step}"], aws, tmp_path)
        assert done.returncode == 0, f"{step}: {done.stderr}"
    stack = _client(server, "cloudformation").describe_stacks(StackName="plldb")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"


def test_inv_runs_the_same_collection_from_the_repository(tmp_path, aws):
    listed = subprocess.run(
        [sys.executable, "-m", "invoke", "--list"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in ("bootstrap.setup", "bootstrap.package", "test", "lint", "bench"):
        assert name in listed
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "bootstrap.package", "--build-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=aws,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / __version__ / "package.json").is_file()


def test_the_pytest_plugin_replays_the_examples_recordings_from_a_fresh_install(
    installed, tmp_path
):
    example = tmp_path / "qr-upload"
    shutil.copytree(
        REPO_ROOT / "examples" / "qr-upload", example, ignore=shutil.ignore_patterns("__pycache__")
    )
    command = [str(installed / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=example, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    handler = example / "src" / "http_api" / "lambda_function.py"
    handler.write_text(handler.read_text().replace("body is not valid JSON", "bad JSON"))
    done = subprocess.run(command, capture_output=True, text=True, cwd=example, env=env)
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout + done.stderr
    # The outer environment's plldb is visible too: the wheel itself must declare the plugin.
    declared = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "import importlib.metadata as m; d = m.distribution('plldb'); "
            "print(d.locate_file(''), [e.value for e in d.entry_points if e.group == 'pytest11'])",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert declared.startswith(str(installed.parent)) and "['plldb.testing']" in declared

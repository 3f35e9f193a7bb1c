"""The `plldb` command's argument handling and its one-line errors (no AWS reached)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from plldb.cli import join_spaced_tasks
from plldb.tasks import build_namespace


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["bootstrap", "setup"], ["bootstrap.setup"]),
        (["bootstrap", "destroy", "--all"], ["bootstrap.destroy", "--all"]),
        (
            ["bootstrap.setup", "--region", "eu-west-1"],
            ["bootstrap.setup", "--region", "eu-west-1"],
        ),
        (["bootstrap"], ["bootstrap"]),
        (["bootstrap", "--region", "setup"], ["bootstrap", "--region", "setup"]),
        (["--help", "bootstrap", "package"], ["--help", "bootstrap.package"]),
    ],
)
def test_spaced_task_names_become_dotted(argv, expected):
    assert join_spaced_tasks(argv, build_namespace()) == expected


def test_the_collection_holds_the_bootstrap_steps_with_setup_as_default():
    namespace = build_namespace()
    bootstrap = namespace.collections["bootstrap"]
    assert set(bootstrap.task_names) == {
        "bucket", "package", "upload", "render", "deploy", "setup", "destroy",
    }  # fmt: skip
    assert bootstrap.default == "setup"
    assert build_namespace() is not build_namespace()


def _plldb(*args, env_updates=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent"})
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    env.update(env_updates or {})
    return subprocess.run(
        [sys.executable, "-m", "plldb", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_help_lists_the_tasks_and_the_version_prints():
    done = _plldb("--list")
    assert done.returncode == 0
    for name in ("bootstrap.setup", "bootstrap.destroy", "bootstrap.package"):
        assert name in done.stdout
    assert _plldb("--version").stdout.strip().startswith("plldb ")


@pytest.mark.parametrize("form", [["bootstrap"], ["bootstrap", "setup"], ["bootstrap.setup"]])
def test_every_spelling_of_setup_reaches_the_setup_task(form):
    done = _plldb(*form, "--help")
    assert done.returncode == 0
    assert "ensure the bucket, then package, upload, render and deploy" in done.stdout


def test_package_runs_without_aws(tmp_path):
    done = _plldb("bootstrap", "package", "--build-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "lambda_functions/restapi.zip" in done.stdout
    assert (tmp_path / "0.1.0" / "artifacts" / "layer" / "plldb-debugger-layer.zip").is_file()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_no_region_is_one_clear_line(tmp_path):
    done = _plldb("bootstrap", "setup", "--build-dir", str(tmp_path))
    assert done.returncode == 1
    assert _error_lines(done.stderr) == [
        "plldb: error: No AWS region configured: pass --region, set AWS_REGION or give the "
        "profile a region"
    ]


def test_no_credentials_is_one_clear_line(tmp_path):
    done = _plldb("bootstrap", "destroy", env_updates={"AWS_REGION": "eu-west-1"})
    assert done.returncode == 1
    (line,) = _error_lines(done.stderr)
    assert line.startswith("plldb: error: No usable AWS credentials")
    assert "Traceback" not in done.stderr


def test_an_unknown_profile_is_one_clear_line():
    done = _plldb("bootstrap", "bucket", "--profile", "nope", "--region", "eu-west-1")
    assert done.returncode == 1
    assert _error_lines(done.stderr) == [
        "plldb: error: AWS profile 'nope' not found: check --profile / AWS_PROFILE against "
        "~/.aws/config"
    ]


def test_verbose_adds_the_details():
    done = _plldb("bootstrap", "destroy", "--verbose", env_updates={"AWS_REGION": "eu-west-1"})
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert (
        done.stderr.strip().splitlines()[-1].startswith("plldb: error: No usable AWS credentials")
    )

"""Shared fixtures: an isolated AWS environment, moto, a build directory, a recording reporter."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plldb.reporting import Reporter

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "eu-west-1"

# Variables that would let a test reach a real account or a developer's profile.
_AWS_VARIABLES = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "PLLDB_BUILD_DIR",
)  # fmt: skip


class RecordingReporter(Reporter):
    """Keeps every notice, stack event and progress advance for assertions."""

    def __init__(self) -> None:
        self.notices: list[str] = []
        self.events: list[str] = []
        self.progress: dict[str, int] = {}

    @contextlib.contextmanager
    def task(self, label: str, total: int, unit: str = "it") -> Iterator[Callable[[int], None]]:
        self.progress[label] = 0

        def advance(amount: int) -> None:
            self.progress[label] += amount

        yield advance

    def notice(self, message: str) -> None:
        self.notices.append(message)

    def stack_event(self, line: str, failed: bool = False) -> None:
        self.events.append(line)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and a region; no profile, no endpoint, no instance metadata."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def moto_aws(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def target(moto_aws: None):
    from plldb.aws import resolve_target

    return resolve_target()


@pytest.fixture
def build(tmp_path: Path):
    from plldb.bootstrap.build import BuildDir

    return BuildDir(tmp_path / "build" / "0.1.0")


@pytest.fixture
def reporter() -> RecordingReporter:
    return RecordingReporter()


@pytest.fixture
def guard() -> Iterator[list[int]]:
    """Handlers that record SIGINT/SIGTERM instead of ending pytest if the code misses one."""
    caught: list[int] = []
    previous = {
        number: signal.signal(number, lambda signum, frame: caught.append(signum))
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    yield caught
    for number, handler in previous.items():
        signal.signal(number, handler)

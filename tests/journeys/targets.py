"""Where the journey runs: the offline cloud (default) or a real account (explicit opt-in).

PLLDB_JOURNEY_TARGET=offline|aws picks one. The AWS target also needs PLLDB_JOURNEY_REGION
(PLLDB_JOURNEY_PROFILE is optional: without it, boto3's usual chain, as in CI with OIDC) and
PLLDB_JOURNEY_AWS_OPT_IN=yes-this-costs-money; `inv test.aws` sets all three.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import boto3

TARGET_VARIABLE = "PLLDB_JOURNEY_TARGET"
OPT_IN_VARIABLE = "PLLDB_JOURNEY_AWS_OPT_IN"
OPT_IN_VALUE = "yes-this-costs-money"
PROFILE_VARIABLE = "PLLDB_JOURNEY_PROFILE"
REGION_VARIABLE = "PLLDB_JOURNEY_REGION"
KEEP_HELPER_VARIABLE = "PLLDB_JOURNEY_KEEP_HELPER"  # "1": leave a helper stack this run made
_ENDPOINTS = "AWS_ENDPOINT_URL"  # and every AWS_ENDPOINT_URL_<SERVICE>
_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


class JourneyConfigError(Exception):
    """The journey was asked to run somewhere it may not (or cannot) go."""


class OfflineTarget:
    """The offline cloud in this process; this process's boto3 is pointed at it while it runs."""

    name = "offline"
    keep_helper = False
    # A killed attach is noticed at once offline ($disconnect follows the closed socket).
    restore_timeout = 60.0

    def __init__(self, base: Mapping[str, str] | None = None) -> None:
        self._base = dict(os.environ if base is None else base)
        self.cloud: Any = None
        self._saved: dict[str, str] | None = None

    def start(self) -> OfflineTarget:
        from plldb.local.cloud import OfflineCloud

        self.cloud = OfflineCloud(poll_seconds=0.2).start()
        self._saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(
            self.environment()
        )  # the in-process deploy and checks use boto3's settings
        return self

    def stop(self) -> None:
        if self._saved is not None:
            os.environ.clear()
            os.environ.update(self._saved)
            self._saved = None
        if self.cloud is not None:
            self.cloud.stop()
            self.cloud = None

    def environment(self) -> dict[str, str]:
        """What `plldb` subprocesses get: no AWS or plldb settings of ours, the cloud's instead."""
        assert self.cloud is not None, "start() first"
        env = {k: v for k, v in self._base.items() if not k.startswith(("AWS_", "PLLDB_"))}
        env.update(self.cloud.environment())  # credentials too: whatever the cloud hands out
        return env

    def session(self) -> boto3.Session:
        return boto3.Session(region_name=self.cloud.region)

    def describe(self) -> str:
        return "the offline cloud"


class AwsTarget:
    """A real account: a boto3 session from the profile (or the default chain) and region."""

    name = "aws"
    # After a SIGKILL, restoring waits for API Gateway's $disconnect, which AWS delivers on a
    # best-effort basis; without it the connection only ends at the 10-minute idle timeout.
    restore_timeout = 900.0

    def __init__(
        self,
        region: str,
        profile: str | None,
        base: Mapping[str, str] | None = None,
        keep_helper: bool = False,
    ) -> None:
        if not region:
            raise JourneyConfigError(f"the AWS journey needs a region: set {REGION_VARIABLE}")
        self.region = region
        self.profile = profile or None
        self.keep_helper = keep_helper
        self._base = dict(os.environ if base is None else base)

    def start(self) -> AwsTarget:
        return self

    def stop(self) -> None:
        pass

    def environment(self) -> dict[str, str]:
        """Our environment with no endpoint overrides, the profile (if any) and the region."""
        env = {
            k: v
            for k, v in self._base.items()
            if not k.startswith((_ENDPOINTS, "PLLDB_")) and k not in ("AWS_PROFILE",)
        }
        if self.profile:
            # With keys in the environment too, boto3 would use them instead of the profile.
            env = {k: v for k, v in env.items() if k not in _KEYS}
            env["AWS_PROFILE"] = self.profile
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = self.region
        return env

    def session(self) -> boto3.Session:
        return boto3.Session(profile_name=self.profile, region_name=self.region)

    def describe(self) -> str:
        return f"AWS ({self.region}, profile {self.profile or 'from the environment'})"


def select_target(environ: Mapping[str, str] | None = None) -> OfflineTarget | AwsTarget:
    """The target the environment asks for; refuses AWS without the explicit opt-in."""
    environ = os.environ if environ is None else environ
    name = environ.get(TARGET_VARIABLE, "offline") or "offline"
    if name == "offline":
        return OfflineTarget(environ)
    if name != "aws":
        raise JourneyConfigError(f"{TARGET_VARIABLE}={name!r}: expected 'offline' or 'aws'")
    if environ.get(OPT_IN_VARIABLE) != OPT_IN_VALUE:
        raise JourneyConfigError(
            f"{TARGET_VARIABLE}=aws creates (and pays for) resources in a real account: set "
            f"{OPT_IN_VARIABLE}={OPT_IN_VALUE} to go ahead, or run `inv test.aws`"
        )
    for endpoint in (k for k in environ if k.startswith(_ENDPOINTS)):
        raise JourneyConfigError(f"{TARGET_VARIABLE}=aws but {endpoint} is set: unset it")
    return AwsTarget(
        environ.get(REGION_VARIABLE, ""),
        environ.get(PROFILE_VARIABLE),
        environ,
        keep_helper=environ.get(KEEP_HELPER_VARIABLE) == "1",
    )

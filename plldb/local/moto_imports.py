"""Imports moto's CloudFormation without the repeated botocore loading its import triggers.

Importing moto.cloudformation imports moto.ec2, whose region list is built at import time
from three new boto3 sessions; each new session parses botocore's endpoint data and EC2's
service model (several MB of JSON) again, about 0.8 s of the offline cloud's start. During
the import, region look-ups are answered from botocore's endpoint data, parsed once; EC2's
model is read only for its endpoint prefix, which is "ec2".
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_ENDPOINT_PREFIXES = {"ec2": "ec2"}  # service name -> its model's metadata.endpointPrefix


@contextlib.contextmanager
def _region_lookups_shared() -> Iterator[None]:
    import boto3.session
    import botocore.session

    shared = botocore.session.get_session()
    resolver = shared._get_internal_component("endpoint_resolver")
    original = boto3.session.Session.get_available_regions

    def get_available_regions(
        self: Any,
        service_name: str,
        partition_name: str = "aws",
        allow_non_regional: bool = False,
    ) -> list[str]:
        prefix = _ENDPOINT_PREFIXES.get(service_name)
        if prefix is None:
            return shared.get_available_regions(service_name, partition_name, allow_non_regional)
        return resolver.get_available_endpoints(prefix, partition_name, allow_non_regional)

    boto3.session.Session.get_available_regions = get_available_regions  # type: ignore[method-assign]
    try:
        yield
    finally:
        boto3.session.Session.get_available_regions = original  # type: ignore[method-assign]


def import_cloudformation_models() -> Any:
    """moto.cloudformation.models, imported once per process."""
    with _lock, _region_lookups_shared():
        from moto.cloudformation import models
    return models

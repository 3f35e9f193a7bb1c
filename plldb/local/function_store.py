"""Reads a deployed function's configuration, code and layers from moto's in-process backend."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_QUALIFIER = r"(?::(?P<qualifier>[A-Za-z0-9$_-]+))?"
_NAME = r"(?P<name>[A-Za-z0-9_-]{1,140})"
_FULL_ARN = re.compile(
    r"^arn:[a-z-]+:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    + _NAME
    + _QUALIFIER
    + "$"
)
_PARTIAL_ARN = re.compile(r"^(?P<account>\d{12}):function:" + _NAME + _QUALIFIER + "$")
_BARE_NAME = re.compile("^" + _NAME + _QUALIFIER + "$")


class FunctionNotFoundError(LookupError):
    """The function (or the version or alias asked for) does not exist; Lambda's 404."""

    def __init__(self, arn: str) -> None:
        super().__init__(f"Function not found: {arn}")
        self.arn = arn


@dataclass(frozen=True)
class FunctionRef:
    """Where a function name, a full ARN or a partial ARN points."""

    name: str
    region: str
    account_id: str
    qualifier: str | None = None

    @property
    def arn(self) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"
        return f"{arn}:{self.qualifier}" if self.qualifier else arn


@dataclass(frozen=True)
class LayerSpec:
    arn: str
    sha256: str
    zip_bytes: bytes


@dataclass(frozen=True)
class FunctionSpec:
    """What running one version of a function needs; `fingerprint` changes with code or config."""

    name: str
    arn: str  # the unqualified ARN for $LATEST, `...:function:NAME:N` for a published version
    invoked_arn: str  # the ARN as the caller named it (an alias stays an alias)
    version: str
    region: str
    account_id: str
    handler: str
    runtime: str
    timeout: float
    memory_size: int
    environment: tuple[tuple[str, str], ...]
    code_sha256: str
    code_zip: bytes
    layers: tuple[LayerSpec, ...]
    role: str = ""  # the execution role's ARN

    @property
    def fingerprint(self) -> str:
        state = [
            self.arn,
            self.handler,
            self.runtime,
            self.timeout,
            self.memory_size,
            list(self.environment),
            self.code_sha256,
            [(layer.arn, layer.sha256) for layer in self.layers],
            self.role,
        ]
        return hashlib.sha256(json.dumps(state).encode()).hexdigest()


def parse_function_ref(
    function: str, region: str, account_id: str, qualifier: str | None = None
) -> FunctionRef:
    """Splits a name, `NAME:QUALIFIER`, a partial or a full ARN; raises FunctionNotFoundError."""
    for pattern in (_FULL_ARN, _PARTIAL_ARN, _BARE_NAME):
        match = pattern.match(function)
        if match:
            parts = match.groupdict()
            return FunctionRef(
                name=parts["name"],
                region=parts.get("region") or region,
                account_id=parts.get("account") or account_id,
                qualifier=parts["qualifier"] or qualifier,
            )
    raise FunctionNotFoundError(function)


def load_function(ref: FunctionRef, invoked_arn: str | None = None) -> FunctionSpec:
    """The function as moto holds it now; raises FunctionNotFoundError.

    `invoked_arn`: the ARN the caller named, when `ref` is the version an alias routed to.
    """
    from moto.awslambda.models import lambda_backends

    qualifier = None if ref.qualifier in (None, "$LATEST") else ref.qualifier
    try:
        backend = lambda_backends[ref.account_id][ref.region]
        function = backend.get_function(ref.name, qualifier)
    except Exception as error:  # moto: UnknownFunctionException; KeyError for a bogus region
        raise FunctionNotFoundError(ref.arn) from error
    layers = tuple(_load_layer(layer["Arn"]) for layer in function.layers)
    return FunctionSpec(
        name=function.function_name,
        arn=function.function_arn,
        invoked_arn=invoked_arn or ref.arn,
        version=str(function.version),
        region=ref.region,
        account_id=ref.account_id,
        handler=function.handler or "",
        runtime=function.run_time or "python3.12",
        timeout=float(function.timeout),
        memory_size=int(function.memory_size),
        environment=tuple(sorted((str(k), str(v)) for k, v in function.environment_vars.items())),
        code_sha256=function.code_sha_256,
        code_zip=function.code_bytes,
        layers=layers,
        role=function.role or "",
    )


def _load_layer(arn: str) -> LayerSpec:
    from moto.awslambda.models import lambda_backends

    try:
        _, _, _, region, account_id, *_ = arn.split(":")
        layer = lambda_backends[account_id][region].layers_versions_by_arn(arn)
    except (ValueError, KeyError):
        layer = None
    if layer is None:  # deleted after it was attached: Lambda keeps a copy, moto does not
        logger.warning("layer %s is not in moto; the function runs without it", arn)
        return LayerSpec(arn=arn, sha256="", zip_bytes=b"")
    return LayerSpec(arn=arn, sha256=layer.code_sha_256, zip_bytes=layer.code_bytes)

"""Which version an alias sends one invocation to, by its routing weights, as Lambda does."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from plldb.local.function_store import FunctionRef


@dataclass(frozen=True)
class Routing:
    """An alias: its main version and the share of invocations each other version gets."""

    version: str
    weights: Mapping[str, float]


def pick_version(routing: Routing, rng: random.Random) -> str:
    """One draw: each additional version by its weight, the alias's own version otherwise."""
    draw = rng.random()
    total = 0.0
    for version, weight in sorted(routing.weights.items()):
        total += float(weight)
        if draw < total:
            return version
    return routing.version


def alias_routing(ref: FunctionRef) -> Routing | None:
    """The alias `ref` names, from moto's backend; None if the qualifier is not an alias."""
    from moto.awslambda.models import lambda_backends

    if ref.qualifier is None or ref.qualifier == "$LATEST" or ref.qualifier.isdigit():
        return None
    try:
        alias = lambda_backends[ref.account_id][ref.region].get_alias(ref.qualifier, ref.name)
    except Exception:  # moto: unknown function or alias; the load that follows answers 404
        return None
    config = alias.routing_config or {}
    weights = config.get("AdditionalVersionWeights") or {}
    return Routing(str(alias.function_version), {str(k): float(v) for k, v in weights.items()})


def resolve_qualifier(ref: FunctionRef, rng: random.Random) -> FunctionRef:
    """`ref` with an alias replaced by the version that runs this invocation."""
    routing = alias_routing(ref)
    if routing is None:
        return ref
    return replace(ref, qualifier=pick_version(routing, rng))

"""pick_version: a weighted alias's draw, checked with a seeded generator."""

from __future__ import annotations

import collections
import random

from plldb.local.aliases import Routing, pick_version


def test_without_weights_the_alias_version_always_runs():
    rng = random.Random(1)  # noqa: S311
    assert {pick_version(Routing("3", {}), rng) for _ in range(100)} == {"3"}


def test_weights_share_the_draws():
    rng = random.Random(12)  # noqa: S311
    routing = Routing("1", {"2": 0.25})
    counts = collections.Counter(pick_version(routing, rng) for _ in range(10_000))
    assert 2300 < counts["2"] < 2700
    assert counts["1"] + counts["2"] == 10_000


def test_a_full_weight_sends_every_draw_to_the_other_version():
    rng = random.Random(5)  # noqa: S311
    assert {pick_version(Routing("1", {"2": 1.0}), rng) for _ in range(100)} == {"2"}

"""API Gateway's limits on one WebSocket connection: its age, its idleness, its `$disconnect`.

AWS's figures (API Gateway quotas for WebSocket APIs): a connection lasts at most 2 hours and
is closed after 10 minutes idle; `$disconnect` is delivered on a best-effort basis.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from plldb.errors import PlldbError

MAX_CONNECTION_SECONDS = 7200.0
IDLE_TIMEOUT_SECONDS = 600.0
# What API Gateway sends, and reports to $disconnect, when it ends a connection at a limit.
GOING_AWAY = 1001
GOING_AWAY_REASON = "Going away"


class LimitsError(PlldbError, ValueError):
    """A connection limit that is not a usable number."""


@dataclass(frozen=True)
class ConnectionLimits:
    """When the gateway ends a connection, and how often `$disconnect` reaches its function."""

    max_connection_seconds: float = MAX_CONNECTION_SECONDS
    idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS
    # 1.0 delivers every $disconnect, 0.0 none (AWS only promises its best effort).
    disconnect_delivery: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_connection_seconds", "idle_timeout_seconds"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise LimitsError(f"{name} must be a positive number of seconds, not {value!r}")
        delivery = self.disconnect_delivery
        if not _is_number(delivery) or not 0.0 <= delivery <= 1.0:
            raise LimitsError(f"disconnect_delivery must be between 0.0 and 1.0, not {delivery!r}")

    def deadline(self, opened_at: float, last_message_at: float) -> tuple[float, str]:
        """When the connection must end (same clock as the arguments) and which limit ends it."""
        aged = opened_at + self.max_connection_seconds
        idle = last_message_at + self.idle_timeout_seconds
        return (idle, "idle timeout") if idle < aged else (aged, "maximum connection duration")

    def delivers_disconnect(self, draw: Callable[[], float] = random.random) -> bool:
        """Whether this connection's `$disconnect` is delivered."""
        if self.disconnect_delivery >= 1.0:
            return True
        return draw() < self.disconnect_delivery


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

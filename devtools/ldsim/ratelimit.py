"""LaunchDarkly-style rate limiting: global and per-route budgets per 10 s window."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from devtools.ldsim.scenario import RateLimit

WINDOW_SECONDS: Final = 10


class RateLimiter:
    """Spends request budgets and renders the `X-Ratelimit-*` headers."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._window: int | None = None
        self._global_used = 0
        self._route_used: dict[str, int] = {}

    def take(self, route: str) -> bool:
        """Spend one request of `route`'s and the global budget; False if exhausted."""
        self._roll()
        route_used = self._route_used.get(route, 0)
        if (
            self._global_used >= self.limit.global_budget
            or route_used >= self.limit.route_budget
        ):
            return False
        self._global_used += 1
        self._route_used[route] = route_used + 1
        return True

    def headers(self, route: str) -> dict[str, str]:
        """Return the headers every API reply carries, for the current window."""
        window = self._roll()
        route_left = self.limit.route_budget - self._route_used.get(route, 0)
        return {
            "X-Ratelimit-Global-Remaining": str(
                max(0, self.limit.global_budget - self._global_used)
            ),
            "X-Ratelimit-Route-Remaining": str(max(0, route_left)),
            "X-Ratelimit-Reset": str((window + 1) * WINDOW_SECONDS * 1000),
        }

    def _roll(self) -> int:
        """Start a fresh window when the clock has moved past the current one."""
        window = math.floor(self._clock() / WINDOW_SECONDS)
        if window != self._window:
            self._window = window
            self._global_used = 0
            self._route_used.clear()
        return window

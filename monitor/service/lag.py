"""The event loop's own lag: how late a short sleep wakes up.

Every probe, scrape and discovery call shares one event loop. When something
holds it (a large scrape rendered on it, a garbage collection, CPU starved by
the node), every probe in flight is late by that much and its timeout starts
to bite. `sample_lag` sleeps `period` seconds over and over and records how
much later than asked it woke; `LagWindow` keeps the last minute of those
overshoots for `/metrics` (`ld_store_event_loop_lag_seconds`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

PERIOD = 0.1  # seconds between samples: ten a second costs next to nothing
WINDOW = 60.0  # seconds of samples kept: what the exported figures cover


@dataclass
class LagWindow:
    """The overshoots of the last `window` seconds, as (monotonic time, seconds).

    Bounded twice: by age (older samples are dropped as new ones come) and by
    count (a sampler with a shorter period cannot grow it without end).
    """

    window: float = WINDOW
    limit: int = 2048
    samples: deque[tuple[float, float]] = field(default_factory=deque)

    def record(self, lag: float, now: float) -> None:
        """One overshoot, measured at `now`."""
        self.samples.append((now, max(0.0, lag)))
        self._prune(now)
        while len(self.samples) > self.limit:
            self.samples.popleft()

    def _prune(self, now: float) -> None:
        samples = self.samples
        while samples and samples[0][0] < now - self.window:
            samples.popleft()

    def recent(self, now: float) -> list[float]:
        """The overshoots measured in the last `window` seconds."""
        self._prune(now)
        return [lag for _, lag in self.samples]

    def quantile(self, q: float, now: float) -> float | None:
        """The `q` quantile of the window (nearest rank; 1: the maximum), or None."""
        lags = sorted(self.recent(now))
        if not lags:
            return None
        rank = min(len(lags), max(1, math.ceil(q * len(lags))))
        return lags[rank - 1]


async def sample_lag(
    window: LagWindow,
    period: float = PERIOD,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Record the loop's lag into `window` every `period` seconds, until cancelled.

    A block of the loop shows as one late wake-up as long as the block, so
    the window's maximum is the longest stall of the last minute.
    """
    while True:
        started = clock()
        await asyncio.sleep(period)
        woke = clock()
        window.record(woke - started - period, woke)

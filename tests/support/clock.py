"""Time for tests: a clock the test sets and moves, and the wall clock in milliseconds."""

from __future__ import annotations

import time

# An epoch second on a 10 s boundary (2023-11-14 22:13:20 UTC), so windows
# computed from it (rate limits, intervals) start predictably.
EPOCH = 1_700_000_000.0


class FakeClock:
    """A clock that stands still until the test moves it.

    Call it for the time, as the code under test calls `time.time` or
    `time.monotonic`; set `now` or `advance()` it to move time.
    """

    def __init__(self, now: float = EPOCH) -> None:
        """Start at `now` (seconds)."""
        self.now = now

    def __call__(self) -> float:
        """The current fake time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move forward by `seconds`."""
        self.now += seconds


def now_ms() -> int:
    """Wall-clock now in Unix milliseconds, as LaunchDarkly writes synchronizedOn."""
    return int(time.time() * 1000)

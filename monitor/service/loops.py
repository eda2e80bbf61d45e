"""The one shape of every periodic job.

Each iteration runs the step under `asyncio.timeout` (or, for a step that
bounds itself, such as a probe round, lets it finish and uses the deadline
only to promise its next tick), turns every failure into a log line (never a
dead loop), promises its next tick to the health record, and sleeps the rest
of the interval. A step may ask for a different
next delay (rate limits, auth back-off). `wake()` cuts the sleep short, for
a reload.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

# Slack on top of interval + timeout before /-/healthy calls a loop stuck:
# event-loop lag on a busy node must not restart the pod.
HEALTH_GRACE = 30.0

Step = Callable[[], Awaitable[float | None]]


@dataclass
class LoopHealth:
    """A periodic loop's heartbeat: it is healthy while it keeps its promise to wake."""

    name: str
    started: bool = False
    expected_by: float = 0.0  # monotonic time by which the loop promised to tick again

    def promise(
        self, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Record that the loop will tick again within `seconds`."""
        self.started = True
        self.expected_by = clock() + seconds

    def healthy(self, clock: Callable[[], float] = time.monotonic) -> bool:
        """False once the loop is overdue."""
        return not self.started or clock() <= self.expected_by


class PeriodicLoop:
    """Runs `step` every `interval()` seconds until cancelled."""

    def __init__(
        self,
        name: str,
        step: Step,
        *,
        interval: Callable[[], float],
        timeout: Callable[[], float],
        health: LoopHealth,
        logger: structlog.stdlib.BoundLogger,
        cancel_at_deadline: bool = True,
    ) -> None:
        self.name = name
        self._cancel = cancel_at_deadline
        self._step = step
        self._interval = interval
        self._timeout = timeout
        self._health = health
        self._log = logger
        self._wake = asyncio.Event()
        self.iterations = 0

    def deadline(self) -> float:
        """Seconds the next iteration's step may take, from the config in force."""
        return self._timeout()

    def wake(self) -> None:
        """Run the next iteration now instead of after the sleep."""
        self._wake.set()

    async def run(self) -> None:
        """Loop forever; only cancellation ends it."""
        while True:
            started = time.monotonic()
            timeout = self._timeout()
            self._health.promise(timeout + HEALTH_GRACE)
            next_delay: float | None = None
            try:
                async with asyncio.timeout(timeout if self._cancel else None):
                    next_delay = await self._step()
            except TimeoutError:
                self._log.warning("loop.step_timeout", loop=self.name, timeout=timeout)
            except Exception:  # noqa: BLE001 -- one bad step must never end the loop
                self._log.exception("loop.step_crashed", loop=self.name)
            self.iterations += 1
            elapsed = time.monotonic() - started
            delay = (
                next_delay
                if next_delay is not None
                else max(0.0, self._interval() - elapsed)
            )
            self._health.promise(delay + self._timeout() + HEALTH_GRACE)
            self._wake.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass  # the normal end of the sleep

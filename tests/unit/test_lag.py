"""The event loop lag sampler (`monitor.service.lag`) and its window."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from monitor.service.lag import LagWindow, sample_lag


async def test_a_blocked_loop_shows_as_one_late_wake_up() -> None:
    """Blocking the loop for 0.2 s is recorded as a lag of about 0.2 s."""
    window = LagWindow()
    sampler = asyncio.create_task(sample_lag(window, period=0.01))
    try:
        await asyncio.sleep(0.05)  # a few samples of an idle loop
        time.sleep(0.2)  # noqa: ASYNC251 -- the block under test
        await asyncio.sleep(0.05)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    now = time.monotonic()
    longest = window.quantile(1.0, now)
    assert longest is not None
    assert 0.18 <= longest < 1.0
    assert len(window.recent(now)) >= 5
    typical = window.quantile(0.5, now)
    assert typical is not None
    assert typical < 0.1  # the other samples are short


def test_quantiles_use_the_nearest_rank() -> None:
    """1 is the maximum, 0.99 of 200 samples the second largest, none when empty."""
    window = LagWindow()
    assert window.quantile(1.0, 0.0) is None
    for i in range(200):
        window.record(i / 1000, now=1.0)
    assert window.quantile(1.0, 1.0) == pytest.approx(0.199)
    assert window.quantile(0.99, 1.0) == pytest.approx(0.197)
    assert window.quantile(0.5, 1.0) == pytest.approx(0.099)


def test_window_forgets_old_samples_and_stays_bounded() -> None:
    """Samples older than the window drop out; the count never passes the limit."""
    window = LagWindow(window=60.0, limit=100)
    window.record(5.0, now=0.0)
    window.record(0.01, now=30.0)
    assert window.quantile(1.0, now=59.0) == 5.0
    assert window.quantile(1.0, now=61.0) == 0.01
    assert window.quantile(1.0, now=100.0) is None
    for i in range(1000):
        window.record(0.001, now=200.0 + i / 1000)
    assert len(window.samples) == 100
    window.record(-0.5, now=201.0)  # a clock that woke early is no lag
    assert window.quantile(0.01, now=201.0) == 0.0

"""Waiting for state that a daemon or server changes in the background."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(
    predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.01
) -> None:
    """Poll `predicate` every `step` seconds; TimeoutError after `timeout`."""
    async with asyncio.timeout(timeout):
        # The state polled here has no event to await: it belongs to the code
        # under test, which must not grow hooks for its tests.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(step)

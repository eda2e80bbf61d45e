"""What every local server here shares: `async with` over start/aclose, and reaping.

`Lifecycle` gives a class with `start()` and `aclose()` the `async with`
form; `reap()` waits for a child process to end and kills it if it lingers.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self


class Lifecycle:
    """`async with server:` starts it and closes it, whatever happens inside."""

    async def start(self) -> None:
        """Start serving (a subclass implements it)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Stop serving and release everything (a subclass implements it)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        """Start."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close."""
        await self.aclose()


async def reap(process: asyncio.subprocess.Process, grace: float) -> int:
    """Wait up to `grace` seconds for `process` to exit, then kill it; its code."""
    try:
        async with asyncio.timeout(grace):
            return await process.wait()
    except TimeoutError:
        process.kill()
        return await process.wait()

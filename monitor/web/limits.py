"""Limits of the HTTP server against clients that hold connections open.

aiohttp has an idle (keep-alive) timeout but neither a cap on connections
nor a deadline for the first request's headers, so a few hundred clients that
open a connection and send a byte now and then (slowloris) held a file
descriptor each until the process had none left for its probes. One
`ConnectionLimiter` serves every listener of the daemon:

- at most `server.max_connections` connections at once, both listeners
  together. When a new one would be one too many, the oldest connection
  that is not in the middle of a request (one still sending its first
  headers, else an idle keep-alive one) is closed to make room, so clients
  that hold connections without using them cannot lock Prometheus out;
  only when every connection has a request in flight is the new one
  answered `503` and closed;
- a connection that has not sent a complete request (its headers: the
  app's middleware sees it) within `server.header_timeout` of opening is
  aborted; later requests on a kept-alive connection are bounded by
  `server.idle_timeout` (aiohttp's keep-alive timeout).

Each is counted, and logged at most once every LOG_EVERY seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BUSY_REPLY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 34\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n\r\n"
    b"too many connections, retry later\n"
)
LOG_EVERY = 10.0


def _abort(transport: asyncio.BaseTransport) -> None:
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:
        transport.close()


class ConnectionLimiter:
    """Counts the connections of every listener; makes room, refuses, expires."""

    def __init__(
        self,
        max_connections: int,
        header_timeout: float,
        logger: structlog.stdlib.BoundLogger,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self._log = logger
        self._monotonic = monotonic
        self._open: set[asyncio.BaseTransport] = set()
        # Connections without a request in flight, oldest first: still
        # sending their first headers (with their deadline), or idle.
        self._waiting: dict[asyncio.BaseTransport, asyncio.TimerHandle] = {}
        self._idle: dict[asyncio.BaseTransport, None] = {}
        self._busy: dict[asyncio.BaseTransport, int] = {}  # requests in flight
        self.refused = 0  # answered 503: every connection busy
        self.evicted = 0  # closed to make room for a new one
        self.expired = 0  # closed: no request within header_timeout
        self._logged_at = -float("inf")
        self._logged = (0, 0, 0)

    @property
    def active(self) -> int:
        """Connections open now (counted ones)."""
        return len(self._open)

    def factory(self, inner: Callable[[], asyncio.BaseProtocol]) -> Callable[[], Any]:
        """A protocol factory for `loop.create_server`, wrapping aiohttp's."""
        return lambda: _Counted(inner, self)

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """A new connection: count it and start its header deadline, or refuse it.

        At the cap, the oldest connection without a request in flight makes
        room (one still sending its headers first, else an idle one).
        """
        if len(self._open) >= self.max_connections:
            oldest = next(iter(self._waiting or self._idle), None)
            if oldest is None:
                self.refused += 1
                self._report()
                return False
            self.evicted += 1
            self._forget(oldest)
            _abort(oldest)
            self._report()
        self._open.add(transport)
        loop = asyncio.get_running_loop()
        self._waiting[transport] = loop.call_later(
            self.header_timeout, self._expire, transport
        )
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        """A connection closed (counted or already forgotten)."""
        self._forget(transport)

    def _forget(self, transport: asyncio.BaseTransport) -> None:
        self._open.discard(transport)
        handle = self._waiting.pop(transport, None)
        if handle is not None:
            handle.cancel()
        self._idle.pop(transport, None)
        self._busy.pop(transport, None)

    def _expire(self, transport: asyncio.BaseTransport) -> None:
        if self._waiting.pop(transport, None) is None:
            return
        self.expired += 1
        self._forget(transport)
        _abort(transport)
        self._report()

    def _report(self) -> None:
        """Log what was refused, evicted or expired, at most every LOG_EVERY s."""
        now = self._monotonic()
        if now - self._logged_at < LOG_EVERY:
            return
        counts = (self.refused, self.evicted, self.expired)
        self._log.warning(
            "http.connections_limited",
            refused=counts[0] - self._logged[0],
            evicted=counts[1] - self._logged[1],
            expired=counts[2] - self._logged[2],
            active=self.active,
            max_connections=self.max_connections,
            header_timeout=self.header_timeout,
        )
        self._logged_at, self._logged = now, counts

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> Any:
        """Track the connection's request: headers arrived, in flight, idle after."""
        transport = request.transport
        if transport is None or transport not in self._open:
            return await handler(request)
        handle = self._waiting.pop(transport, None)
        if handle is not None:
            handle.cancel()
        self._idle.pop(transport, None)
        self._busy[transport] = self._busy.get(transport, 0) + 1
        try:
            return await handler(request)
        finally:
            left = self._busy.get(transport, 1) - 1
            if transport in self._open:
                if left > 0:
                    self._busy[transport] = left
                else:
                    self._busy.pop(transport, None)
                    self._idle[transport] = None  # newest idle last


class _Counted(asyncio.Protocol):
    """aiohttp's request handler behind the limiter's count and deadline."""

    def __init__(
        self, inner: Callable[[], asyncio.BaseProtocol], limiter: ConnectionLimiter
    ) -> None:
        self._make_inner = inner
        self._inner: Any = None
        self._limiter = limiter
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit (and hand to aiohttp) or answer 503 and close."""
        if not self._limiter.admit(transport):
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(BUSY_REPLY)
            transport.close()
            return
        self._transport = transport
        self._inner = self._make_inner()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Uncount, then let aiohttp clean up."""
        if self._inner is None:
            return
        if self._transport is not None:
            self._limiter.release(self._transport)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """To aiohttp (nothing is read from a refused connection)."""
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        """To aiohttp."""
        if self._inner is not None:
            result: bool | None = self._inner.eof_received()
            return result
        return None

    def pause_writing(self) -> None:
        """To aiohttp."""
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        """To aiohttp."""
        if self._inner is not None:
            self._inner.resume_writing()


class LimitedSite(web.TCPSite):
    """A TCP site whose connections go through a `ConnectionLimiter`.

    `web.TCPSite.start` with the protocol factory wrapped (aiohttp has no
    public hook for it).
    """

    def __init__(
        self,
        runner: web.AppRunner,
        host: str | None,
        port: int,
        *,
        limiter: ConnectionLimiter,
        ssl_context: Any = None,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context)
        self._limiter = limiter

    async def start(self) -> None:
        """Register with the runner and listen."""
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None  # noqa: S101 -- the runner is set up first
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._limiter.factory(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )

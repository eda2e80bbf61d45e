"""Endpoints that fail in known ways: refused, silent, unresolvable."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from devtools.servers.ports import LOOPBACK

# RFC 6761: names under .invalid never resolve, on any resolver.
UNRESOLVABLE_HOST = "no-such-host.invalid"

# Generous, so the accept queue never fills and connects keep succeeding.
_BLACKHOLE_BACKLOG = 512


@contextmanager
def closed_port(host: str = LOOPBACK) -> Iterator[int]:
    """Yield a port on which connections are refused for the whole block.

    The port stays bound without `listen()`, so the kernel answers SYN with
    RST and no other process can start listening on it meanwhile.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        yield port


class BlackholeServer:
    """A TCP listener that completes handshakes and then never reads or answers.

    It listens but never calls `accept()`: the kernel completes the handshake
    and queues the connection, so clients connect fine and then wait forever
    for a reply. It needs no event loop, so sync clients, async clients and
    subprocesses all see the same thing. Closing it resets the queued
    connections.
    """

    def __init__(self, host: str = LOOPBACK) -> None:
        """Bind and listen on a free port of `host`."""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.bind((host, 0))
            self._sock.listen(_BLACKHOLE_BACKLOG)
        except BaseException:
            self._sock.close()
            raise
        self.host: str = host
        self.port: int = self._sock.getsockname()[1]

    @property
    def address(self) -> str:
        """`host:port` of the listener."""
        return f"{self.host}:{self.port}"

    def close(self) -> None:
        """Stop listening; queued connections are reset."""
        self._sock.close()

    def __enter__(self) -> Self:
        """Return the listening server."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the listener."""
        self.close()

    async def __aenter__(self) -> Self:
        """Return the listening server."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the listener."""
        self.close()


def blackhole_server(host: str = LOOPBACK) -> BlackholeServer:
    """Start a blackhole listener; use it with `with` or `async with`."""
    return BlackholeServer(host)

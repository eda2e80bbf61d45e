"""An asyncio TCP proxy whose fault mode tests switch at run time."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass
from enum import StrEnum

from devtools.servers.lifecycle import Lifecycle
from devtools.servers.ports import LOOPBACK

_CHUNK = 65536


class Mode(StrEnum):
    """What the proxy does with connections and the bytes on them."""

    PASS = "pass"
    DELAY = "delay"
    BLACKHOLE = "blackhole"
    RESET = "reset"
    CLOSE_AFTER = "close_after"
    ACCEPT_HANG = "accept_hang"


@dataclass(frozen=True)
class _Setting:
    mode: Mode
    delay: float = 0.0
    close_after: int = 0


class _Connection:
    """One client connection and, once connected, its upstream side."""

    def __init__(self, down: asyncio.StreamWriter) -> None:
        self.down = down
        self.up: asyncio.StreamWriter | None = None
        self.down_bytes = 0

    def writers(self) -> list[asyncio.StreamWriter]:
        """Both sides that exist so far."""
        return [w for w in (self.down, self.up) if w is not None]

    def reset(self) -> None:
        """Close both sides with RST (SO_LINGER 0) instead of FIN."""
        for writer in self.writers():
            _set_linger_zero(writer)
            writer.transport.abort()

    async def close(self) -> None:
        """Close both sides gracefully, flushing what was written."""
        for writer in self.writers():
            writer.close()
        for writer in self.writers():
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def abort(self) -> None:
        """Drop both sides at once and wait until their sockets are released."""
        for writer in self.writers():
            writer.transport.abort()
        for writer in self.writers():
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class FaultProxy(Lifecycle):
    """A TCP proxy on 127.0.0.1:<free> in front of `upstream_host:upstream_port`.

    The mode decides, per new connection, whether it is forwarded (`pass`,
    `delay`, `close_after`), answered by nothing (`blackhole`,
    `accept_hang`) or reset (`reset`). On connections already forwarding,
    each chunk follows the current mode: delayed, dropped, reset, or cut
    once `close_after` bytes went downstream on that connection.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        """Remember the upstream; `start()` (or `async with`) starts listening."""
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.host = LOOPBACK
        self.port = 0
        self.connections_accepted = 0
        self._setting = _Setting(Mode.PASS)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._setting.mode

    @property
    def address(self) -> str:
        """`host:port` clients connect to."""
        return f"{self.host}:{self.port}"

    def pass_through(self) -> None:
        """Forward both ways untouched."""
        self._setting = _Setting(Mode.PASS)

    def delay(self, seconds: float) -> None:
        """Forward both ways, sleeping `seconds` before each chunk."""
        self._setting = _Setting(Mode.DELAY, delay=seconds)

    def blackhole(self) -> None:
        """Accept and read, never connect upstream, never answer."""
        self._setting = _Setting(Mode.BLACKHOLE)

    def reset(self) -> None:
        """Accept, then close with RST."""
        self._setting = _Setting(Mode.RESET)

    def close_after(self, n_bytes: int) -> None:
        """Forward until `n_bytes` went downstream on a connection, then close it."""
        self._setting = _Setting(Mode.CLOSE_AFTER, close_after=n_bytes)

    def accept_hang(self) -> None:
        """Accept, read nothing, connect nothing, keep the connection open."""
        self._setting = _Setting(Mode.ACCEPT_HANG)

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accepted, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        """Stop listening, drop every connection and await every task."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _accepted(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # A plain callback, so the proxy owns (and can cancel) the task itself.
        self.connections_accepted += 1
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(
        self, down_reader: asyncio.StreamReader, down: asyncio.StreamWriter
    ) -> None:
        conn = _Connection(down)
        try:
            await self._handle(conn, down_reader)
        except asyncio.CancelledError:
            await conn.abort()
            raise
        except _ResetConnection:
            conn.reset()
            await conn.abort()
            return
        except (_CloseConnection, OSError):
            pass  # closed gracefully below, as after a normal end
        await conn.close()

    async def _handle(
        self, conn: _Connection, down_reader: asyncio.StreamReader
    ) -> None:
        mode = self._setting.mode
        if mode is Mode.RESET:
            raise _ResetConnection
        if mode is Mode.BLACKHOLE:
            while await down_reader.read(_CHUNK):
                pass
            return
        if mode is Mode.ACCEPT_HANG:
            await asyncio.Event().wait()  # never set: only aclose() ends this
            return
        try:
            up_reader, conn.up = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError as err:
            # Upstream refused: the client sees a reset, as a failed connect would.
            raise _ResetConnection from err
        upstream = asyncio.create_task(
            self._pump(conn, down_reader, conn.up, downstream=False)
        )
        downstream = asyncio.create_task(
            self._pump(conn, up_reader, conn.down, downstream=True)
        )
        try:
            done, _ = await asyncio.wait(
                (upstream, downstream), return_when=asyncio.FIRST_EXCEPTION
            )
            for task in done:
                task.result()
        finally:
            for task in (upstream, downstream):
                task.cancel()
            await asyncio.gather(upstream, downstream, return_exceptions=True)

    async def _pump(
        self,
        conn: _Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        downstream: bool,
    ) -> None:
        while data := await reader.read(_CHUNK):
            setting = self._setting
            if setting.mode is Mode.DELAY:
                await asyncio.sleep(setting.delay)
            elif setting.mode in (Mode.BLACKHOLE, Mode.ACCEPT_HANG):
                continue
            elif setting.mode is Mode.RESET:
                raise _ResetConnection
            elif setting.mode is Mode.CLOSE_AFTER and downstream:
                remaining = max(setting.close_after - conn.down_bytes, 0)
                if remaining <= len(data):
                    writer.write(data[:remaining])
                    await writer.drain()
                    conn.down_bytes += remaining
                    raise _CloseConnection
            writer.write(data)
            await writer.drain()
            if downstream:
                conn.down_bytes += len(data)
        # Pass the half-close on; the connection ends once both directions did.
        if writer.can_write_eof():
            writer.write_eof()


class _CloseConnection(Exception):  # noqa: N818 - a signal, not an error
    """Ends a connection with a graceful close (FIN)."""


class _ResetConnection(Exception):  # noqa: N818 - a signal, not an error
    """Ends a connection with RST."""


def _set_linger_zero(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )

"""A minimal RESP2 exchange over asyncio streams, for the Redis probe.

The probe needs a handful of commands on a connection it opens and drops
every round. redis-py's connection machinery (connection object, event
dispatch, handshake options, retry objects) cost the probe ~1.7x the bare
network work at 1,000 stores (bench/redis_round.py); this module is that
bare work: pack the commands, pipeline them, parse the replies. Error
replies come back as `RespError` values, so a pipeline can be read through.
"""

from __future__ import annotations

import asyncio
from typing import Any


class RespError(Exception):
    """An error reply (`-WRONGTYPE ...`), returned in place of a value."""

    @property
    def code(self) -> str:
        """The error code: the reply's first word (ERR, WRONGPASS, NOPERM...)."""
        return str(self).split(" ", 1)[0]


class RespProtocolError(Exception):
    """Bytes that are not RESP2: not a Redis server, or a broken stream."""


def pack(*commands: tuple[str | bytes | int, ...]) -> bytes:
    """Commands as RESP arrays of bulk strings, ready to send in one write."""
    out = bytearray()
    for command in commands:
        out += b"*%d\r\n" % len(command)
        for arg in command:
            data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
            out += b"$%d\r\n%s\r\n" % (len(data), data)
    return bytes(out)


class RespConnection:
    """Sends pipelined commands and reads their replies in order."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._reader = reader
        self._writer = writer

    def send(self, *commands: tuple[str | bytes | int, ...]) -> None:
        """Queue commands for sending (one write, one round trip for all)."""
        self._writer.write(pack(*commands))

    def send_packed(self, payload: bytes) -> None:
        """Queue commands already packed with `pack`."""
        self._writer.write(payload)

    async def read(self) -> Any:
        """The next reply; an error reply is returned as a RespError."""
        line = await self._reader.readuntil(b"\r\n")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body
        if kind == b"-":
            return RespError(body.decode("utf-8", "replace"))
        if kind == b":":
            return int(body)
        if kind == b"$":
            size = int(body)
            if size < 0:
                return None
            return (await self._reader.readexactly(size + 2))[:-2]
        if kind == b"*":
            count = int(body)
            if count < 0:
                return None
            return [await self.read() for _ in range(count)]
        raise RespProtocolError(f"not a Redis reply: {line[:40]!r}")

    async def call(self, *command: str | bytes | int) -> Any:
        """Send one command and read its reply."""
        self.send(command)
        return await self.read()

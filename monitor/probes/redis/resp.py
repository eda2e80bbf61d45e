"""A minimal RESP2 exchange over asyncio streams, for the Redis probe.

The probe needs a handful of commands on a connection it opens and drops
every round. redis-py's connection machinery (connection object, event
dispatch, handshake options, retry objects) cost the probe ~1.7x the bare
network work at 1,000 stores (bench/redis_round.py); this module is that
bare work: pack the commands, pipeline them, parse the replies. Error
replies come back as `RespError` values, so a pipeline can be read through.

Every size and count in a reply comes from the server, so each is bounded
before anything is allocated for it (the constants below): a reply that
crosses one raises `RespTooLargeError`, and bytes that are not RESP2 (`:abc`, a
negative length) raise `RespProtocolError`. The probe's replies are small:
the sync marker is a 13-digit string, `INFO` a few KiB, `SMEMBERS` of a
context no one uses empty, a `SCAN` page 100 keys.
"""

from __future__ import annotations

import asyncio
from typing import Any

from monitor.probes.result import ProbeError, Reason

# One line (`+OK`, `-ERR ...`, `:42`, `$5`): the StreamReader's limit, so a
# longer one fails the read instead of growing its buffer.
MAX_LINE_BYTES = 64 * 1024
# One bulk string. INFO is the largest reply the probe reads (4-10 KiB).
MAX_BULK_BYTES = 512 * 1024
# Elements of one array (SMEMBERS of a canary context: one per segment it
# belongs to; a SCAN page: 100 keys).
MAX_ARRAY_LENGTH = 16_384
# Arrays within arrays: the probe's deepest reply is SCAN's (2).
MAX_DEPTH = 8
# Everything one connection reads, all its replies together: the bytes, plus
# ELEMENT_COST for each value (what a Python object costs beyond its bytes),
# so many tiny elements cost as much as they weigh in memory. A probe reads
# a few KiB.
MAX_READ_BYTES = 1024 * 1024
ELEMENT_COST = 48
# An error reply's text is kept up to this many characters (Redis's own are
# one short line); the rest is cut before it reaches a log or a page.
MAX_ERROR_CHARS = 1024
# RESP integers are signed 64-bit.
_INT_DIGITS = 20


class RespError(Exception):
    """An error reply (`-WRONGTYPE ...`), returned in place of a value."""

    @property
    def code(self) -> str:
        """The error code: the reply's first word (ERR, WRONGPASS, NOPERM...)."""
        return str(self).split(" ", 1)[0]


class RespProtocolError(ProbeError):
    """Bytes that are not RESP2: not a Redis server, or a broken stream (`parse`)."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.PARSE, f"the reply is not RESP2: {message}")


class RespTooLargeError(ProbeError):
    """A reply beyond one of the bounds above: `reply_too_large`."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.REPLY_TOO_LARGE, f"the reply is too large: {message}")


def _length(body: bytes, what: str) -> int:
    """A bulk length or array count: -1 (null) or a non-negative integer."""
    if body == b"-1":
        return -1
    if not (0 < len(body) <= _INT_DIGITS and body.isdigit()):
        raise RespProtocolError(f"not a RESP {what}: {body[:40]!r}")
    return int(body)


def _integer(body: bytes) -> int:
    """An integer reply: a signed 64-bit integer."""
    digits = body[1:] if body[:1] in (b"-", b"+") else body
    if not (0 < len(digits) <= _INT_DIGITS and digits.isdigit()):
        raise RespProtocolError(f"not a RESP integer: {body[:40]!r}")
    value = int(body)
    if not -(2**63) <= value < 2**63:
        raise RespProtocolError(f"RESP integer out of range: {body[:40]!r}")
    return value


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
        self._budget = MAX_READ_BYTES  # what this connection may still read

    def send(self, *commands: tuple[str | bytes | int, ...]) -> None:
        """Queue commands for sending (one write, one round trip for all)."""
        self._writer.write(pack(*commands))

    def send_packed(self, payload: bytes) -> None:
        """Queue commands already packed with `pack`."""
        self._writer.write(payload)

    async def read(self) -> Any:
        """The next reply; an error reply is returned as a RespError.

        Raises RespProtocolError for bytes that are not RESP2, and RespTooLargeError
        for a reply beyond the bounds, before reading its body.
        """
        return await self._read(0)

    def _spend(self, size: int) -> None:
        self._budget -= size + ELEMENT_COST
        if self._budget < 0:
            raise RespTooLargeError(
                f"replies of more than {MAX_READ_BYTES} bytes on one connection"
            )

    async def _read(self, depth: int) -> Any:
        try:
            line = await self._reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as err:
            raise RespTooLargeError(
                f"a reply line longer than {MAX_LINE_BYTES} bytes"
            ) from err
        self._spend(len(line))
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body[:MAX_ERROR_CHARS]
        if kind == b"-":
            return RespError(body[:MAX_ERROR_CHARS].decode("utf-8", "replace"))
        if kind == b":":
            return _integer(body)
        if kind == b"$":
            size = _length(body, "bulk length")
            if size < 0:
                return None
            if size > MAX_BULK_BYTES:
                raise RespTooLargeError(
                    f"a bulk reply of {size} bytes (the limit is {MAX_BULK_BYTES})"
                )
            self._spend(size + 2)
            data = await self._reader.readexactly(size + 2)
            if data[-2:] != b"\r\n":
                raise RespProtocolError("a bulk reply not ended by CRLF")
            return data[:-2]
        if kind == b"*":
            count = _length(body, "array length")
            if count < 0:
                return None
            if count > MAX_ARRAY_LENGTH:
                raise RespTooLargeError(
                    f"an array of {count} elements (the limit is {MAX_ARRAY_LENGTH})"
                )
            if depth >= MAX_DEPTH:
                raise RespTooLargeError(f"arrays nested deeper than {MAX_DEPTH}")
            return [await self._read(depth + 1) for _ in range(count)]
        raise RespProtocolError(f"not a Redis reply: {line[:40]!r}")

    async def call(self, *command: str | bytes | int) -> Any:
        """Send one command and read its reply."""
        self.send(command)
        return await self.read()

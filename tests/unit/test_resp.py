"""The probe's RESP2 exchange: packing and every reply type."""

from __future__ import annotations

import asyncio

import pytest

from monitor.probes.redis.resp import RespConnection, RespError, RespProtocolError, pack


def test_pack_is_resp_arrays_of_bulk_strings() -> None:
    """Commands become *N arrays of $len bulk strings; several are concatenated."""
    assert (
        pack(("GET", "k"), ("SCAN", 0))
        == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n"
    )
    assert (
        pack(("SET", "k", b"\x00\xff"))
        == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\x00\xff\r\n"
    )


async def replies(raw: bytes, count: int) -> list[object]:
    """Parse `count` replies out of `raw`."""
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    conn = RespConnection(reader, None)  # type: ignore[arg-type]  # reading needs no writer
    return [await conn.read() for _ in range(count)]


async def test_every_reply_type_parses() -> None:
    """Simple, error, integer, bulk, null bulk, array and nested array replies."""
    raw = b"+OK\r\n-WRONGTYPE Operation against a key\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n"
    ok, error, number, bulk, null, array = await replies(raw, 6)
    assert ok == b"OK"
    assert isinstance(error, RespError)
    assert error.code == "WRONGTYPE"
    assert (number, bulk, null, array) == (42, b"hello", None, [b"a", [1]])


async def test_bulk_with_crlf_inside_is_read_by_length() -> None:
    """A bulk string is read by its length, so CR LF inside it is data."""
    [value] = await replies(b"$4\r\na\r\nb\r\n", 1)
    assert value == b"a\r\nb"


async def test_non_resp_bytes_are_a_protocol_error() -> None:
    """An HTTP answer on a Redis port is not mistaken for a reply."""
    with pytest.raises(RespProtocolError):
        await replies(b"HTTP/1.1 400 Bad Request\r\n", 1)


async def test_a_cut_reply_raises_incomplete_read() -> None:
    """A connection closed mid-reply surfaces as IncompleteReadError."""
    with pytest.raises(asyncio.IncompleteReadError):
        await replies(b"$10\r\nabc", 1)

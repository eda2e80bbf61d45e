"""The probe's RESP2 exchange: packing and every reply type."""

from __future__ import annotations

import asyncio

import pytest

from monitor.probes.redis import resp
from monitor.probes.redis.resp import (
    RespConnection,
    RespError,
    RespProtocolError,
    RespTooLargeError,
    pack,
)
from monitor.probes.result import ProbeError


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


@pytest.mark.parametrize(
    ("raw", "reason", "words"),
    [
        (b"$2000000000\r\n", "reply_too_large", "2000000000 bytes"),
        (b"*100000000\r\n", "reply_too_large", "100000000 elements"),
        (b"*1\r\n" * 20 + b":1\r\n", "reply_too_large", "nested deeper"),
        (b"$%d\r\n" % (resp.MAX_BULK_BYTES + 1), "reply_too_large", "bulk"),
        (b":abc\r\n", "parse", "not a RESP integer"),
        (b":" + b"9" * 400 + b"\r\n", "parse", "not a RESP integer"),
        (b":9223372036854775808\r\n", "parse", "out of range"),
        (b"$abc\r\n", "parse", "bulk length"),
        (b"$-5\r\n", "parse", "bulk length"),
        (b"*xyz\r\n", "parse", "array length"),
        (b"$3\r\nabcde\r\n", "parse", "CRLF"),
    ],
)
async def test_hostile_replies_are_probe_errors_with_a_reason(
    raw: bytes, reason: str, words: str
) -> None:
    """Every bound crossed, and every malformed reply, is a ProbeError with its
    reason: nothing is allocated for a length the server announces beyond the
    bounds, and no ValueError or RecursionError escapes (they would be crashes)."""
    with pytest.raises(ProbeError) as caught:
        await replies(raw, 1)
    assert caught.value.reason == reason
    assert words in str(caught.value)


async def test_a_line_beyond_the_stream_limit_is_too_large() -> None:
    """An error line longer than the StreamReader's limit: reply_too_large."""
    assert asyncio.streams._DEFAULT_LIMIT == resp.MAX_LINE_BYTES  # type: ignore[attr-defined]  # private, unannotated in typeshed
    with pytest.raises(RespTooLargeError):
        await replies(b"-ERR " + b"a." * 40_000 + b"\r\n", 1)


async def test_error_text_is_cut_and_many_small_replies_hit_the_budget() -> None:
    """A 60 KB error line is kept to MAX_ERROR_CHARS; a connection reads at most
    MAX_READ_BYTES, however the server splits it into tiny elements."""
    [error] = await replies(b"-ERR " + b"a." * 30_000 + b"\r\n", 1)
    assert isinstance(error, RespError)
    assert len(str(error)) == resp.MAX_ERROR_CHARS
    many = b"*16000\r\n" + b":1\r\n" * 16_000
    with pytest.raises(RespTooLargeError, match="on one connection"):
        await replies(many * 2, 2)
    [value] = await replies(b"$3\r\n" + b"abc\r\n", 1)
    assert value == b"abc"

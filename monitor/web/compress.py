"""gzip for `/metrics`: negotiated from Accept-Encoding, compressed off the loop.

At thousands of stores the exposition is tens of megabytes of text, which
gzip at level 1 shrinks about six-fold. Compressing it costs tens of
milliseconds of CPU: done on the event loop it would stall every probe in
flight for that long. zlib releases the GIL while it compresses, so the
chunks go to a worker thread, a batch at a time (few thread hops), while the
loop renders the next batch; one batch is compressed at a time, in order,
with one compressor.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterable

from aiohttp import web

# Text sent to the worker thread per hop. Families at 5,000 stores are
# 0.1-1.5 MB each, so a hop carries one to a few families.
BATCH_BYTES = 1 << 20
# A last batch smaller than this is compressed on the loop: a thread hop
# would cost more than the work (well under a millisecond).
INLINE_BYTES = 64 << 10
GZIP_LEVEL = 1  # the fastest: most of the saving on this text, a fraction of the CPU
_GZIP_WBITS = 31  # 16 + 15: a gzip header and trailer around the deflate stream


def accepts_gzip(accept_encoding: str) -> bool:
    """True when the Accept-Encoding header allows gzip (RFC 9110, 12.5.3).

    `gzip` (or its alias `x-gzip`) with a q above 0, or `*` with a q above 0
    and gzip not refused by name. Absent or `identity`: plain text.
    """
    gzip_q: float | None = None
    any_q: float | None = None
    for part in accept_encoding.split(","):
        coding, _, params = part.partition(";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if coding in {"gzip", "x-gzip"}:
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            any_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return any_q is not None and any_q > 0


def _compress(compressor: zlib._Compress, batch: list[bytes], *, last: bool) -> bytes:
    """One batch through the compressor (in a worker thread: zlib drops the GIL)."""
    out = [compressor.compress(chunk) for chunk in batch]
    if last:
        out.append(compressor.flush())
    return b"".join(out)


async def write_gzip(response: web.StreamResponse, chunks: Iterable[bytes]) -> None:
    """Write `chunks` to `response` as one gzip stream.

    Pipelined: while a worker thread compresses a batch, the loop takes the
    next batch from `chunks` (rendering it); the compressed batch is written
    before the next one is handed over, so the stream stays in order.
    """
    loop = asyncio.get_running_loop()
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    pending: asyncio.Future[bytes] | None = None
    batch: list[bytes] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= BATCH_BYTES:
            if pending is not None:
                await response.write(await pending)
            pending = loop.run_in_executor(None, _thread_batch, compressor, batch)
            batch, size = [], 0
    if pending is not None:
        await response.write(await pending)
    if size < INLINE_BYTES:
        await response.write(_compress(compressor, batch, last=True))
    else:
        await response.write(
            await loop.run_in_executor(None, _thread_last, compressor, batch)
        )


def _thread_batch(compressor: zlib._Compress, batch: list[bytes]) -> bytes:
    return _compress(compressor, batch, last=False)


def _thread_last(compressor: zlib._Compress, batch: list[bytes]) -> bytes:
    return _compress(compressor, batch, last=True)

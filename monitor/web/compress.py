"""gzip for `/metrics`: negotiated from Accept-Encoding, compressed off the loop.

At thousands of stores the exposition is tens of megabytes of text, which
gzip at level 1 shrinks about six-fold. Compressing it costs tens of
milliseconds of CPU (about 85 ms for 20 MB): done on the event loop it would
stall every probe in flight for that long, and done in one thread after the
text it would add all of it to the scrape. So the text is cut into batches
of about a megabyte, each compressed on its own in a worker thread (zlib
releases the GIL), two at a time, while the loop renders the next batch.

Each batch is a run of raw deflate blocks ending on a byte boundary (a sync
flush; the last batch ends the stream), so the batches join into one
deflate stream, as pigz does. A batch cannot refer back into the one before
it, which costs a fraction of a percent of the ratio. The gzip header, the
CRC-32 (kept on the loop, chunk by chunk: about 0.25 ms per megabyte) and
the length around them make it one ordinary gzip member.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections import deque
from collections.abc import Iterable

from aiohttp import web

# Text compressed per thread hop. Families at 5,000 stores are 0.1-1.5 MB
# each, so a hop carries one to a few families.
BATCH_BYTES = 1 << 20
# Batches compressed at once: two worker threads (and the loop rendering the
# next batch) on two cores.
IN_FLIGHT = 2
# A last batch smaller than this is compressed on the loop: a thread hop
# would cost more than the work (well under a millisecond).
INLINE_BYTES = 64 << 10
GZIP_LEVEL = 1  # the fastest: most of the saving on this text, a fraction of the CPU
# RFC 1952: magic, deflate, no flags, no mtime, "fastest" (XFL 4), OS unknown.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"


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


def deflate_batch(batch: list[bytes], *, last: bool) -> bytes:
    """One batch as raw deflate blocks of its own (in a worker thread).

    Not the last: ends with a sync flush (byte-aligned, stream open), so the
    next batch's blocks follow it. The last ends the deflate stream.
    """
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [compressor.compress(chunk) for chunk in batch]
    out.append(compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
    return b"".join(out)


async def write_gzip(response: web.StreamResponse, chunks: Iterable[bytes]) -> None:
    """Write `chunks` to `response` as one gzip member, compressed off the loop.

    Batches are handed to worker threads as they fill, up to `IN_FLIGHT` at
    once, and written in order as they come back.
    """
    loop = asyncio.get_running_loop()
    pending: deque[asyncio.Future[bytes]] = deque()
    crc = 0
    length = 0
    batch: list[bytes] = []
    size = 0
    await response.write(_HEADER)
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
        length += len(chunk)
        batch.append(chunk)
        size += len(chunk)
        if size >= BATCH_BYTES:
            if len(pending) >= IN_FLIGHT:
                await response.write(await pending.popleft())
            pending.append(loop.run_in_executor(None, _deflate_open, batch))
            batch, size = [], 0
    if size < INLINE_BYTES:
        tail = deflate_batch(batch, last=True)
    else:
        pending.append(loop.run_in_executor(None, _deflate_last, batch))
        tail = b""
    while pending:
        await response.write(await pending.popleft())
    await response.write(tail + struct.pack("<II", crc, length & 0xFFFFFFFF))


def _deflate_open(batch: list[bytes]) -> bytes:
    return deflate_batch(batch, last=False)


def _deflate_last(batch: list[bytes]) -> bytes:
    return deflate_batch(batch, last=True)

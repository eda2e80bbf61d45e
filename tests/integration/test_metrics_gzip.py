"""`/metrics` gzip: negotiated from Accept-Encoding, the same samples, secrets masked.

The app is served in-process on loopback (aiohttp's test server), with a
state of a few thousand targets so that the body spans several batches of
the worker-thread compressor.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import Config
from monitor.log import MASK, Redactor
from monitor.probes.result import ProbeResult
from monitor.probes.runner import TargetRecord
from monitor.service.state import MonitorState
from monitor.targets import Labels, RedisEndpoint, Target
from monitor.web.app import make_web_app
from monitor.web.compress import BATCH_BYTES

SECRET = "pw-7f3c9d2e-secret"
STORES = 3000


def big_state() -> MonitorState:
    """STORES probed Redis targets; one's name carries a known secret value."""
    targets = []
    records = {}
    for i in range(STORES):
        name = f"store-{i:05d}" if i != 7 else f"leaky-{SECRET}"
        targets.append(
            Target(
                name,
                "static",
                Labels("static", "static", "redis", name),
                name,
                "pfx",
                RedisEndpoint(f"10.0.{i // 250}.{i % 250}", 6379),
            )
        )
        records[name] = TargetRecord(
            result=ProbeResult(
                1_800_000_000.0,
                0.002,
                True,
                True,
                True,
                1_799_999_990_000,
                phases=(("connect", 0.001), ("read", 0.001)),
            ),
            last_success=1_800_000_000.0,
        )
    return MonitorState(config=Config(), records=records, targets=tuple(targets))


@pytest.fixture(scope="module")
def state() -> MonitorState:
    """One big state for the module (built once: it takes a moment)."""
    return big_state()


@pytest.fixture
async def url(state: MonitorState) -> AsyncIterator[str]:
    """The app on a loopback port; its /metrics URL."""
    server = TestServer(make_web_app(state, Redactor([SECRET])))
    await server.start_server()
    try:
        yield str(server.make_url("/metrics"))
    finally:
        await server.close()


async def get(url: str, accept_encoding: str | None) -> tuple[bytes, dict[str, str]]:
    """The raw body (not decompressed) and headers of one GET."""
    headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
    async with (
        aiohttp.ClientSession(
            auto_decompress=False, skip_auto_headers=["Accept-Encoding"]
        ) as session,
        session.get(url, headers=headers) as reply,
    ):
        assert reply.status == 200
        return await reply.read(), dict(reply.headers)


def samples(body: bytes) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    """Every sample, parsed with prometheus_client's text parser (ages as names
    only: they are computed at each scrape, so two scrapes differ in them)."""
    return {
        (
            sample.name,
            tuple(sorted(sample.labels.items())),
            0.0 if sample.name.endswith("_age_seconds") else sample.value,
        )
        for family in text_string_to_metric_families(body.decode("utf-8"))
        for sample in family.samples
    }


async def test_gzip_body_holds_exactly_the_plain_bodys_samples(url: str) -> None:
    """Decompressed, the gzip body parses to the same samples as the plain one."""
    plain, plain_headers = await get(url, None)
    packed, headers = await get(url, "gzip")
    assert headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain_headers
    assert len(plain) > 2 * BATCH_BYTES  # several thread hops, not one
    unpacked = gzip.decompress(packed)  # checks the CRC-32 and the length
    # One gzip member, as a strict single-member reader takes it.
    reader = zlib.decompressobj(wbits=31)
    assert reader.decompress(packed) == unpacked
    assert reader.eof
    assert reader.unused_data == b""
    assert len(packed) < len(plain) / 4
    assert samples(unpacked) == samples(plain)
    assert len(samples(plain)) > 10 * STORES


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("GZIP", True),
        ("*", True),
        ("gzip;q=0", False),
        ("*;q=1, gzip;q=0", False),
        ("identity", False),
        ("deflate", False),
        ("", False),
        (None, False),
    ],
)
async def test_gzip_is_negotiated_from_accept_encoding(
    url: str, accept_encoding: str | None, gzipped: bool
) -> None:
    """gzip only when the client accepts it; the reply varies on Accept-Encoding."""
    body, headers = await get(url, accept_encoding)
    assert headers["Vary"] == "Accept-Encoding"
    assert headers["Content-Type"].startswith("text/plain")
    if gzipped:
        assert headers["Content-Encoding"] == "gzip"
        assert body[:2] == b"\x1f\x8b"
        body = gzip.decompress(body)
    else:
        assert "Content-Encoding" not in headers
    assert body.startswith(b"# HELP ")


async def test_secrets_are_masked_in_gzip_bodies_too(url: str) -> None:
    """The known secret value in a label is masked before compression."""
    for accept_encoding in (None, "gzip"):
        body, headers = await get(url, accept_encoding)
        if headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        text = body.decode("utf-8")
        assert SECRET not in text
        assert f"leaky-{MASK}" in text

"""Hostile HTTP clients: slowloris, floods of connections and malformed
requests, cross-site pages; and a crashing probe with a long password.

- Hundreds of clients that never finish their headers neither stop scrapes
  (each answers promptly) nor probes (rounds go on, results stay good); the
  server never holds more than `server.max_connections`, and a connection
  that sends no whole request within `server.header_timeout` is closed.
- When every connection has a request in flight, one more is answered 503.
- Every response has the security headers; the page's CSP hashes are those
  of its inline script and style.
- `/probe` runs only on a same-site POST.
- Malformed requests are logged at most once a second, without tracebacks.
- A probe that crashes with the password in a local variable leaves no
  8-character piece of it in the logs, `/status` or the page.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import time
from collections.abc import AsyncIterator
from typing import cast

import aiohttp
import pytest
import structlog
from aiohttp import web

from devtools.servers.redis_server import RedisServer
from monitor.config import Config, parse_config
from monitor.daemon import Daemon
from monitor.log import FRAGMENT, Redactor, configure_logging
from monitor.probes.redis.probe import RedisProbe
from monitor.probes.result import ProbeResult, Recorder
from monitor.targets import Target
from monitor.web.limits import ConnectionLimiter
from tests.support.clock import now_ms
from tests.support.plugin import REDIS_PASSWORD
from tests.support.polling import wait_until

KEY = "launchdarkly:big_segments_synchronized_on"
MAX_CONNECTIONS = 100
HEADER_TIMEOUT = 2.0
# No English word of 8 letters in it, no digits run a timestamp could hold.
PASSWORD = "Zq7-Crash-Secret-kXvRmWpLnTyBcFhJdGsAeQ-uVwZxYtN-qPzRmVkLsWdHfJg"


def _config(redis: RedisServer, password: str = REDIS_PASSWORD) -> Config:
    raw = {
        "api": {"enabled": False},
        "probe": {"interval": "1s", "timeout": "500ms"},
        "targets": [
            {
                "kind": "redis",
                "name": "store",
                "url": f"redis://{redis.address}",
                "password": "${REDIS_PASSWORD}",
            }
        ],
        "server": {
            "listen": "127.0.0.1:0",
            "max_connections": MAX_CONNECTIONS,
            "header_timeout": f"{HEADER_TIMEOUT}s",
        },
    }
    return parse_config(raw, {"REDIS_PASSWORD": password})


@pytest.fixture
async def daemon(redis_password: RedisServer) -> AsyncIterator[Daemon]:
    """A daemon over one healthy store, with the connection limits of this module."""
    with redis_password.admin() as client:
        client.set(KEY, str(now_ms()))
    config = _config(redis_password)
    async with Daemon(config, Redactor(config.secrets())) as running:
        await wait_until(lambda: _store_ok(running))
        yield running


def _store_ok(daemon: Daemon) -> bool:
    record = daemon.state.records.get("store")
    return record is not None and record.result is not None and record.result.ok


Client = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _slow_client(port: int) -> Client:
    """A connection that starts a request and never finishes its headers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    await writer.drain()
    return reader, writer


async def _closed(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def test_slow_clients_neither_stop_scrapes_nor_probes(daemon: Daemon) -> None:
    """300 slowloris connections against a cap of 100: scrapes answer, probes go on."""
    assert daemon.port is not None
    port = daemon.port
    rounds = daemon.monitor.runner.load.rounds
    slow: list[Client] = []
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        for batch in range(6):
            slow.extend(await asyncio.gather(*(_slow_client(port) for _ in range(50))))
            started = time.monotonic()
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200, batch
                assert "ld_store_probe_up" in await response.text()
            latencies.append(time.monotonic() - started)
            assert daemon.limiter.active <= MAX_CONNECTIONS
    assert max(latencies) < 1.0, latencies
    limiter = daemon.limiter
    assert limiter.evicted >= 300 - MAX_CONNECTIONS
    assert limiter.refused == 0  # none had a request in flight: room was made
    # Probes went on, and the store stayed healthy.
    await wait_until(lambda: daemon.monitor.runner.load.rounds >= rounds + 2)
    assert _store_ok(daemon)
    # Past the header timeout, every slow client has been closed.
    closed = await asyncio.gather(
        *(_closed(reader, HEADER_TIMEOUT + 2.0) for reader, _ in slow)
    )
    for _, writer in slow:
        writer.close()
    assert all(closed)
    assert limiter.expired > 0
    await wait_until(lambda: daemon.limiter.active == 0)


async def test_header_timeout_closes_a_slowloris_connection(daemon: Daemon) -> None:
    """One byte a second never makes a request: closed after header_timeout."""
    assert daemon.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
    started = time.monotonic()
    writer.write(b"GET / HTTP/1.1\r\n")
    while not reader.at_eof() and time.monotonic() - started < HEADER_TIMEOUT + 3:
        try:
            writer.write(b"X")
            await writer.drain()
        except ConnectionError:
            break
        if await _closed(reader, 0.5):
            break
    took = time.monotonic() - started
    writer.close()
    assert HEADER_TIMEOUT - 0.5 <= took <= HEADER_TIMEOUT + 1.5, took


async def test_one_connection_too_many_is_answered_503_when_all_are_busy() -> None:
    """Every connection with a request in flight: the next is refused, not queued."""
    limiter = ConnectionLimiter(2, 10.0, structlog.get_logger("test"))
    release = asyncio.Event()

    async def handler(_request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response()

    class Transport(asyncio.WriteTransport):
        def __init__(self) -> None:
            super().__init__()
            self.aborted = False

        def abort(self) -> None:
            self.aborted = True

    def request(transport: Transport) -> web.Request:
        return cast(web.Request, type("R", (), {"transport": transport})())

    first, second, third = Transport(), Transport(), Transport()
    assert limiter.admit(first)
    assert limiter.admit(second)
    busy = [
        asyncio.create_task(limiter.middleware(request(t), handler))
        for t in (first, second)
    ]
    await asyncio.sleep(0)
    assert not limiter.admit(third)
    assert limiter.refused == 1
    release.set()
    await asyncio.gather(*busy)
    # Both idle now: the oldest makes room.
    assert limiter.admit(third)
    assert first.aborted
    assert limiter.evicted == 1
    assert limiter.active == 2


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


async def test_security_headers_and_a_csp_matching_the_page(daemon: Daemon) -> None:
    """nosniff, DENY, no-referrer everywhere; the page's CSP allows its own inline code."""
    base = f"http://127.0.0.1:{daemon.port}"
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/status", "/metrics", "/-/healthy", "/nope"):
            async with session.get(base + path) as response:
                headers = response.headers
                assert headers["X-Content-Type-Options"] == "nosniff", path
                assert headers["X-Frame-Options"] == "DENY", path
                assert headers["Referrer-Policy"] == "no-referrer", path
                policy = headers["Content-Security-Policy"]
                assert "frame-ancestors 'none'" in policy, path
                body = await response.text()
            if path == "/":
                (script,) = re.findall(r"<script>(.*?)</script>", body, re.S)
                (style,) = re.findall(r"<style>(.*?)</style>", body, re.S)
                assert f"script-src 'sha256-{_sha256(script)}'" in policy
                assert f"style-src 'sha256-{_sha256(style)}'" in policy
                assert "unsafe-inline" not in policy
            else:
                assert policy.startswith("default-src 'none'"), path


async def test_probe_runs_only_on_a_same_site_post(daemon: Daemon) -> None:
    """GET 405 with a hint; cross-site POSTs 403; a plain POST probes."""
    url = f"http://127.0.0.1:{daemon.port}/probe?integration_id=store"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 405
            assert response.headers["Allow"] == "POST"
            assert "POST /probe" in (await response.json())["error"]
        for headers in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
        ):
            async with session.post(url, headers=headers) as response:
                assert response.status == 403, headers
        own = {"Origin": f"http://127.0.0.1:{daemon.port}"}
        async with session.post(url, headers=own) as response:
            assert response.status == 200
            assert (await response.json())["result"]["ok"] is True


async def test_malformed_requests_are_logged_once_a_second_without_tracebacks(
    redis_password: RedisServer,
) -> None:
    """200 malformed requests in well under a second: one or two log lines."""
    stream = io.StringIO()
    config = _config(redis_password)
    redactor = Redactor(config.secrets())
    configure_logging(redactor, fmt="json", level="info", stream=stream)
    try:
        async with Daemon(config, redactor) as running:
            assert running.port is not None
            started = time.monotonic()
            for _ in range(200):
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", running.port
                )
                writer.write(b"GET / HTTP/1.1\r\nHost x\r\nNo-Colon-Here\r\n\r\n")
                await writer.drain()
                assert (await reader.read(12))[8:] == b" 400"
                writer.close()
            elapsed = time.monotonic() - started
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    server = [line for line in lines if line.get("logger") == "aiohttp.server"]
    assert 1 <= len(server) <= elapsed + 1, (len(server), elapsed)
    for line in server:
        assert "exception" not in line
        assert "Traceback" not in json.dumps(line)


async def test_a_crashing_probe_leaks_no_piece_of_the_password(
    redis_plain: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe bug with the handshake in a local and a cut repr in its message."""

    async def crash(
        _self: RedisProbe, target: Target, recorder: Recorder
    ) -> ProbeResult:
        handshake = [("AUTH", "ldmon", PASSWORD)]
        del target, recorder
        raise ValueError(f"cannot parse {handshake!r}"[:80])

    monkeypatch.setattr(RedisProbe, "run", crash)
    config = _config(redis_plain, PASSWORD)
    redactor = Redactor(config.secrets())
    pieces = [PASSWORD[i : i + FRAGMENT] for i in range(len(PASSWORD) - FRAGMENT + 1)]
    for level in ("info", "debug"):
        stream = io.StringIO()
        configure_logging(redactor, fmt="json", level=level, stream=stream)
        try:
            async with (
                Daemon(config, redactor) as running,
                aiohttp.ClientSession() as session,
            ):
                await wait_until(
                    lambda d=running: d.monitor.runner.load.rounds >= 3  # type: ignore[misc]
                )
                base = f"http://127.0.0.1:{running.port}"
                pages = []
                for path in ("/status", "/", "/metrics"):
                    async with session.get(base + path) as response:
                        pages.append(await response.text())
                async with session.post(base + "/probe?integration_id=store") as reply:
                    pages.append(await reply.text())
        finally:
            structlog.reset_defaults()
        logs = stream.getvalue()
        assert '"probe.crashed"' in logs
        assert '"locals"' not in logs
        for where, text in (
            ("logs", logs),
            *zip(("status", "page", "metrics", "probe"), pages, strict=True),
        ):
            leaked = [piece for piece in pieces if piece in text]
            assert not leaked, f"{level}: {where} holds {leaked[:1]}"

"""`/status` and the page served from one shared build (issue 13).

The app is served in-process on loopback (aiohttp's test server) over a
state of static targets; the last test runs the daemon against a real
redis-server while clients hammer `/status` and `/`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from devtools.servers.redis_server import RedisServer
from monitor.config import Config, parse_config
from monitor.daemon import Daemon
from monitor.log import MASK, Redactor
from monitor.probes.result import ProbeResult, Reason
from monitor.probes.runner import TargetRecord
from monitor.service.state import MonitorState
from monitor.targets import Labels, RedisEndpoint, Target
from monitor.web import status as status_module
from monitor.web.app import make_web_app
from monitor.web.status import STATUS_CACHE, StatusCache
from tests.support.daemon import (
    STATIC_PREFIX,
    InProcessDaemon,
    daemon_config,
    seed_store,
)
from tests.support.polling import wait_until

SECRET = "pw-41d7c0de-secret"
# The served app judges results by the real clock: a fixed time far from it
# would read as a synchronizedOn in the future (a note of its own).
NOW = float(int(time.time()))


def result(ok: bool = True, error: str | None = None, now: float = NOW) -> ProbeResult:
    """A probe result at `now`: fresh and readable, or a failed read with `error`."""
    if ok:
        return ProbeResult(now, 0.002, True, True, True, int(now * 1000) - 10_000)
    return ProbeResult(
        now, 0.002, False, False, False, None, reason=Reason.AUTH, error=error
    )


def state_of(
    count: int,
    failing: set[int] = frozenset(),  # type: ignore[assignment]
    now: float = NOW,
) -> MonitorState:
    """`count` static Redis targets, two projects; those in `failing` cannot be read.

    Served apps judge by the real clock: pass `now=time.time()` for them, as
    the suite may run minutes after this module was imported.
    """
    targets = []
    records = {}
    for i in range(count):
        name = f"store-{i:04d}"
        project = "alpha" if i % 2 == 0 else "beta"
        targets.append(
            Target(
                name,
                "static",
                Labels(project, "production", "redis", name),
                name,
                "pfx",
                RedisEndpoint(f"10.0.{i // 250}.{i % 250}", 6379),
            )
        )
        bad = i in failing
        records[name] = TargetRecord(
            result=result(
                ok=not bad,
                error=f"auth failed with password={SECRET}" if bad else None,
                now=now,
            ),
            consecutive_failures=1 if bad else 0,
        )
    return MonitorState(config=Config(), records=records, targets=tuple(targets))


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestServer, MonitorState]]:
    """The app over 250 targets (three failing), on a loopback port."""
    state = state_of(250, failing={7, 100, 201}, now=time.time())
    server = TestServer(make_web_app(state, Redactor([SECRET])), host="127.0.0.1")
    await server.start_server()
    try:
        yield server, state
    finally:
        await server.close()


async def get(server: TestServer, path: str) -> tuple[int, str, Any]:
    """Status, body and headers of GET `path`."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(str(server.make_url(path))) as reply,
    ):
        return reply.status, await reply.text(), reply.headers


async def test_concurrent_readers_share_one_build(
    served: tuple[TestServer, MonitorState],
) -> None:
    """Twenty concurrent GETs of /status and / cause one build, and all get the same report."""
    server, _ = served
    replies = await asyncio.gather(
        *(get(server, "/status" if i % 2 else "/") for i in range(20))
    )
    assert {status for status, _, _ in replies} == {200}
    assert server.app[STATUS_CACHE].builds == 1
    stamps = {headers["X-Generated-At"] for _, _, headers in replies}
    assert len(stamps) == 1


async def test_a_new_result_invalidates_the_build(
    served: tuple[TestServer, MonitorState],
) -> None:
    """A result replaced in a record is in the next build (after the cooldown)."""
    server, state = served
    cache = server.app[STATUS_CACHE]
    _, body, _ = await get(server, "/status")
    assert cache.builds == 1
    _, again, _ = await get(server, "/status")
    assert cache.builds == 1
    assert again == body
    state.records["store-0003"].result = result(ok=False, error="connection reset")
    cache._ended -= status_module.MIN_GAP
    _, changed, _ = await get(server, "/status")
    assert cache.builds == 2
    row = next(r for r in json.loads(changed)["targets"] if r["id"] == "store-0003")
    assert row["probe"]["error"] == "connection reset"


async def test_a_watched_status_is_rebuilt_after_a_round_before_anyone_asks(
    served: tuple[TestServer, MonitorState],
) -> None:
    """warm() (called by the daemon after each round) builds in the background
    once someone has read the status; a reader meanwhile gets the previous
    build; nobody reading, nothing is built."""
    server, state = served
    cache = server.app[STATUS_CACHE]
    cache.warm()
    assert cache.builds == 0  # never read: no work
    await get(server, "/status")
    assert cache.builds == 1
    previous = await cache.get()
    state.records["store-0003"].result = result(ok=False, error="connection reset")
    cache._ended -= status_module.MIN_GAP
    cache.warm()
    assert cache._task is not None
    # While the background build runs, a reader is answered from the last one.
    assert await cache.get() is previous
    await wait_until(lambda: cache._task is None, timeout=10)
    assert cache.builds == 2
    _, after, _ = await get(server, "/status")
    assert cache.builds == 2  # the reader did not wait for, nor start, a build
    row = next(r for r in json.loads(after)["targets"] if r["id"] == "store-0003")
    assert row["probe"]["error"] == "connection reset"
    cache.warm()
    assert cache._task is None  # nothing changed since: nothing to build


async def test_full_status_keeps_its_shape_and_redacts(
    served: tuple[TestServer, MonitorState],
) -> None:
    """/status without a query is the whole report, worst first, secrets masked."""
    server, _ = served
    status, body, headers = await get(server, "/status")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    assert list(doc) == [
        "version",
        "generated_at",
        "ready",
        "healthy",
        "stale_after_seconds",
        "api",
        "targets",
    ]
    assert len(doc["targets"]) == 250
    assert [r["verdict"] for r in doc["targets"][:3]] == ["unavailable"] * 3
    assert SECRET not in body
    assert MASK in body
    _, page, _ = await get(server, "/?problems=1")
    assert SECRET not in page
    assert "password=[REDACTED]" in page


async def test_pages_and_filters_are_applied_on_the_server(
    served: tuple[TestServer, MonitorState],
) -> None:
    """Problems come first; a page holds per_page rows; filters keep what they say."""
    server, _ = served
    _, body, _ = await get(server, "/status?page=2&per_page=100")
    doc = json.loads(body)
    assert len(doc["targets"]) == 100
    assert doc["paging"] == {
        "page": 2,
        "per_page": 100,
        "pages": 3,
        "matched": 250,
        "total": 250,
        "filters": {},
    }
    _, body, _ = await get(server, "/status?problems=1")
    doc = json.loads(body)
    assert sorted(r["id"] for r in doc["targets"]) == [
        "store-0007",
        "store-0100",
        "store-0201",
    ]
    _, body, _ = await get(server, "/status?project=beta&q=store-02&kind=redis")
    ids = [r["id"] for r in json.loads(body)["targets"]]
    assert ids
    assert all(i.startswith("store-02") for i in ids)
    assert all(int(i[-4:]) % 2 == 1 for i in ids)
    assert "store-0201" in ids[:1]  # the failing one first
    _, body, _ = await get(server, "/status?kind=dynamodb")
    assert json.loads(body)["targets"] == []
    status, _, _ = await get(server, "/status?page=zero")
    assert status == 400


async def test_the_page_shows_one_page_of_rows_with_pager_links(
    served: tuple[TestServer, MonitorState],
) -> None:
    """/ shows PER_PAGE rows, problems first, and links to the next page."""
    server, _ = served
    _, html, _ = await get(server, "/")
    rows = re.findall(r'<tr class="r-[a-z]+" data-verdict="([a-z]+)"', html)
    assert len(rows) == status_module.PER_PAGE
    assert rows[:3] == ["unavailable"] * 3
    assert 'data-complete="0"' in html
    assert 'href="/?page=2&amp;per_page=100"' in html
    _, second, _ = await get(server, "/?page=3")
    assert len(re.findall(r"<tr class=\"r-", second)) == 50
    _, filtered, _ = await get(server, "/?project=alpha&problems=1")
    assert re.findall(r'id="t-([^"]+)"', filtered) == ["store-0100"]


async def test_builds_are_rate_limited_with_retry_after() -> None:
    """When the last build is too old and the next may not start yet: 429 with Retry-After."""
    clock = [1000.0]
    state = state_of(5)
    app = make_web_app(state, Redactor())
    cache = StatusCache(state, Redactor(), monotonic=lambda: clock[0])
    app[STATUS_CACHE] = cache
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        assert (await get(server, "/status"))[0] == 200
        built = cache._build
        assert built is not None
        cache._build = replace(built, duration=5.0)
        clock[0] += 12.0  # older than MAX_AGE, inside 4 x 5 s of cooldown
        status, _, headers = await get(server, "/status")
        assert status == 429
        assert headers["Retry-After"] == "8"
        assert (await get(server, "/"))[0] == 429
        clock[0] += 8.0
        assert (await get(server, "/status"))[0] == 200
        assert cache.builds == 2
    finally:
        await server.close()


async def test_a_build_yields_to_the_loop_while_it_works() -> None:
    """At 3,000 targets a build pauses many times; a ticker keeps ticking through it."""
    state = state_of(3000, failing={5})
    cache = StatusCache(state, Redactor([SECRET]), slice_seconds=0.002)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        build = await cache.build()
    finally:
        task.cancel()
    assert len(build.entries) == 3000
    assert ticks > 10


async def test_readers_hammering_status_do_not_starve_the_probes(
    redis_plain: RedisServer,
) -> None:
    """300 targets on a real redis-server, probed every second (timeout 0.9 s: far
    above a probe's milliseconds), while four clients loop over /status and /
    for four seconds: not one probe fails."""
    seed_store(redis_plain)
    raw = daemon_config(
        f"redis://{redis_plain.host}:{redis_plain.client_port}",
        api={"enabled": False},
        probe={"interval": 1.0, "timeout": 0.9},
    )
    base_target = raw["targets"][0]
    raw["targets"] = [
        {**base_target, "name": f"store-{i:03d}", "prefix": STATIC_PREFIX}
        for i in range(300)
    ]
    config = parse_config(raw, env={})
    async with Daemon(config, Redactor()) as daemon:
        base = f"http://127.0.0.1:{daemon.port}"
        async with aiohttp.ClientSession() as session:
            await InProcessDaemon.of(daemon, session).wait_ready()
            reads = 0

            async def reader(path: str) -> None:
                nonlocal reads
                loop = asyncio.get_running_loop()
                end = loop.time() + 4.0
                while loop.time() < end:
                    async with session.get(base + path) as reply:
                        await reply.read()
                        assert reply.status == 200
                        reads += 1

            await asyncio.gather(*(reader(p) for p in ("/status", "/", "/status", "/")))
        records = daemon.state.records.values()
    assert reads > 20
    assert sum(sum(r.failures.values()) for r in records) == 0
    assert all(r.result is not None and r.result.ok for r in records)


async def test_a_build_renders_again_only_the_rows_whose_result_changed() -> None:
    """Rows whose inputs are the same objects are kept (ages refilled); a new
    result object renders its row again and shows in the JSON."""
    clock = [NOW]
    state = state_of(50)
    cache = StatusCache(state, Redactor([SECRET]), clock=lambda: clock[0])
    first = await cache.build()
    assert first.rerendered == 50
    clock[0] += 5.0
    again = await cache.build()
    assert again.rerendered == 0
    ages = {
        r["id"]: r["probe"]["sync_age_seconds"]
        for r in json.loads(again.body)["targets"]
    }
    assert set(ages.values()) == {15.0}  # 10 s old at NOW, 5 s later: refilled
    state.records["store-0003"].result = result(
        ok=False, error=f"auth failed with password={SECRET}"
    )
    changed = await cache.build()
    assert changed.rerendered == 1
    doc = json.loads(changed.body)
    assert doc["targets"][0]["id"] == "store-0003"  # now the worst: sorted first
    assert doc["targets"][0]["probe"]["error"] == f"auth failed with password={MASK}"
    assert SECRET not in changed.body.decode()
    # A row with something masked is rendered at every build (the exact,
    # slower redaction), the others only when their inputs change.
    assert (await cache.build()).rerendered == 1
    state.records["store-0004"].consecutive_failures = 3  # mutated in place
    assert (await cache.build()).rerendered == 2


async def test_a_row_is_rendered_again_when_time_alone_makes_it_stale() -> None:
    """Same result object, but past the stale threshold: the kept row is not reused."""
    clock = [NOW]
    state = state_of(3)
    cache = StatusCache(state, Redactor(), clock=lambda: clock[0])
    fresh = json.loads((await cache.build()).body)
    assert {r["verdict"] for r in fresh["targets"]} == {"healthy"}
    clock[0] += 3600.0
    later = await cache.build()
    assert later.rerendered == 3
    assert {r["verdict"] for r in json.loads(later.body)["targets"]} == {"stale"}


async def test_if_none_match_answers_304_until_the_build_changes(
    served: tuple[TestServer, MonitorState],
) -> None:
    """The ETag of an answer gets 304 with no body; another query or build, 200."""
    server, _ = served
    status, _, headers = await get(server, "/status")
    assert status == 200
    etag = headers["ETag"]
    assert headers["Cache-Control"] == "no-cache"
    url = str(server.make_url("/status"))
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"If-None-Match": etag}) as reply,
    ):
        assert reply.status == 304
        assert await reply.read() == b""
        assert reply.headers["ETag"] == etag
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "?page=2", headers={"If-None-Match": etag}) as reply,
    ):
        assert reply.status == 200
        assert reply.headers["ETag"] != etag
    _, _, page_headers = await get(server, "/")
    assert page_headers["ETag"] != etag


async def test_the_status_body_is_gzipped_when_the_client_accepts_it(
    served: tuple[TestServer, MonitorState],
) -> None:
    """gzip once per answer, the same JSON inflated; plain without Accept-Encoding."""
    server, _ = served
    url = str(server.make_url("/status"))
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(url, headers={"Accept-Encoding": "gzip"}) as reply:
            packed = await reply.read()
            assert reply.headers["Content-Encoding"] == "gzip"
            assert reply.headers["Vary"] == "Accept-Encoding"
        async with session.get(url, headers={"Accept-Encoding": "identity"}) as reply:
            plain = await reply.read()
            assert "Content-Encoding" not in reply.headers
    assert gzip.decompress(packed) == plain
    assert len(packed) < len(plain) // 4
    assert SECRET.encode() not in plain
    build = server.app[STATUS_CACHE]._build
    assert build is not None
    assert server.app[STATUS_CACHE].builds == 1


async def test_a_kept_row_follows_every_note_that_depends_on_the_time() -> None:
    """A TLS expiry note and a synchronizedOn in the future come and go with the
    time alone: the row is rendered again, not kept."""
    clock = [NOW]
    state = state_of(2)
    soon = replace(result(), tls_not_after=NOW + 15 * 86400)
    state.records["store-0000"].result = soon
    ahead = replace(result(), synchronized_on_ms=int((NOW + 86400 + 60) * 1000))
    state.records["store-0001"].result = ahead
    cache = StatusCache(state, Redactor(), clock=lambda: clock[0])

    def notes(build: status_module.StatusBuild) -> dict[str, list[str]]:
        rows = json.loads(build.body)["targets"]
        return {r["id"]: [n["text"] for n in r["probe"]["notes"]] for r in rows}

    first = notes(await cache.build())
    assert first["store-0000"] == []
    assert any("future" in n for n in first["store-0001"])
    clock[0] += 2 * 86400  # the certificate is 13 days from expiry; sync now past
    later = await cache.build()
    assert later.rerendered == 2
    after = notes(later)
    assert any("TLS certificate expires" in n for n in after["store-0000"])
    assert not any("future" in n for n in after["store-0001"])

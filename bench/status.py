"""`/status` and the status page at 5,000 integrations, and readers during probe rounds.

Part one, N = 5,000 (1,000 with --quick): the state is filled the real way
(the monitor discovers N integrations from the API simulator and probes
their four redis-servers once). Then, with a sampler task measuring the
event loop's lag (a 1 ms sleep over and over: how much later it wakes):

- build: one `StatusCache.build()`: the report, redacted, rendered as the
  whole `/status` JSON and the page's frame, a slice at a time; its total
  time and the longest the loop was held meanwhile. Once with nothing
  changed since the last build (rows kept, ages refilled), once after every
  record got a new result object (as after a probe round: every row
  rendered again);
- before: what one request cost before issue 13, in one block on the loop
  (`build_report` + `Redactor.value` + `json.dumps`, and `build_report` +
  `redacted` + `render_page`);
- GET `/status` and GET `/` served from the build, through real HTTP.

Part two, N = 1,000 healthy Redis integrations (200 with --quick): probe
rounds back to back, undisturbed, then with CLIENTS reader processes
fetching `/status`, `/` and a filtered page in a loop (from another process,
so that the clients' own parsing does not load the monitor's loop). Probe
failures (must be 0), round duration disturbed / undisturbed, and the
event loop's lag p99 while disturbed.

    .venv/bin/python -m bench.status [--quick] [--smoke] [--repeat 5] [--json]
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.fleet import (
    probed_fleet,
)
from bench.harness import Options, Report, parse_options, progress
from monitor import __version__
from monitor.daemon import freeze_startup_objects
from monitor.export.report import build_report
from monitor.log import Redactor
from monitor.service.monitor import Monitor
from monitor.service.state import MonitorState
from monitor.web.app import make_web_app
from monitor.web.page import render_page
from monitor.web.status import StatusCache

BUILD_TARGET_MS = 100.0
BLOCK_TARGET_MS = 10.0
LAG_TARGET_MS = 50.0
CLIENTS = 4
READER_PATHS = ("/status", "/", "/?problems=1&q=e01&page=1")


class LagSampler:
    """Measures how late a 1 ms sleep wakes up, over and over, while running."""

    def __init__(self, period: float = 0.001) -> None:
        self._period = period
        self.samples: list[tuple[float, float]] = []  # (monotonic, lag seconds)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(self._period)
            woke = time.perf_counter()
            self.samples.append((woke, max(0.0, woke - asked - self._period)))

    def start(self) -> None:
        """Start sampling."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def between(self, start: float, end: float) -> list[float]:
        """The lags of the samples that woke between `start` and `end`."""
        return [lag for at, lag in self.samples if start <= at <= end]


def quantile(values: list[float], q: float) -> float:
    """The `q` quantile, nearest rank."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered))))
    return ordered[rank - 1]


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on a loopback port; the runner and its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    """Seconds `action` takes."""
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


@asynccontextmanager
async def filled(size: int, tmp: Path) -> AsyncIterator[tuple[Monitor, Redactor]]:
    """A monitor that discovered and probed `size` Redis integrations once."""
    async with probed_fleet(size, tmp) as (monitor, config):
        freeze_startup_objects()
        yield monitor, Redactor(config.secrets())


def renew(state: MonitorState) -> None:
    """Give every record a new result object with the same content (a round)."""
    for record in state.records.values():
        if record.result is not None:
            record.result = dataclasses.replace(record.result)


def before_status(state: MonitorState, redactor: Redactor) -> bytes:
    """What GET /status did before issue 13, in one block."""
    body = redactor.value(build_report(state).to_json())
    return json.dumps(body, indent=2).encode("utf-8")


def before_page(state: MonitorState, redactor: Redactor) -> bytes:
    """What GET / did before issue 13, in one block."""
    report = build_report(state).redacted(redactor.text)
    return render_page(report, now=time.time(), version=__version__).encode("utf-8")


async def measure_build(
    state: MonitorState, redactor: Redactor, options: Options, report: Report
) -> None:
    """Part one: a build's total time and longest block; the old paths; cached GETs."""
    cache = StatusCache(state, redactor)
    sampler = LagSampler()
    figures: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        figures.setdefault(name, []).append(seconds * 1000)

    now = time.time()
    fixed = await StatusCache(state, redactor, clock=lambda: now).build()
    old = redactor.value(build_report(state, clock=lambda: now).to_json())
    if json.loads(fixed.body) != old:
        raise RuntimeError("the built /status differs from the old one")
    report.parameters.update(
        status_bytes=len(fixed.body),
        page_bytes_all_rows=len(before_page(state, redactor)),
    )
    app = make_web_app(state, redactor)
    runner, base = await serve(app)
    sampler.start()
    try:
        async with aiohttp.ClientSession() as session:

            async def get(path: str) -> None:
                async with session.get(base + path) as reply:
                    await reply.read()
                    if reply.status != 200:
                        raise RuntimeError(f"{path} answered {reply.status}")

            await get("/status")
            await cache.build()  # the first build renders every row: not timed here
            for i in range(options.repeat):
                await asyncio.sleep(0.05)
                start = time.perf_counter()
                add("build", await timed(cache.build))
                lags = sampler.between(start, time.perf_counter())
                figures.setdefault("block", []).append(max(lags, default=0) * 1000)
                renew(state)  # as after a probe round: every row renders again
                await asyncio.sleep(0.05)
                start = time.perf_counter()
                add("build, all new", await timed(cache.build))
                lags = sampler.between(start, time.perf_counter())
                figures.setdefault("block, all new", []).append(
                    max(lags, default=0) * 1000
                )
                await cache.build()  # the next builds keep the rows again
                add(
                    "before /status", await timed(_sync(before_status, state, redactor))
                )
                add("before page", await timed(_sync(before_page, state, redactor)))
                add("GET /status", await timed(lambda: get("/status")))
                add("GET /", await timed(lambda: get("/")))
                add("GET / filtered", await timed(lambda: get(READER_PATHS[2])))
                progress(
                    f"repeat {i + 1}: build {figures['build'][-1]:.0f} ms, longest "
                    f"block {figures['block'][-1]:.1f} ms, before /status "
                    f"{figures['before /status'][-1]:.0f} ms"
                )
    finally:
        await sampler.stop()
        await runner.cleanup()
    build = report.add(
        "status build (JSON + page rows), total",
        figures["build"],
        "ms",
        target=f"< {BUILD_TARGET_MS:g} ms",
    )
    build.met = build.median < BUILD_TARGET_MS
    block = report.add(
        "longest event-loop block during a build",
        figures["block"],
        "ms",
        target=f"< {BLOCK_TARGET_MS:g} ms",
    )
    block.met = block.high < BLOCK_TARGET_MS
    report.add(
        "status build after every result changed (all rows rendered), total",
        figures["build, all new"],
        "ms",
    )
    report.add(
        "longest event-loop block during a build after every result changed",
        figures["block, all new"],
        "ms",
        target=f"< {BLOCK_TARGET_MS:g} ms",
    ).met = max(figures["block, all new"]) < BLOCK_TARGET_MS
    report.add(
        "before: /status per request, one block", figures["before /status"], "ms"
    )
    report.add("before: page per request, one block", figures["before page"], "ms")
    report.add("GET /status from the build", figures["GET /status"], "ms")
    report.add("GET / from the build", figures["GET /"], "ms")
    report.add("GET / filtered from the build", figures["GET / filtered"], "ms")


def _sync(
    func: Callable[[MonitorState, Redactor], bytes],
    state: MonitorState,
    redactor: Redactor,
) -> Callable[[], Awaitable[bytes]]:
    async def run() -> bytes:
        return func(state, redactor)

    return run


async def rounds(
    monitor: Monitor,
    count: int,
    sampler: LagSampler,
    after_round: Callable[[], None] = lambda: None,
) -> tuple[list[float], int, list[float]]:
    """`count` probe rounds back to back: durations, failures, loop lags.

    `after_round` runs after each, as the daemon warms the status build.
    """
    durations: list[float] = []
    failed = 0
    start = time.perf_counter()
    for _ in range(count):
        monitor.runner.make_all_due()
        summary = await monitor.probe_round()
        after_round()
        durations.append(summary.duration)
        failed += summary.failed
    return durations, failed, sampler.between(start, time.perf_counter())


async def measure_load(size: int, options: Options, report: Report) -> None:
    """Part two: probe rounds with and without readers hammering /status and /."""
    count = 2 if options.smoke else (3 if options.quick else 2 * options.repeat)
    with tempfile.TemporaryDirectory(prefix="bench-status-load-") as tmp:
        async with filled(size, Path(tmp)) as (monitor, redactor):
            app = make_web_app(monitor.state, redactor)
            runner, base = await serve(app)
            sampler = LagSampler()
            sampler.start()
            try:
                quiet, quiet_failed, quiet_lags = await rounds(monitor, count, sampler)
                progress(f"N={size}: undisturbed rounds {_ms(quiet)}")
                readers = await asyncio.to_thread(
                    subprocess.Popen,
                    [sys.executable, "-m", "bench.status", "--readers", base],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                try:
                    await asyncio.sleep(1.0)
                    busy, busy_failed, busy_lags = await rounds(
                        monitor, count, sampler, app[_status_cache_key()].warm
                    )
                finally:
                    readers.send_signal(signal.SIGTERM)
                    out, _ = await asyncio.to_thread(readers.communicate, timeout=30)
                progress(f"N={size}: disturbed rounds {_ms(busy)}")
                reads = Counter(json.loads(out or "{}"))
            finally:
                await sampler.stop()
                await runner.cleanup()
            builds = app[_status_cache_key()].builds
    report.add(f"probe failures, undisturbed, N={size}", [quiet_failed], "requests")
    failures = report.add(
        f"probe failures with {CLIENTS} readers, N={size}",
        [busy_failed],
        "requests",
        target="0",
    )
    failures.met = busy_failed == 0
    report.add(f"round undisturbed N={size}", [d * 1000 for d in quiet], "ms")
    report.add(f"round with readers N={size}", [d * 1000 for d in busy], "ms")
    report.add(
        f"round ratio with readers / undisturbed N={size}",
        [statistics.median(busy) / statistics.median(quiet)],
        "x",
    )
    report.add(
        f"loop lag p99 undisturbed N={size}", [quantile(quiet_lags, 0.99) * 1000], "ms"
    )
    lag = report.add(
        f"loop lag p99 with readers N={size}",
        [quantile(busy_lags, 0.99) * 1000],
        "ms",
        target=f"< {LAG_TARGET_MS:g} ms",
    )
    lag.met = lag.median < LAG_TARGET_MS
    report.add(f"loop lag max with readers N={size}", [max(busy_lags) * 1000], "ms")
    report.add(
        f"reads answered during the disturbed rounds N={size}",
        [float(sum(n for k, n in reads.items() if k == "200"))],
        "requests",
    )
    report.note(
        f"readers: {CLIENTS} connections in another process looping over "
        f"{', '.join(READER_PATHS)}; answers by status {dict(reads)}; "
        f"{builds} builds over the whole load run"
    )


def _status_cache_key() -> web.AppKey[StatusCache]:
    from monitor.web.status import STATUS_CACHE  # noqa: PLC0415 -- keeps imports short

    return STATUS_CACHE


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v * 1000:.0f}" for v in values) + " ms"


async def readers(base: str) -> None:
    """CLIENTS loops of GETs until SIGTERM; then the answers by status, as JSON."""
    counts: Counter[str] = Counter()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def loop(session: aiohttp.ClientSession, offset: int) -> None:
        i = offset
        while not stop.is_set():
            path = READER_PATHS[i % len(READER_PATHS)]
            i += 1
            try:
                async with session.get(base + path) as reply:
                    await reply.read()
                    counts[str(reply.status)] += 1
                    if reply.status == 429:
                        await asyncio.sleep(float(reply.headers.get("Retry-After", 1)))
            except aiohttp.ClientError:
                counts["error"] += 1

    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(loop(session, n)) for n in range(CLIENTS)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(counts))


async def main(options: Options) -> Report:
    """Both parts; the report."""
    size = 5 if options.smoke else (1000 if options.quick else 5000)
    load = 5 if options.smoke else (200 if options.quick else 1000)
    report = Report(
        "status",
        "/status and the status page: build, loop blocks, readers during rounds",
        options,
        parameters={"N": size, "N_load": load, "readers": CLIENTS},
    )
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        async with filled(size, Path(tmp)) as (monitor, redactor):
            await measure_build(monitor.state, redactor, options, report)
    await measure_load(load, options, report)
    report.note(
        "build: one StatusCache.build(), which the cache shares among all "
        "readers; the loop is held at most one slice (4 ms of work) at a time; "
        "'build' keeps the rows whose inputs did not change (ages refilled), "
        "'all new' follows a new result object for every target"
    )
    return report


def _extra(parser: object) -> None:
    import argparse  # noqa: PLC0415 -- the type only

    assert isinstance(parser, argparse.ArgumentParser)
    parser.add_argument("--readers", metavar="URL", help=argparse.SUPPRESS)


if __name__ == "__main__":
    opts = parse_options(__doc__.splitlines()[0] if __doc__ else "status", extra=_extra)
    if opts.extra.readers:
        asyncio.run(readers(opts.extra.readers))
    else:
        asyncio.run(main(opts)).emit()

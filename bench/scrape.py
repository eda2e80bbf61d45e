"""`/metrics` at 5,000 integrations against the same families pre-built.

The state is filled the real way: the monitor discovers 5,000 integrations
from the API simulator and probes their four redis-servers once (so the
health series, INFO and the membership sample, are there too). Then, with
the clock fixed so both sides print the same ages:

- monitor: `render_metrics(state)` in the text format and in OpenMetrics
  (what `/metrics` serves), and the whole aiohttp handler (`choose_encoder`,
  render, known-secret masking) through a real HTTP GET with Prometheus'
  Accept header, plain (`Accept-Encoding: identity`) and gzip (what
  Prometheus sends: `Accept-Encoding: gzip`; the body read, not inflated);
- floor: prometheus_client's `generate_latest` (text and OpenMetrics) over a
  trivial collector that yields the same families, built once beforehand
  with `GaugeMetricFamily` and `CounterMetricFamily` (same names, help,
  labels and values), and an HTTP handler that only encodes and returns
  (for gzip: compresses the whole body at level 1 on the loop, as a simple
  handler would). Both outputs are parsed back and checked to hold the same
  samples before anything is timed; the monitor's gzip body is inflated
  and checked too.
- the longest event-loop block during a monitor scrape, plain and gzip: a
  sampler in the same loop sleeps 1 ms over and over and records how late it
  wakes (`monitor.service.lag`).

    .venv/bin/python -m bench.scrape [--quick] [--repeat 5] [--json]
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import (
    generate_latest as generate_openmetrics,
)
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from bench.fleet import (
    probed_fleet,
)
from bench.harness import (
    Options,
    Report,
    parse_options,
    progress,
    ratios,
    spied,
)
from monitor.export.metrics import ScrapeCache, prerender, render_metrics
from monitor.log import Redactor
from monitor.service.lag import LagWindow, sample_lag
from monitor.service.state import MonitorState
from monitor.web.app import make_web_app

RATIO_TARGET = 1.5
TIME_TARGET_MS = 100.0
GZIP_TARGET_MS = 150.0  # HTTP GET with gzip, N = 5,000
# What Prometheus 2.x and 3.x send: OpenMetrics first.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,"
    "application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


class Prebuilt(Collector):
    """Yields families built beforehand: the floor of a scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        """The prebuilt families, as they are."""
        return self._families


def prebuild(collected: Iterable[Metric]) -> list[Metric]:
    """The same families, rebuilt with GaugeMetricFamily / CounterMetricFamily."""
    families: list[Metric] = []
    for metric in collected:
        names = list(metric.samples[0].labels) if metric.samples else []
        family: GaugeMetricFamily | CounterMetricFamily
        if metric.type == "counter":
            family = CounterMetricFamily(
                metric.name, metric.documentation, labels=names
            )
        elif metric.type == "gauge":
            family = GaugeMetricFamily(metric.name, metric.documentation, labels=names)
        else:
            raise RuntimeError(f"unexpected metric type {metric.type}")
        for sample in metric.samples:
            family.add_metric([sample.labels[n] for n in names], sample.value)
        families.append(family)
    return families


def floor_app(registry: CollectorRegistry) -> web.Application:
    """An aiohttp app whose /metrics only encodes the prebuilt families."""

    async def metrics(request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        headers = {"Content-Type": content_type}
        body = encoder(registry)
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            packer = zlib.compressobj(1, zlib.DEFLATED, 31)
            body = packer.compress(body) + packer.flush()
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on a loopback port; the runner and the /metrics URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/metrics"


async def get(session: aiohttp.ClientSession, url: str, *, gzip: bool = False) -> bytes:
    """One GET of `url` as Prometheus sends it; the body as sent (not inflated)."""
    headers = {
        "Accept": PROMETHEUS_ACCEPT,
        "Accept-Encoding": "gzip" if gzip else "identity",
    }
    async with session.get(url, headers=headers) as reply:
        body = await reply.read()
        if reply.status != 200:
            raise RuntimeError(f"{url} answered {reply.status}")
        if gzip != (reply.headers.get("Content-Encoding") == "gzip"):
            raise RuntimeError(f"{url}: Content-Encoding not as asked")
    return body


async def time_get(
    session: aiohttp.ClientSession, url: str, *, gzip: bool = False
) -> float:
    """Seconds one GET of `url` takes, body read."""
    started = time.perf_counter()
    await get(session, url, gzip=gzip)
    return time.perf_counter() - started


async def longest_block(
    session: aiohttp.ClientSession, url: str, *, gzip: bool
) -> float:
    """The longest the event loop was held during one GET of `url` (seconds)."""
    window = LagWindow(limit=100_000)
    sampler = asyncio.create_task(sample_lag(window, period=0.001))
    await asyncio.sleep(0.01)  # the sampler is running
    try:
        await get(session, url, gzip=gzip)
        await asyncio.sleep(0.003)  # the wake-up after the last block
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    return window.quantile(1.0, time.monotonic()) or 0.0


async def main(options: Options) -> Report:
    """Fill the state, then time each path on both sides."""
    size = 5 if options.smoke else (1000 if options.quick else 5000)
    report = Report(
        "scrape",
        "/metrics: monitor vs the same families pre-built",
        options,
        parameters={"N": size},
    )
    with tempfile.TemporaryDirectory(prefix="bench-scrape-") as tmp:
        async with probed_fleet(size, Path(tmp)) as (monitor, config):
            await measure(monitor.state, config.secrets(), options, report)
    return report


Encoder = Callable[[], bytes]


def samples_of(text: bytes) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    """Every sample of a text-format exposition, as a comparable set."""
    return {
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(text.decode("utf-8"))
        for sample in family.samples
    }


# Samples that two scrapes a moment apart may disagree on: ages, the process's
# own figures (CPU, memory, descriptors) and the event loop's lag.
_MOVING = ("process_", "ld_store_event_loop_lag")


def timeless(body: bytes) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    """The samples of an OpenMetrics body, moving values zeroed (see `_MOVING`)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items())), 0.0)
        if sample.name.endswith("_age_seconds") or sample.name.startswith(_MOVING)
        else (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in parse_openmetrics(body.decode("utf-8"))  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        for sample in family.samples
    }


def time_encode(encode: Encoder) -> float:
    """Seconds one encoding takes."""
    started = time.perf_counter()
    encode()
    return time.perf_counter() - started


async def measure(
    state: MonitorState, secrets: Iterable[str], options: Options, report: Report
) -> None:
    """Time the three paths of both sides, back to back, `repeat` times."""
    now = time.time()
    text = render_metrics(state, clock=lambda: now)
    families = prebuild(text_string_to_metric_families(text.decode("utf-8")))
    floor_registry = CollectorRegistry(auto_describe=False)
    floor_registry.register(Prebuilt(families))
    if samples_of(text) != samples_of(generate_latest(floor_registry)):
        raise RuntimeError("the floor's families differ from the monitor's")
    report.parameters.update(
        families=len(families),
        samples=sum(len(f.samples) for f in families),
        text_bytes=len(text),
    )
    # As the daemon runs: after each probe round it renders the new results'
    # static text into the cache (prerender), so a scrape joins text and computes
    # ages. "cold" is a scrape with every result new and nothing warmed.
    cache = ScrapeCache()
    prerender(state, cache)
    encoders: dict[str, tuple[Encoder, Encoder]] = {
        "text": (
            lambda: render_metrics(state, clock=lambda: now, cache=cache),
            lambda: generate_latest(floor_registry),
        ),
        "OpenMetrics": (
            lambda: render_metrics(
                state, openmetrics=True, clock=lambda: now, cache=cache
            ),
            lambda: generate_openmetrics(floor_registry),  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        ),
        "text, cold": (
            lambda: render_metrics(state, clock=lambda: now),
            lambda: generate_latest(floor_registry),
        ),
    }
    app = make_web_app(state, Redactor(secrets), cache)
    monitor_runner, monitor_url = await serve(app)
    floor_runner, floor_url = await serve(floor_app(floor_registry))
    paths: dict[str, tuple[list[float], list[float]]] = {
        name: ([], []) for name in (*encoders, "HTTP GET", "HTTP GET, gzip")
    }
    blocks: dict[str, list[float]] = {"plain": [], "gzip": []}
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            for url in (monitor_url, floor_url):  # prerender both servers up
                await time_get(session, url)
            packed = await get(session, monitor_url, gzip=True)
            plain = await get(session, monitor_url)
            if timeless(zlib.decompress(packed, 31)) != timeless(plain):
                raise RuntimeError("the gzip body differs from the plain one")
            report.parameters.update(http_bytes=len(plain), http_gzip_bytes=len(packed))
            for i in range(options.repeat):
                for side, url in ((0, monitor_url), (1, floor_url)):
                    for name, pair in encoders.items():
                        paths[name][side].append(time_encode(pair[side]))
                    paths["HTTP GET"][side].append(await time_get(session, url))
                    paths["HTTP GET, gzip"][side].append(
                        await time_get(session, url, gzip=True)
                    )
                for kind, seconds in blocks.items():
                    seconds.append(
                        await longest_block(session, monitor_url, gzip=kind == "gzip")
                    )
                progress(
                    f"repeat {i + 1}: text monitor {paths['text'][0][-1] * 1000:.1f}"
                    f" ms, floor {paths['text'][1][-1] * 1000:.1f} ms"
                )
            with spied(options.profile):
                if options.profile is not None:
                    for _ in range(options.repeat):
                        await time_get(session, monitor_url)
    finally:
        await monitor_runner.cleanup()
        await floor_runner.cleanup()
    for name, (mon, flo) in paths.items():
        mon_ms = [m * 1000 for m in mon]
        limit = GZIP_TARGET_MS if "gzip" in name else TIME_TARGET_MS
        figure = report.add(f"monitor {name}", mon_ms, "ms", target=f"< {limit:g} ms")
        figure.met = figure.median < limit
        report.add(f"floor {name}", [f * 1000 for f in flo], "ms")
        ratio = report.add(
            f"ratio {name}", ratios(mon, flo), "x", target=f"<= {RATIO_TARGET}"
        )
        ratio.met = ratio.median <= RATIO_TARGET
    for kind, seconds in blocks.items():
        report.add(
            f"monitor longest loop block, HTTP GET {kind}",
            [s * 1000 for s in seconds],
            "ms",
        )
    report.note(
        "monitor and floor outputs parsed back and checked to hold the same "
        "samples (clock fixed); HTTP GET sends Prometheus' Accept header, so "
        "both answer OpenMetrics; gzip bodies are timed as sent (not inflated) "
        "and the monitor's was checked to inflate to the plain body's samples"
    )


if __name__ == "__main__":
    opts = parse_options(__doc__.splitlines()[0] if __doc__ else "scrape")
    asyncio.run(main(opts)).emit()

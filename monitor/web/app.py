"""HTTP handlers: /metrics, /-/healthy, /-/ready, /probe; /status and the page
are in `status.py`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from monitor.export.exposition import render_chunks
from monitor.export.metrics import ScrapeCache
from monitor.export.metrics import collect as collect_metrics
from monitor.log import Redactor
from monitor.probes.runner import ProbeRunner
from monitor.service.state import MonitorState
from monitor.web.compress import accepts_gzip, write_gzip
from monitor.web.debug_probe import DebugProber
from monitor.web.limits import ConnectionLimiter
from monitor.web.security import WebGuard, add_security_headers, cross_site
from monitor.web.status import STATUS_CACHE, StatusCache, index, status

STATE = web.AppKey("state", MonitorState)
REDACTOR = web.AppKey("redactor", Redactor)
DEBUG = web.AppKey("debug", DebugProber)
SCRAPE_CACHE = web.AppKey("scrape_cache", ScrapeCache)


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus exposition; OpenMetrics when the scraper asks for it.

    Sent a family at a time: at thousands of stores the body is tens of
    megabytes, and holding it whole (as text and again as bytes) would double
    the daemon's memory for the length of every scrape. gzip when the scraper
    accepts it (Prometheus does): about a sixth of the bytes, compressed off
    the event loop.
    """
    _, content_type = choose_encoder(request.headers.get("Accept", ""))
    openmetrics = content_type.startswith("application/openmetrics-text")
    gzip = accepts_gzip(request.headers.get("Accept-Encoding", ""))
    families = collect_metrics(
        request.app[STATE], time.time(), request.app[SCRAPE_CACHE]
    )
    headers = {"Content-Type": content_type, "Vary": "Accept-Encoding"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    chunks = _masked(
        request.app[REDACTOR], render_chunks(families, openmetrics=openmetrics)
    )
    if gzip:  # compressed in a worker thread, a batch at a time (compress.py)
        await write_gzip(response, chunks)
    else:
        for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response


def _masked(redactor: Redactor, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """`chunks` with known secret values masked, before any compression.

    Only known secret values are masked here (a fast substring check): label
    values come from LaunchDarkly keys and names, never from secret fields.
    Chunks end at line ends, so a value never straddles two of them.
    """
    for chunk in chunks:
        if redactor.appears_in(chunk):
            yield redactor.known(chunk.decode("utf-8")).encode("utf-8")
        else:
            yield chunk


async def healthy(request: web.Request) -> web.Response:
    """200 while the daemon's own loops tick; never about the stores."""
    state = request.app[STATE]
    if state.healthy():
        return web.Response(text="ok\n")
    stuck = sorted(name for name, loop in state.loops.items() if not loop.healthy())
    return web.Response(status=503, text=f"loops not ticking: {', '.join(stuck)}\n")


async def ready(request: web.Request) -> web.Response:
    """200 once the first discovery and probe round have completed."""
    if request.app[STATE].ready():
        return web.Response(text="ready\n")
    return web.Response(
        status=503, text="starting: first discovery or probe round not done\n"
    )


async def debug_probe(request: web.Request) -> web.Response:
    """Run one probe now and describe each step (POST; rate-limited, redacted).

    It makes the monitor connect to a store: never for a page of another
    site (a form there can POST here), so a cross-site request is refused.
    """
    if cross_site(request):
        return web.json_response(
            {"error": "cross-site requests may not run a probe"}, status=403
        )
    reply = await request.app[DEBUG].run(request.query.get("integration_id"))
    headers = (
        {"Retry-After": str(max(1, round(reply.retry_after)))}
        if reply.retry_after
        else None
    )
    body = request.app[REDACTOR].value(reply.body)
    return web.json_response(
        body,
        status=reply.status,
        headers=headers,
        dumps=lambda v: json.dumps(v, indent=2),
    )


async def debug_probe_get(request: web.Request) -> web.Response:
    """405: a GET (a link, an image, a prefetch) never runs a probe."""
    return web.json_response(
        {"error": "use POST /probe?integration_id=<integration _id or target name>"},
        status=405,
        headers={"Allow": "POST"},
    )


def make_web_app(
    state: MonitorState,
    redactor: Redactor,
    scrape_cache: ScrapeCache | None = None,
    runner: ProbeRunner | None = None,
    *,
    metrics_routes: bool = True,
    status_routes: bool = True,
    guard: WebGuard | None = None,
    limiter: ConnectionLimiter | None = None,
) -> web.Application:
    """The aiohttp application serving the endpoints asked for.

    `metrics_routes`: /metrics, /-/healthy, /-/ready; `status_routes`: the
    status page, /status and /probe (which needs the runner). The daemon
    serves both on `server.listen`, or the status routes on a listener of
    their own (`server.status_listen`), or none of them
    (`server.status_enabled: false`). `guard` applies the web config (TLS is
    the listener's; basic auth and headers are the app's). `limiter` learns
    from it when a connection has sent a whole request (`limits.py`).
    """
    app = web.Application()
    app[STATE] = state
    app[REDACTOR] = redactor
    if limiter is not None:
        app.middlewares.append(limiter.middleware)
    # Before the guard's: the web config's headers replace these.
    app.on_response_prepare.append(add_security_headers)
    if guard is not None:
        guard.install(app)
    if metrics_routes:
        app[SCRAPE_CACHE] = scrape_cache or ScrapeCache()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/-/healthy", healthy)
        app.router.add_get("/-/ready", ready)
    if status_routes:
        app[DEBUG] = DebugProber(state, runner)
        app[STATUS_CACHE] = StatusCache(state, redactor)
        app.router.add_get("/status", status)
        app.router.add_post("/probe", debug_probe)
        app.router.add_get("/probe", debug_probe_get)
        app.router.add_get("/", index)
    return app

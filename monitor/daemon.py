"""The process: one `Monitor` run in loops behind the HTTP endpoints.

This is the composition root: it wires the service (the monitor, its loops,
reload) to the exporters and the web app, and owns their order. It is an
async context manager, as `aiojobs.Scheduler` is:

    async with Daemon(config, redactor) as daemon:
        ...  # serving and probing until the block ends

Start: clients → HTTP server → loops.
Stop: stop accepting scrapes → cancel and await the loops → close the clients.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog
from aiohttp import web

from monitor.config import Config, WebSettings, split_host_port, web_settings
from monitor.export.metrics import ScrapeCache, prerender
from monitor.launchdarkly.sharding import Shard
from monitor.log import Redactor
from monitor.probes.runner import round_budget
from monitor.service.lag import sample_lag
from monitor.service.loops import PeriodicLoop
from monitor.service.monitor import Monitor
from monitor.service.reload import WATCH_INTERVAL, Reloader
from monitor.web.app import make_web_app
from monitor.web.limits import ConnectionLimiter, LimitedSite
from monitor.web.security import WebGuard
from monitor.web.status import STATUS_CACHE, StatusCache

SHUTDOWN_TIMEOUT = 3.0


def freeze_startup_objects() -> None:
    """Keep the garbage collector from rescanning what startup built.

    Config, clients, thousands of targets and their first results live for the
    whole run; without this, every full collection walks them again (about
    90 ms every other round at 1,000 stores, bench/redis_round.py). Collected
    first, so that no garbage is frozen with them. A process concern: the
    daemon does it once, when it is first ready.
    """
    gc.collect()
    gc.freeze()
    # Each probe allocates a handful of short-lived containers; with the
    # default gen-0 threshold of 700 a round of thousands of probes runs
    # hundreds of collections, and full ones walk every live result.
    gc.set_threshold(50_000, 20, 20)


class Daemon:
    """One running monitor: its loops (probe, discovery, config, lag), HTTP server."""

    def __init__(
        self,
        config: Config,
        redactor: Redactor,
        *,
        config_path: Path | None = None,
        listen: str | None = None,
        shard: Shard | None = None,
        logger: structlog.stdlib.BoundLogger | None = None,
        on_reload: Callable[[Config], None] | None = None,
        web_config_file: Path | None = None,
    ) -> None:
        self._redactor = redactor
        self._listen = listen or config.server.listen
        self._log = logger or structlog.stdlib.get_logger("monitor")
        # TLS and basic auth of every listener (ConfigError when unusable).
        web = web_settings(config, web_config_file)
        self.guard = WebGuard(web)
        self._log_web(web)
        # Where the status routes are served, as started (a change needs a restart).
        server = config.server
        self._status_serving = (server.status_enabled, server.status_listen)
        # Connections of every listener together (limits.py); as started.
        self._limits = (
            server.max_connections,
            server.header_timeout,
            server.idle_timeout,
        )
        self.limiter = ConnectionLimiter(
            server.max_connections, server.header_timeout, self._log
        )
        self.monitor = Monitor(config, self._log, shard=shard)
        self.state = self.monitor.state
        self.reloader = Reloader(
            self.monitor,
            config_path,
            redactor,
            self._log,
            serving_on=None if listen else config.server.listen,
            on_reload=on_reload,
            web_config_file=web_config_file,
            web=web,
            on_web=self._apply_web,
        )
        self._stack = AsyncExitStack()
        self._tasks: set[asyncio.Task[None]] = set()
        self.loops: dict[str, PeriodicLoop] = {}
        self.port: int | None = None
        self.status_port: int | None = None  # with server.status_listen
        self._scrape_cache = ScrapeCache()
        self._status_caches: list[StatusCache] = []  # warmed after each round
        self._frozen = False

    @property
    def config(self) -> Config:
        """The configuration in force (replaced by reloads)."""
        return self.monitor.config

    # -- reload -----------------------------------------------------------------

    def request_reload(self, trigger: str) -> None:
        """Ask for a reload (SIGHUP); the watch loop performs it, one at a time."""
        self.reloader.request(trigger)
        if "config-watch" in self.loops:
            self.loops["config-watch"].wake()

    def reload(self, trigger: str) -> bool:
        """Reload now; every loop then runs at once under the new config."""
        ok = self.reloader.reload(trigger)
        if ok:
            self._wake_all()
        return ok

    async def _watch_step(self) -> float | None:
        # One wake of the loops per reload that asks for it: a SIGHUP storm
        # is one reload that wakes them and at most one more that joins the
        # rest (Reloader: MIN_RELOAD_GAP), which wakes them only if it changed
        # the config.
        if self.reloader.step() and self.reloader.wake_wanted:
            self._wake_all()
        wait = self.reloader.wait()
        return wait if wait > 0 else None

    def _wake_all(self) -> None:
        for loop in self.loops.values():
            loop.wake()

    def _apply_web(self, new: Config, web: WebSettings | None) -> list[str]:
        """A reloaded web config takes effect; return what needs a restart."""
        restart = self.guard.update(web)
        server = new.server
        if (server.status_enabled, server.status_listen) != self._status_serving:
            restart.append("server.status_enabled/status_listen")
        limits = (server.max_connections, server.header_timeout, server.idle_timeout)
        if limits != self._limits:
            restart.append("server.max_connections/header_timeout/idle_timeout")
        self._log_web(web)
        return restart

    def _log_web(self, web: WebSettings | None) -> None:
        if web is None:
            return
        for warning in web.warnings:
            self._log.warning("web_config.ignored", file=str(web.path), detail=warning)

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Start; on failure, close whatever was opened."""
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop, in order; never raises."""
        await self.stop()

    async def start(self) -> None:
        """Open the clients, start serving and start the loops."""
        await self._stack.enter_async_context(self.monitor)
        status_enabled, status_listen = self._status_serving
        self.port = await self._serve(
            self._listen,
            metrics_routes=True,
            status_routes=status_enabled and status_listen is None,
        )
        if status_listen is not None:
            self.status_port = await self._serve(
                status_listen, metrics_routes=False, status_routes=True
            )
        host, _ = split_host_port(self._listen)
        self._log.info(
            "daemon.started",
            listen=f"{host}:{self.port}",
            status=(
                "off"
                if not status_enabled
                else f"{split_host_port(status_listen)[0]}:{self.status_port}"
                if status_listen
                else "on listen"
            ),
            tls=self.guard.tls is not None,
            basic_auth=bool(self.guard.settings and self.guard.settings.users),
            api=self.config.api.enabled,
            static_targets=len(self.config.targets),
            shard=str(self.monitor.shard or "all"),
        )
        self._start_loop(
            PeriodicLoop(
                "probe",
                self._probe_step,
                interval=lambda: self.config.probe.interval,
                # A round is never cancelled: every probe is bounded by its own
                # timeout, and its result is recorded as it completes. The
                # deadline only tells /-/healthy when the loop is stuck: the
                # round's worst case from the live config and targets
                # (round_budget), plus an interval.
                timeout=self._probe_deadline,
                health=self.state.loop("probe"),
                logger=self._log,
                cancel_at_deadline=False,
            )
        )
        # The event loop's own lag, for ld_store_event_loop_lag_seconds.
        self._start_task(sample_lag(self.state.lag), "lag-sampler")
        if self.reloader.enabled:
            self._start_loop(
                PeriodicLoop(
                    "config-watch",
                    self._watch_step,
                    interval=lambda: WATCH_INTERVAL,
                    timeout=lambda: WATCH_INTERVAL,
                    health=self.state.loop("config-watch"),
                    logger=self._log,
                )
            )
        if self.monitor.discovery is not None:
            self._start_loop(
                PeriodicLoop(
                    "discovery",
                    self._discovery_step,
                    interval=lambda: self.config.api.interval,
                    timeout=self._discovery_timeout,
                    health=self.state.loop("discovery"),
                    logger=self._log,
                )
            )

    async def stop(self) -> None:
        """Stop serving, cancel the loops, close the clients; never raises."""
        for task in self._tasks:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                result, asyncio.CancelledError
            ):
                self._log.error("daemon.loop_failed", error=repr(result))
        self._tasks.clear()
        await self._stack.aclose()
        self._log.info("daemon.stopped")

    async def _serve(
        self, listen: str, *, metrics_routes: bool, status_routes: bool
    ) -> int:
        """Serve the routes asked for at `listen`, behind the web config; the port."""
        app = make_web_app(
            self.state,
            self._redactor,
            self._scrape_cache,
            self.monitor.runner,
            metrics_routes=metrics_routes,
            status_routes=status_routes,
            guard=self.guard,
            limiter=self.limiter,
        )
        if STATUS_CACHE in app:
            self._status_caches.append(app[STATUS_CACHE])
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            # An idle keep-alive connection, or one whose next request's
            # headers are not complete, is closed after this long.
            keepalive_timeout=self._limits[2],
        )
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        host, port = split_host_port(listen)
        site = LimitedSite(
            runner,
            host or None,
            port,
            limiter=self.limiter,
            ssl_context=self.guard.tls,
        )
        await site.start()
        return _bound_port(runner) or port

    def _start_loop(self, loop: PeriodicLoop) -> None:
        self.loops[loop.name] = loop
        self._start_task(loop.run(), f"loop:{loop.name}")

    def _start_task(self, job: Coroutine[Any, Any, None], name: str) -> None:
        """Run `job` until `stop` cancels it."""
        self._tasks.add(asyncio.create_task(job, name=name))

    # -- steps ------------------------------------------------------------------

    def _probe_deadline(self) -> float:
        probe = self.config.probe
        return round_budget(self.state.targets, probe) + probe.interval + probe.timeout

    def _discovery_timeout(self) -> float:
        api = self.config.api
        # Room for a list call and a few retried detail calls.
        return max(api.interval, 3 * api.timeout + 10.0)

    def _results_changed(self) -> None:
        """After a probe round or a discovery: render the new results' text now,
        off the scrape's critical path; and the status, in the background, if
        someone is reading it."""
        prerender(self.state, self._scrape_cache)
        for cache in self._status_caches:
            cache.warm()

    async def _probe_step(self) -> float | None:
        summary = await self.monitor.probe_round()
        self._results_changed()
        if self.state.ready() and not self._frozen:
            self._frozen = True
            freeze_startup_objects()
        self._log.info(
            "probe.round",
            targets=len(self.state.targets),
            probed=summary.probed,
            failed=summary.failed,
            host_level=summary.host_level,
            hosts_down=summary.hosts_down,
            skipped=summary.skipped,
            reasons=summary.reasons,
            duration=round(summary.duration, 3),
        )
        if summary.overran:  # counted by the runner, against its own interval
            self._log.warning(
                "probe.round_overran",
                duration=round(summary.duration, 3),
                interval=self.monitor.runner.settings.interval,
                probed=summary.probed,
                worst_case=round(summary.budget, 3),
                hint="raise probe.concurrency or probe.per_host_concurrency, "
                "or shard (docs/deployment.md, Sizing)",
            )
        return None

    async def _discovery_step(self) -> float | None:
        started = time.monotonic()
        was_ready = self.state.view.completed
        first = not self.state.discovery_attempted
        outcome = await self.monitor.discover()
        assert outcome is not None  # noqa: S101 -- this loop only runs with the API on
        self._results_changed()
        self.state.discovery_duration = time.monotonic() - started
        duration = round(self.state.discovery_duration, 3)
        api = self.config.api
        if outcome.ok:
            self._log.info(
                "discovery.round",
                ok=True,
                integrations=outcome.integrations,
                fetched=outcome.fetched,
                deleted=outcome.deleted,
                pending=outcome.pending,
                problems=outcome.problems,
                duration=duration,
            )
            if outcome.fetched or outcome.deleted or not was_ready:
                # New or changed stores are probed now, not an interval later.
                self.loops["probe"].wake()
        elif outcome.auth_failed:
            assert outcome.error is not None  # noqa: S101 -- auth_failed implies it
            self._log.error(
                "api.auth_failed",
                cause=str(outcome.error),
                status=outcome.error.status,
                retry_in=api.auth_failure_interval,
                hint="check LD_API_TOKEN or api.token_file",
            )
        else:
            self._log.warning(
                "discovery.round",
                ok=False,
                kind=outcome.error.kind if outcome.error else None,
                error=str(outcome.error),
                duration=duration,
            )
        if first and not outcome.ok:
            # Readiness waits for a probe round after the first discovery
            # attempt, failed or not (MonitorState.ready): run it now.
            self.loops["probe"].wake()
        return outcome.next_delay(api)


def _bound_port(runner: web.AppRunner) -> int | None:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None


async def wait_for_stop_signal() -> None:
    """Return on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def run_daemon(
    config: Config,
    redactor: Redactor,
    *,
    config_path: Path | None = None,
    listen: str | None = None,
    shard: Shard | None = None,
    on_reload: Callable[[Config], None] | None = None,
    web_config_file: Path | None = None,
) -> int:
    """Run until SIGTERM or SIGINT; SIGHUP reloads the configuration."""
    log: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger("monitor")
    daemon = Daemon(
        config,
        redactor,
        config_path=config_path,
        listen=listen,
        shard=shard,
        logger=log,
        on_reload=on_reload,
        web_config_file=web_config_file,
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload, "SIGHUP")
    try:
        async with daemon:
            await wait_for_stop_signal()
            log.info("daemon.stopping")
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
    return 0

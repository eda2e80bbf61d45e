"""The daemon: owns the clients, the loops and the HTTP server, and their order.

`Monitor` is the work (discovery, targets, probes) without a server; the
daemon runs it in loops behind the HTTP endpoints, and `check` runs it once.

Start: clients → HTTP server → loops.
Stop: stop accepting scrapes → cancel and await the loops → close the clients.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web

from monitor.config import Config, load_config, referenced_files, split_host_port
from monitor.discovery import Discovery, RoundOutcome
from monitor.errors import ApiError, ApiErrorKind, ConfigError
from monitor.launchdarkly.client import LaunchDarklyClient
from monitor.launchdarkly.models import Problems, Segment
from monitor.log import Redactor
from monitor.metrics import ScrapeCache
from monitor.metrics import warm as warm_metrics
from monitor.probes import Probe
from monitor.probes.dynamodb import DynamoDBProbe
from monitor.probes.redis import RedisProbe
from monitor.probes.runner import ProbeRunner, RoundSummary
from monitor.reload import WATCH_INTERVAL, FileWatcher
from monitor.report import build_report
from monitor.scheduler import PeriodicLoop
from monitor.sharding import Shard
from monitor.state import MonitorState
from monitor.targets import SegmentKey, Target, canary_segments, resolve_targets
from monitor.web import make_web_app

SHUTDOWN_TIMEOUT = 3.0
# A segment's generation changes only when it is recreated: ask again rarely.
SEGMENT_TTL = 600.0


def _freeze_startup_objects() -> None:
    """Keep the garbage collector from rescanning what startup built.

    Config, clients, thousands of targets and their first results live for the
    whole run; without this, every full collection walks them again (about
    90 ms every other round at 1,000 stores, bench/redis_round.py). Collected
    first, so that no garbage is frozen with them. Done once.
    """
    gc.collect()
    gc.freeze()
    # Each probe allocates a handful of short-lived containers; with the
    # default gen-0 threshold of 700 a round of thousands of probes runs
    # hundreds of collections, and full ones walk every live result.
    gc.set_threshold(50_000, 20, 20)


class Monitor:
    """Discovery, target resolution and probe rounds, with the state they fill."""

    def __init__(
        self,
        config: Config,
        logger: structlog.stdlib.BoundLogger,
        *,
        shard: Shard | None = None,
    ) -> None:
        self.config = config
        self._log = logger
        self._shard = shard
        self.state = MonitorState(
            discovery=None, client=None, stale_after=config.probe.stale_after
        )
        self._warned_insecure: set[str] = set()
        self._probes: dict[str, Probe] = {}
        self._retired: list[Probe] = []  # replaced by a reload; closed at stop
        self.segments: dict[SegmentKey, Segment | None] = {}
        self._segment_fetched: dict[SegmentKey, float] = {}

    def apply(self, new: Config) -> list[str]:
        """Swap in a reloaded config; return the changes that need a restart."""
        old = self.config
        restart = []
        if new.api.enabled != old.api.enabled:
            restart.append("api.enabled")
            new = new.model_copy(update={"api": old.api})
        discovery, client = self.state.discovery, self.state.client
        if discovery is not None and client is not None:
            if new.api != old.api:
                fresh = client.with_settings(new.api)
                self.state.client = fresh
                discovery.set_client(fresh)
            discovery.set_filters(new.filters, self._shard)
        runner = self.state.runner
        if runner is not None:
            if new.probe != old.probe:
                runner.configure(new.probe)
            runner.make_all_due()
        for probe in self._probes.values():
            if isinstance(probe, RedisProbe):
                probe.forget_tls()  # certificate files may be what changed
                probe.health_interval = new.probe.health_interval
        if new.probe != old.probe and "dynamodb" in self._probes:
            # Its clients carry the timeouts and pool size: build new ones.
            self._retired.append(self._probes["dynamodb"])
            self._probes["dynamodb"] = DynamoDBProbe(
                self._log.bind(component="dynamodb"), new.probe
            )
        self.state.stale_after = new.probe.stale_after
        self.config = new
        self.resolve()
        return restart

    async def close_probes(self) -> None:
        """Close every probe's shared clients, retired ones included."""
        for probe in [*self._probes.values(), *self._retired]:
            await probe.close()
        self._retired.clear()

    async def open(self, stack: AsyncExitStack) -> None:
        """Create the clients; `stack` closes them."""
        api = self.config.api
        if api.enabled:
            session = await stack.enter_async_context(
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=16), raise_for_status=False
                )
            )
            client = LaunchDarklyClient(session, api, self._log.bind(component="api"))
            self.state.client = client
            self.state.discovery = Discovery(
                client,
                self.config.filters,
                self._log.bind(component="discovery"),
                shard=self._shard,
            )
        self._probes = {
            "redis": RedisProbe(
                self._log.bind(component="redis"),
                health_interval=self.config.probe.health_interval,
            ),
            "dynamodb": DynamoDBProbe(
                self._log.bind(component="dynamodb"), self.config.probe
            ),
        }
        # Closing through the dict: a reload may have replaced a probe.
        stack.push_async_callback(self.close_probes)
        self.state.runner = ProbeRunner(
            self._probes, self.config.probe, self._log.bind(component="probe")
        )
        self.state.config_reload_time = time.time()
        self.resolve()

    async def discover(self) -> RoundOutcome | None:
        """One discovery round (None with the API off), then re-resolve targets."""
        discovery = self.state.discovery
        if discovery is None:
            return None
        outcome = await discovery.run_once()
        if outcome.ok and self.config.canaries:
            await self._refresh_segments()
        self.resolve()
        return outcome

    async def _refresh_segments(self) -> None:
        """Fetch the generation of each segment a canary needs (cached SEGMENT_TTL)."""
        client = self.state.client
        assert client is not None  # noqa: S101 -- discovery implies a client
        now = time.monotonic()
        targets = resolve_targets(self.state.view.integrations, self.config)
        for key in sorted(canary_segments(targets, self.config.canaries)):
            fetched = self._segment_fetched.get(key)
            if fetched is not None and now - fetched < SEGMENT_TTL:
                continue
            try:
                self.segments[key] = await client.get_segment(*key, Problems())
            except ApiError as err:
                if err.kind != ApiErrorKind.NOT_FOUND:
                    self._log.warning(
                        "canary.segment_failed", segment=key[2], error=str(err)
                    )
                    return  # try again next round; keep what we had
                self.segments[key] = None
            self._segment_fetched[key] = now

    def resolve(self) -> tuple[Target, ...]:
        """Rebuild the target list from the latest discovery and the config."""
        targets = resolve_targets(
            self.state.view.integrations, self.config, self.segments
        )
        self.state.targets = targets
        if self.state.runner is not None:
            self.state.runner.forget_missing(targets)
        for target in targets:
            tls = getattr(target.endpoint, "tls", None)
            if (
                tls is not None
                and tls.insecure_skip_verify
                and target.id not in self._warned_insecure
            ):
                self._warned_insecure.add(target.id)
                self._log.warning(
                    "tls.verification_disabled",
                    integration_id=target.id,
                    address=target.address,
                    hint="insecure_skip_verify: the certificate is not checked",
                )
        return targets

    async def probe_round(self) -> RoundSummary:
        """Probe every due target once."""
        runner = self.state.runner
        assert runner is not None  # noqa: S101 -- open() creates it
        discovered = self.state.discovery is None or self.state.view.completed
        summary = await runner.run_round(self.state.targets)
        if discovered and not self.state.probed_after_discovery:
            self.state.probed_after_discovery = True
            _freeze_startup_objects()
        return summary


class Daemon:
    """One running monitor: discovery and probe loops plus the HTTP server."""

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
    ) -> None:
        self._on_reload = on_reload
        self._redactor = redactor
        self._config_path = config_path
        self._listen_override = listen
        self._listen = listen or config.server.listen
        self._log = logger or structlog.stdlib.get_logger("monitor")
        self.monitor = Monitor(config, self._log, shard=shard)
        self.state = self.monitor.state
        self._shard = shard
        self._stack = AsyncExitStack()
        self._tasks: set[asyncio.Task[None]] = set()
        self.loops: dict[str, PeriodicLoop] = {}
        self.port: int | None = None
        self._scrape_cache = ScrapeCache()
        self._secrets = set(config.secrets())
        redactor.update(self._secrets)
        self._watcher = FileWatcher(
            referenced_files(config_path, config) if config_path else ()
        )
        self._reload_requested: str | None = None

    @property
    def config(self) -> Config:
        """The configuration in force (replaced by reloads)."""
        return self.monitor.config

    # -- reload -----------------------------------------------------------------

    def request_reload(self, trigger: str) -> None:
        """Ask for a reload (SIGHUP); the watch loop performs it, one at a time."""
        self._reload_requested = trigger
        if "config-watch" in self.loops:
            self.loops["config-watch"].wake()

    def reload(self, trigger: str) -> bool:
        """Load the config file again; swap it in if valid, keep the old one if not."""
        if self._config_path is None:
            return False
        try:
            new = load_config(self._config_path)
        except ConfigError as err:
            self.state.config_reload_ok = False
            self.state.config_reloads["failure"] += 1
            self._log.error(
                "config.reload_failed", trigger=trigger, problems=list(err.problems)
            )
            # Watch what changed so an unfixed file is not reloaded every few seconds.
            self._watcher.watch(self._watcher.paths)
            return False
        # Old secrets stay masked too: error texts from before may still circulate.
        self._secrets |= new.secrets()
        self._redactor.update(self._secrets)
        restart = self.monitor.apply(new)
        if self._listen_override is None and new.server.listen != self._listen:
            restart.append("server.listen")
        if self._on_reload is not None:
            self._on_reload(new)
        self._watcher.watch(referenced_files(self._config_path, new))
        self.state.config_reload_ok = True
        self.state.config_reload_time = time.time()
        self.state.config_reloads["success"] += 1
        self._log.info(
            "config.reloaded", trigger=trigger, needs_restart=restart or None
        )
        for loop in self.loops.values():
            loop.wake()
        return True

    async def _watch_step(self) -> float | None:
        trigger, self._reload_requested = self._reload_requested, None
        if trigger is None:
            changed = self._watcher.changed()
            if changed:
                trigger = "file changed: " + ", ".join(str(p) for p in changed)
        if trigger is not None:
            self.reload(trigger)
        return None

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Open the clients, start serving and start the loops."""
        await self.monitor.open(self._stack)
        app = make_web_app(
            self.state,
            self._redactor,
            lambda: build_report(self.state),
            self._scrape_cache,
        )
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        host, port = split_host_port(self._listen)
        site = web.TCPSite(runner, host or None, port)
        await site.start()
        self.port = _bound_port(runner) or port
        self._log.info(
            "daemon.started",
            listen=f"{host}:{self.port}",
            api=self.config.api.enabled,
            static_targets=len(self.config.targets),
            shard=str(self._shard or "all"),
        )
        probe = self.config.probe
        self._start_loop(
            PeriodicLoop(
                "probe",
                self._probe_step,
                interval=lambda: self.config.probe.interval,
                # A round is bounded by the per-probe timeout once started; the
                # queue before it is bounded by the concurrency, so allow a
                # full interval on top before calling the loop stuck.
                timeout=lambda: probe.interval + probe.timeout,
                health=self.state.loop("probe"),
                logger=self._log,
            )
        )
        if self._config_path is not None:
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
        if self.state.discovery is not None:
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

    def _start_loop(self, loop: PeriodicLoop) -> None:
        self.loops[loop.name] = loop
        task = asyncio.create_task(loop.run(), name=f"loop:{loop.name}")
        self._tasks.add(task)

    # -- steps ------------------------------------------------------------------

    def _discovery_timeout(self) -> float:
        api = self.config.api
        # Room for a list call and a few retried detail calls.
        return max(api.interval, 3 * api.timeout + 10.0)

    async def _probe_step(self) -> float | None:
        summary = await self.monitor.probe_round()
        # Render the new results' text now, off the scrape's critical path.
        warm_metrics(self.state, self._scrape_cache)
        self._log.info(
            "probe.round",
            targets=len(self.state.targets),
            probed=summary.probed,
            failed=summary.failed,
            skipped=summary.skipped,
            reasons=summary.reasons,
            duration=round(summary.duration, 3),
        )
        return None

    async def _discovery_step(self) -> float | None:
        started = time.monotonic()
        was_ready = self.state.view.completed
        outcome = await self.monitor.discover()
        assert outcome is not None  # noqa: S101 -- this loop only runs with the API on
        warm_metrics(self.state, self._scrape_cache)
        duration = round(time.monotonic() - started, 3)
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
            if (
                outcome.pending
                and outcome.error is not None
                and outcome.error.retry_after
            ):
                return max(outcome.error.retry_after, 1.0)
            return None
        error = outcome.error
        assert error is not None  # noqa: S101 -- a failed round always carries its error
        if error.kind in {ApiErrorKind.AUTH, ApiErrorKind.FORBIDDEN}:
            self._log.error(
                "api.auth_failed",
                cause=str(error),
                status=error.status,
                retry_in=api.auth_failure_interval,
                hint="check LD_API_TOKEN or api.token_file",
            )
            return api.auth_failure_interval
        self._log.warning(
            "discovery.round",
            ok=False,
            kind=error.kind,
            error=str(error),
            duration=duration,
        )
        if error.retry_after:
            return max(error.retry_after, 1.0)
        return None


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
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload, "SIGHUP")
    try:
        await daemon.start()
        await wait_for_stop_signal()
        log.info("daemon.stopping")
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await daemon.stop()
    return 0

"""One monitor: discovery, target resolution and probe rounds, and the state they fill.

`Monitor` is the work without a server: the `Daemon` runs it in loops behind
the HTTP endpoints, `check` and the benchmarks run it directly. It is an
async context manager: entering creates the clients, leaving closes them.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

import aiohttp
import structlog

from monitor.config import Config
from monitor.launchdarkly.client import LaunchDarklyClient
from monitor.launchdarkly.discovery import Discovery, RoundOutcome
from monitor.launchdarkly.errors import ApiError, ApiErrorKind
from monitor.launchdarkly.models import Problems, Segment
from monitor.launchdarkly.sharding import Shard
from monitor.probes.dynamodb.probe import DynamoDBProbe
from monitor.probes.redis.probe import RedisProbe
from monitor.probes.runner import ProbeRunner, RoundSummary
from monitor.service.process import read_process
from monitor.service.state import MonitorState
from monitor.targets import SegmentKey, Target, canary_segments, resolve_targets

# A segment's generation changes only when it is recreated: ask again rarely.
SEGMENT_TTL = 600.0


def make_probe_runner(
    config: Config, logger: structlog.stdlib.BoundLogger
) -> ProbeRunner:
    """The daemon's probes (Redis, DynamoDB) behind one runner, as `config` says.

    The one place they are put together: the Monitor and `preflight` use it.
    """
    return ProbeRunner(
        {
            "redis": RedisProbe(
                logger.bind(component="redis"),
                health_interval=config.probe.health_interval,
            ),
            "dynamodb": DynamoDBProbe(logger.bind(component="dynamodb"), config.probe),
        },
        config.probe,
        logger.bind(component="probe"),
    )


class Monitor:
    """Discovery, target resolution and probe rounds, with the state they fill."""

    def __init__(
        self,
        config: Config,
        logger: structlog.stdlib.BoundLogger,
        *,
        shard: Shard | None = None,
    ) -> None:
        self._log = logger
        self.shard = shard
        # process: the process_* families of this process, read at scrape time.
        self.state = MonitorState(config=config, shard=shard, process=read_process)
        if shard is not None and not shard.in_range:
            # Started anyway (a crash loop helps no one): it watches nothing,
            # and ld_store_shard_ordinal >= ld_store_shards says so.
            logger.warning(
                "shard.out_of_range",
                shard=str(shard),
                hint="the ordinal is not below the shard count: this replica "
                "watches no store; make replicas and the shard count agree",
            )
        self.client: LaunchDarklyClient | None = None
        self.discovery: Discovery | None = None
        self.runner = make_probe_runner(config, logger)
        self.state.records = self.runner.records
        self.state.hosts = self.runner.hosts
        self.state.load = self.runner.load
        self._stack = AsyncExitStack()
        self._warned_insecure: set[str] = set()
        self.segments: dict[SegmentKey, Segment | None] = {}
        self._segment_fetched: dict[SegmentKey, float] = {}

    @property
    def config(self) -> Config:
        """The configuration in force: the one source every reader uses."""
        return self.state.config

    def apply(self, new: Config) -> list[str]:
        """Swap in a reloaded config; return the settings that need a restart."""
        old = self.config
        restart = []
        if new.api.enabled != old.api.enabled:
            restart.append("api.enabled")
            new = new.model_copy(update={"api": old.api})
        if self.discovery is not None and self.client is not None:
            if new.api != old.api:
                self.client = self.client.with_settings(new.api)
                self.discovery.set_client(self.client)
            self.discovery.set_filters(new.filters)
        self.runner.reconfigure(new.probe)
        self.runner.make_all_due()  # credentials or certificates may be what changed
        self.state.config = new
        self.resolve()
        return restart

    async def __aenter__(self) -> Self:
        """Create the clients (the probes' shared ones are closed on exit too)."""
        self._stack.push_async_callback(self.runner.close)
        api = self.config.api
        if api.enabled:
            session = await self._stack.enter_async_context(
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=16), raise_for_status=False
                )
            )
            self.client = LaunchDarklyClient(
                session, api, self._log.bind(component="api")
            )
            self.discovery = Discovery(
                self.client,
                self.config.filters,
                self._log.bind(component="discovery"),
                shard=self.shard,
            )
            self.state.api = self.client.counters
        self.state.config_reload_time = time.time()
        self.resolve()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close every client, in reverse order of creation."""
        await self._stack.aclose()

    async def discover(self) -> RoundOutcome | None:
        """One discovery round (None with the API off), then re-resolve targets."""
        discovery = self.discovery
        if discovery is None:
            return None
        outcome = await discovery.run_once()
        self.state.view = discovery.view
        self.state.discovery_attempted = True
        if outcome.ok and self.config.canaries:
            await self._refresh_segments()
        self.resolve()
        return outcome

    async def _refresh_segments(self) -> None:
        """Fetch the generation of each segment a canary needs (cached SEGMENT_TTL)."""
        client = self.client
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
        shard = self.shard
        if shard is not None:
            # Discovery kept this shard's integrations; static targets are
            # split by the same hash of their name, so each has one owner.
            targets = tuple(t for t in targets if shard.owns(t.id))
        self.state.targets = targets
        self.runner.forget_missing(targets)
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
        # Ready after this round if discovery has been tried, failed or not.
        discovered = self.discovery is None or self.state.discovery_attempted
        summary = await self.runner.run_round(self.state.targets)
        if discovered:
            self.state.probed_after_discovery = True
        return summary

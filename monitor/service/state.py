"""The monitor's state: a read model of plain data, owned by the `Monitor`.

Everything here is read by `/metrics`, `/status`, the status page, `check`
and `/probe`; nothing here is a live service. Views are immutable and
replaced whole; per-target records are stored by target id as probes
complete. All reads and writes happen on the event loop thread, so a scrape
always sees a consistent set of records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from monitor.config import Config
from monitor.launchdarkly.counters import ApiCounters
from monitor.launchdarkly.discovery import DiscoveryView
from monitor.launchdarkly.sharding import Shard
from monitor.probes.runner import HostGate, RunnerLoad, TargetRecord
from monitor.service.lag import LagWindow
from monitor.service.loops import LoopHealth
from monitor.targets import Target


@dataclass
class MonitorState:
    """Everything the exporters read."""

    config: Config  # the configuration in force; a reload replaces it
    shard: Shard | None = None  # --shard I/N; None: one process watches all
    view: DiscoveryView = field(default_factory=DiscoveryView)
    api: ApiCounters | None = None  # None with the API off
    records: Mapping[str, TargetRecord] = field(default_factory=dict)
    hosts: Mapping[str, HostGate] = field(default_factory=dict)  # by host_key
    load: RunnerLoad = field(default_factory=RunnerLoad)  # the probe runner's, live
    discovery_duration: float | None = None  # seconds the last discovery round took
    lag: LagWindow = field(default_factory=LagWindow)  # the event loop's (sample_lag)
    targets: tuple[Target, ...] = ()
    # The first discovery round has ended, whether or not it succeeded.
    discovery_attempted: bool = False
    # A probe round started after that (or with the API off) has completed.
    probed_after_discovery: bool = False
    loops: dict[str, LoopHealth] = field(default_factory=dict)
    config_reload_ok: bool = True
    config_reload_time: float | None = None
    config_reloads: Counter[str] = field(default_factory=Counter)
    # This process's figures (process_* sample name -> value) read at scrape
    # time; None: not exported (Monitor sets it; tests pin it).
    process: Callable[[], Mapping[str, float]] | None = None

    @property
    def stale_after(self) -> float:
        """The stale threshold in force (`probe.stale_after`)."""
        return self.config.probe.stale_after

    def stale_after_of(self, target: Target) -> float:
        """The stale threshold of one target (its own, else `probe.stale_after`)."""
        return self.stale_after if target.stale_after is None else target.stale_after

    def loop(self, name: str) -> LoopHealth:
        """The heartbeat record of loop `name`, created on first use."""
        return self.loops.setdefault(name, LoopHealth(name))

    def healthy(self) -> bool:
        """True while every loop keeps ticking (never about the stores)."""
        return all(loop.healthy() for loop in self.loops.values())

    def ready(self) -> bool:
        """True once a probe round has completed that started after the first
        discovery round ended, whether or not discovery succeeded (with the API
        off: once a probe round has completed).

        Readiness says the monitor knows its stores and has probed them; it is
        not gated on LaunchDarkly (`ld_store_api_up` and LDStoreMonitorApiDown
        tell that): with the API down at start, a pod becomes ready after its
        first discovery attempt fails and the next probe round completes, with
        whatever targets it knows (static ones), so a rollout during a
        LaunchDarkly outage does not stall.
        """
        return self.probed_after_discovery

"""The monitor's state: a read model of plain data, owned by the `Monitor`.

Everything here is read by `/metrics`, `/status`, the status page, `check`
and `/probe`; nothing here is a live service. Views are immutable and
replaced whole; per-target records are stored by target id as probes
complete. All reads and writes happen on the event loop thread, so a scrape
always sees a consistent set of records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.config import Config
from monitor.launchdarkly.counters import ApiCounters
from monitor.launchdarkly.discovery import DiscoveryView
from monitor.probes.runner import HostGate, RunnerLoad, TargetRecord
from monitor.service.lag import LagWindow
from monitor.service.loops import LoopHealth
from monitor.targets import Target


@dataclass
class MonitorState:
    """Everything the exporters read."""

    config: Config  # the configuration in force; a reload replaces it
    view: DiscoveryView = field(default_factory=DiscoveryView)
    api: ApiCounters | None = None  # None with the API off
    records: Mapping[str, TargetRecord] = field(default_factory=dict)
    hosts: Mapping[str, HostGate] = field(default_factory=dict)  # by host_key
    load: RunnerLoad = field(default_factory=RunnerLoad)  # the probe runner's, live
    discovery_duration: float | None = None  # seconds the last discovery round took
    lag: LagWindow = field(default_factory=LagWindow)  # the event loop's (sample_lag)
    targets: tuple[Target, ...] = ()
    probed_after_discovery: bool = False  # a probe round ran on a completed discovery
    loops: dict[str, LoopHealth] = field(default_factory=dict)
    config_reload_ok: bool = True
    config_reload_time: float | None = None
    config_reloads: Counter[str] = field(default_factory=Counter)

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
        """True once the first discovery and a probe round after it have completed."""
        return self.probed_after_discovery

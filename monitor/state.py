"""The monitor's state: the latest discovery view and probe results.

Everything here is read by `/metrics`, `/status`, the status page and `check`.
Views are immutable and replaced whole; per-target results are immutable
records stored by target id. All reads and writes happen on the event loop
thread, so a scrape always sees a consistent set of records.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitor.discovery import Discovery, DiscoveryView
from monitor.launchdarkly.client import LaunchDarklyClient

if TYPE_CHECKING:
    from monitor.probes.runner import ProbeRunner
    from monitor.targets import Target


@dataclass(frozen=True, slots=True)
class Labels:
    """The labels every per-integration series carries."""

    project: str
    environment: str
    integration: str
    integration_id: str

    def values(self) -> tuple[str, str, str, str]:
        """Label values in LABEL_NAMES order."""
        return (self.project, self.environment, self.integration, self.integration_id)


LABEL_NAMES = ("project", "environment", "integration", "integration_id")


@dataclass
class LoopHealth:
    """A periodic loop's heartbeat: it is healthy while it keeps its promise to wake."""

    name: str
    started: bool = False
    expected_by: float = 0.0  # monotonic time by which the loop promised to tick again

    def promise(
        self, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Record that the loop will tick again within `seconds`."""
        self.started = True
        self.expected_by = clock() + seconds

    def healthy(self, clock: Callable[[], float] = time.monotonic) -> bool:
        """False once the loop is overdue."""
        return not self.started or clock() <= self.expected_by


@dataclass
class MonitorState:
    """Everything the exporters read, owned by the daemon."""

    discovery: Discovery | None
    client: LaunchDarklyClient | None
    runner: ProbeRunner | None = None
    targets: tuple[Target, ...] = ()
    stale_after: float = 120.0
    probed_after_discovery: bool = False  # a probe round ran on a completed discovery
    started_at: float = field(default_factory=time.time)
    loops: dict[str, LoopHealth] = field(default_factory=dict)
    config_reload_ok: bool = True
    config_reload_time: float | None = None
    config_reloads: Counter[str] = field(default_factory=Counter)

    @property
    def view(self) -> DiscoveryView:
        """The latest discovery view (empty when the API is disabled)."""
        return self.discovery.view if self.discovery is not None else DiscoveryView()

    def loop(self, name: str) -> LoopHealth:
        """The heartbeat record of loop `name`, created on first use."""
        return self.loops.setdefault(name, LoopHealth(name))

    def healthy(self) -> bool:
        """True while every loop keeps ticking (never about the stores)."""
        return all(loop.healthy() for loop in self.loops.values())

    def ready(self) -> bool:
        """True once the first discovery and a probe round after it have completed."""
        return self.probed_after_discovery

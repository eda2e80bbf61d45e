"""A `MonitorState` built from the parts a test has (a runner, a discovery), no daemon."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.config import Config, ProbeConfig
from monitor.launchdarkly.discovery import Discovery
from monitor.probes.runner import ProbeRunner
from monitor.service.state import MonitorState
from monitor.targets import Target


def state_of(
    runner: ProbeRunner | None = None,
    targets: Iterable[Target] = (),
    *,
    discovery: Discovery | None = None,
    stale_after: float | None = None,
) -> MonitorState:
    """The state a monitor with these parts would export (probe settings: the runner's)."""
    probe = runner.settings if runner is not None else ProbeConfig()
    if stale_after is not None:
        probe = probe.model_copy(update={"stale_after": stale_after})
    state = MonitorState(
        config=Config().model_copy(update={"probe": probe}), targets=tuple(targets)
    )
    if runner is not None:
        state.records = runner.records
    if discovery is not None:
        refresh_view(state, discovery)
    return state


def refresh_view(state: MonitorState, discovery: Discovery) -> None:
    """Take the discovery's latest view and counters, as `Monitor.discover` does."""
    state.view = discovery.view
    state.api = discovery.counters

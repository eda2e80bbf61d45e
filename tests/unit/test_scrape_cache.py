"""The scrape cache: kept text equals fresh text, and follows new results."""

from __future__ import annotations

import dataclasses

import structlog

from monitor.config import ProbeConfig
from monitor.export.metrics import ScrapeCache, prerender, render_metrics
from monitor.probes.result import ProbeResult, RedisHealth
from monitor.probes.runner import ProbeRunner, TargetRecord
from monitor.service.state import MonitorState
from monitor.targets import Labels, RedisEndpoint, Target
from tests.support.state import state_of

NOW = 1_800_000_000.0


def state_with(results: dict[str, ProbeResult]) -> MonitorState:
    """A state whose runner holds these results, one static target each."""
    runner = ProbeRunner({}, ProbeConfig(), structlog.get_logger("test"))
    targets = []
    for name, result in results.items():
        targets.append(
            Target(
                name,
                "static",
                Labels("p", "e", "redis", name),
                name,
                "pfx",
                RedisEndpoint("h", 1),
            )
        )
        runner.records[name] = TargetRecord(result=result, last_success=NOW)
    return state_of(runner, targets)


def result(synced_ago: float, up: bool = True) -> ProbeResult:
    """A probe result with health, phases and a sync time."""
    return ProbeResult(
        NOW,
        0.002,
        up,
        True,
        True,
        int((NOW - synced_ago) * 1000),
        phases=(("connect", 0.001), ("read", 0.001)),
        redis=RedisHealth("7.0.15", "noeviction", 0, 1_000_000, False),
        membership_present=True,
    )


def test_cached_render_equals_fresh_render() -> None:
    """With a prerender cache the exposition is byte for byte what a fresh render gives."""
    state = state_with({"a": result(5), "b": result(500)})
    cache = ScrapeCache()
    prerender(state, cache)
    fresh = render_metrics(state, clock=lambda: NOW + 10)
    assert render_metrics(state, clock=lambda: NOW + 10, cache=cache) == fresh
    assert render_metrics(
        state, openmetrics=True, clock=lambda: NOW + 10, cache=cache
    ) == render_metrics(state, openmetrics=True, clock=lambda: NOW + 10)


def test_ages_move_with_the_clock_even_when_cached() -> None:
    """Scrape-time series are never served from the cache."""
    state = state_with({"a": result(5)})
    cache = ScrapeCache()
    first = render_metrics(state, clock=lambda: NOW, cache=cache).decode()
    later = render_metrics(state, clock=lambda: NOW + 200, cache=cache).decode()
    assert (
        'ld_store_sync_age_seconds{project="p",environment="e",integration="redis",integration_id="a"} 5.0'
        in first
    )
    assert (
        'ld_store_sync_age_seconds{project="p",environment="e",integration="redis",integration_id="a"} 205.0'
        in later
    )
    assert (
        'ld_store_stale{project="p",environment="e",integration="redis",integration_id="a"} 1.0'
        in later
    )


def test_a_new_result_replaces_the_kept_text() -> None:
    """When the runner records a new result, the next scrape shows it, not the old text."""
    state = state_with({"a": result(5, up=True)})
    cache = ScrapeCache()
    render_metrics(state, clock=lambda: NOW, cache=cache)
    records = state.records
    assert isinstance(records, dict)  # the runner's own dict, shared with the state
    records["a"] = dataclasses.replace(records["a"], result=result(5, up=False))
    text = render_metrics(state, clock=lambda: NOW, cache=cache).decode()
    assert (
        'ld_store_probe_up{project="p",environment="e",integration="redis",integration_id="a"} 0.0'
        in text
    )


def test_removed_targets_leave_the_cache() -> None:
    """A target that is gone is dropped from the cache and from the exposition."""
    state = state_with({"a": result(5), "b": result(5)})
    cache = ScrapeCache()
    render_metrics(state, clock=lambda: NOW, cache=cache)
    state.targets = state.targets[:1]
    text = render_metrics(state, clock=lambda: NOW, cache=cache).decode()
    assert set(cache.probe) == {"a"}
    assert 'integration_id="b"' not in text

"""One report of every target, shared by /status, the status page and `check`.

A row joins what LaunchDarkly says (API) with what the probe saw (store),
plus a verdict a person can sort by. Rows are plain JSON-ready dicts; the
callers redact them before they leave the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from monitor import __version__
from monitor.launchdarkly.discovery import DiscoveredIntegration
from monitor.probes.result import ProbeResult
from monitor.probes.runner import TargetRecord
from monitor.service.state import MonitorState
from monitor.targets import Target

# Worst first: the order the status page and `check` sort by.
SEVERITY = {
    "unavailable": 0,
    "failing": 1,
    "stale": 2,
    "disagreement": 3,
    "degraded": 4,
    "pending": 5,
    "healthy": 6,
    "off": 7,
}


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


def api_verdict(item: DiscoveredIntegration) -> str:
    """LaunchDarkly's view in one word."""
    status = item.integration.status
    if not item.integration.on:
        return "off"
    if status.available is False:
        return "unavailable"
    if status.potentially_stale:
        return "stale"
    if status.errors_total:
        return "degraded"
    if status.available is None and status.potentially_stale is None:
        return "pending"
    return "healthy"


def _api_part(item: DiscoveredIntegration, now: float) -> dict[str, Any]:
    status = item.integration.status
    last_sync = _seconds(status.last_sync_ms)
    return {
        "available": status.available,
        "potentially_stale": status.potentially_stale,
        "last_sync": last_sync,
        "last_sync_age_seconds": None
        if last_sync is None
        else round(max(0.0, now - last_sync), 3),
        "last_error": _seconds(status.last_error_ms),
        "recent_errors": status.errors_total,
        "errors": [
            {
                "status_code": e.status_code,
                "message": e.message,
                "timestamp": _seconds(e.timestamp_ms),
            }
            for e in status.errors[:5]
        ],
        "verdict": api_verdict(item),
    }


def sync_disagreement(
    item: DiscoveredIntegration | None,
    result: ProbeResult,
    now: float,
    stale_after: float,
) -> bool | None:
    """Do LaunchDarkly and the store contradict each other? None when unknown.

    1 when LaunchDarkly reports a recent sync (lastSync within half the stale
    threshold, not unavailable) but the store's synchronizedOn is stale or
    missing (wrong prefix, a different store than LaunchDarkly writes, a
    one-sided network fault), or when LaunchDarkly reports the store
    unavailable while the store is fresh (only someone else writes it, or
    LaunchDarkly cannot reach what the cluster reaches). Half the threshold
    keeps the two sides' different refresh times from flapping the signal.
    """
    if item is None or not result.read_ok:
        return None
    status = item.integration.status
    available, stale = result.sdk_status(now, stale_after)
    store_fresh = available and not stale
    if status.available is False:
        return store_fresh
    if status.last_sync_ms is None:
        return None
    api_recent = now - status.last_sync_ms / 1000.0 <= stale_after / 2
    return api_recent and not store_fresh


def probe_part(
    target: Target, record: TargetRecord | None, now: float, stale_after: float
) -> dict[str, Any] | None:
    """The probe's view of one target, or None before its first probe."""
    if record is None or record.result is None:
        return None
    result = record.result
    available, stale = result.sdk_status(now, stale_after)
    sync = (
        None
        if result.synchronized_on_ms is None
        else result.synchronized_on_ms / 1000.0
    )
    notes = _notes(result, now)
    if not available:
        verdict = "unavailable"
    elif stale:
        verdict = "stale"
    elif result.reason is not None or any(n["severity"] == "failing" for n in notes):
        verdict = "failing"
    elif notes:
        verdict = "degraded"
    else:
        verdict = "healthy"
    return {
        "up": result.up,
        "available": available,
        "stale": stale,
        "schema_ok": result.schema_ok,
        "reason": None if result.reason is None else str(result.reason),
        "error": result.error,
        "synchronized_on": sync,
        "sync_age_seconds": None if sync is None else round(now - sync, 3),
        "duration_seconds": round(result.duration, 6),
        "phases": {phase: round(seconds, 6) for phase, seconds in result.phases},
        "tls_not_after": result.tls_not_after,
        "finished_at": result.finished_at,
        "consecutive_failures": record.consecutive_failures,
        "backoff_seconds": record.backoff,
        "failures": {str(k): v for k, v in sorted(record.failures.items())},
        "membership_present": result.membership_present,
        "canaries": [
            {"name": c.name, "ok": c.ok, "detail": c.detail} for c in result.canaries
        ],
        "redis": None
        if result.redis is None
        else {**asdict(result.redis), "eviction_unsafe": result.redis.eviction_unsafe},
        "table": None if result.table is None else asdict(result.table),
        "notes": notes,
        "verdict": verdict,
    }


# A certificate expiring within this many days is worth a note on the page.
TLS_NOTE_DAYS = 14


def _notes(result: ProbeResult, now: float) -> list[dict[str, str]]:
    """Findings beyond available/stale: failing (wrong now) or degraded (a risk)."""
    notes = []
    for canary in result.canaries:
        if canary.ok is False:
            notes.append(
                {
                    "severity": "failing",
                    "text": f"canary {canary.name}: {canary.detail}",
                }
            )
    if result.membership_present is False:
        notes.append(
            {
                "severity": "failing",
                "text": "no membership data: every context reads as not included",
            }
        )
    if result.redis is not None and result.redis.eviction_unsafe:
        policy = result.redis.maxmemory_policy
        notes.append(
            {
                "severity": "degraded",
                "text": f"{policy} with maxmemory can evict big segment keys",
            }
        )
    if (
        result.tls_not_after is not None
        and result.tls_not_after - now < TLS_NOTE_DAYS * 86400
    ):
        days = (result.tls_not_after - now) / 86400
        notes.append(
            {
                "severity": "degraded",
                "text": f"TLS certificate expires in {days:.1f} days",
            }
        )
    return notes


def overall_verdict(
    target: Target,
    api: dict[str, Any] | None,
    probe: dict[str, Any] | None,
    disagreement: bool | None,
) -> str:
    """One word for the row: the store first, then both sides compared, then the API."""
    if not target.on:
        return "off"
    if probe is None:
        # Not probed (yet): LaunchDarkly's word is all there is.
        if api is not None and api["verdict"] in {"unavailable", "stale", "degraded"}:
            return str(api["verdict"])
        return "pending"
    if probe["verdict"] in {"unavailable", "stale", "failing"}:
        return str(probe["verdict"])
    if disagreement:
        return "disagreement"
    if probe["verdict"] == "degraded":
        return "degraded"
    if api is not None and api["verdict"] in {"unavailable", "stale", "degraded"}:
        return "degraded"
    return "healthy"


def target_row(
    target: Target,
    item: DiscoveredIntegration | None,
    record: TargetRecord | None,
    now: float,
    stale_after: float,
) -> dict[str, Any]:
    """The report row of one target (and its integration, when it has one)."""
    api = _api_part(item, now) if item is not None else None
    probe = probe_part(target, record, now, stale_after)
    disagreement = None
    if record is not None and record.result is not None:
        disagreement = sync_disagreement(item, record.result, now, stale_after)
    return {
        "id": target.id,
        "source": target.source,
        "project": target.labels.project,
        "environment": target.labels.environment,
        "integration": target.kind,
        "name": target.name,
        "on": target.on,
        "address": target.address,
        "prefix": target.prefix or None,
        "problem": target.problem,
        "api": api,
        "probe": probe,
        "disagreement": disagreement,
        "verdict": overall_verdict(target, api, probe, disagreement),
    }


def build_report(
    state: MonitorState, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """The whole report: daemon health, API health and one row per target."""
    now = clock()
    view = state.view
    items = {item.integration.id: item for item in view.integrations}
    records = state.records
    rows = [
        target_row(
            target,
            items.get(target.id) if target.source == "api" else None,
            records.get(target.id),
            now,
            state.stale_after,
        )
        for target in state.targets
    ]
    rows.sort(
        key=lambda r: (
            SEVERITY.get(r["verdict"], 99),
            r["project"],
            r["environment"],
            r["name"],
        )
    )
    return {
        "version": __version__,
        "generated_at": now,
        "ready": state.ready(),
        "healthy": state.healthy(),
        "stale_after_seconds": state.stale_after,
        "api": None
        if state.api is None
        else {
            "up": view.api_up,
            "last_success": view.last_success,
            "last_error": view.last_error,
            "pending_details": view.pending_details,
            "rate_limit_remaining": dict(state.api.rate_limit_remaining),
        },
        "targets": rows,
    }

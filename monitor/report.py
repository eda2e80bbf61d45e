"""One report of every target, shared by /status, the status page and `check`.

A row joins what LaunchDarkly says (API) with what the probe saw (store),
plus a verdict a person can sort by. Rows are plain JSON-ready dicts; the
callers redact them before they leave the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from monitor import __version__
from monitor.discovery import DiscoveredIntegration
from monitor.launchdarkly.models import RedisSettings
from monitor.state import MonitorState

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


def _address(item: DiscoveredIntegration) -> str | None:
    settings = item.integration.settings
    if settings is None:
        return None
    if isinstance(settings, RedisSettings):
        return f"{settings.host}:{settings.port}"
    region = settings.region
    return f"{settings.table_name} ({region})" if region else settings.table_name


def integration_row(item: DiscoveredIntegration, now: float) -> dict[str, Any]:
    """The report row of one discovered integration."""
    integration = item.integration
    api = _api_part(item, now)
    return {
        "id": integration.id,
        "source": "api",
        "project": integration.project,
        "environment": integration.environment,
        "integration": integration.kind,
        "name": integration.name,
        "on": integration.on,
        "address": _address(item),
        "prefix": item.client_side_id,
        "api": api,
        "probe": None,
        "verdict": api["verdict"],
    }


def build_report(
    state: MonitorState, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """The whole report: daemon health, API health and one row per target."""
    now = clock()
    view = state.view
    rows = [integration_row(item, now) for item in view.integrations]
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
        "api": None
        if state.discovery is None
        else {
            "up": view.api_up,
            "last_success": view.last_success,
            "last_error": view.last_error,
            "pending_details": view.pending_details,
            "rate_limit_remaining": dict(state.client.rate_limit_remaining)
            if state.client
            else {},
        },
        "targets": rows,
    }

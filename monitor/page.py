"""The status page at `/`: one self-contained HTML document, no external assets."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from importlib import resources
from typing import Any

REFRESH_SECONDS = 15


def format_age(seconds: float | None) -> str:
    """A duration for people: 42s, 7m, 3.5h, 2.0d; a dash when unknown."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _cell(value: Any) -> str:
    return escape("—" if value is None or value == "" else str(value))


def _sync_age(api: dict[str, Any], probe: dict[str, Any]) -> float | None:
    """The store's own sync age when probed, else LaunchDarkly's."""
    if probe.get("sync_age_seconds") is not None:
        return float(probe["sync_age_seconds"])
    age = api.get("last_sync_age_seconds")
    return None if age is None else float(age)


def _row(row: dict[str, Any]) -> str:
    api = row.get("api") or {}
    probe = row.get("probe") or {}
    errors = api.get("errors") or []
    last_error = probe.get("error") or (errors[0]["message"] if errors else None)
    verdict = row["verdict"]
    return (
        f'<tr class="v-{escape(verdict)}" data-project="{escape(row["project"])}" '
        f'data-environment="{escape(row["environment"])}">'
        f'<td><span class="badge">{escape(verdict)}</span></td>'
        f"<td>{_cell(row['project'])}</td><td>{_cell(row['environment'])}</td>"
        f"<td>{_cell(row['integration'])}</td><td>{_cell(row['name'])}</td>"
        f"<td><code>{_cell(row.get('address'))}</code></td>"
        f"<td>{_cell(api.get('verdict'))}</td>"
        f"<td>{_cell(probe.get('verdict'))}</td>"
        f"<td>{format_age(_sync_age(api, probe))}"
        "</td>"
        f'<td class="err">{_cell(last_error)}</td></tr>'
    )


# Inlined at render time: the page must work air-gapped, with no external assets.
_STYLE = (resources.files("monitor") / "web_assets" / "status.css").read_text("utf-8")


def render_page(report: dict[str, Any], *, now: float, version: str) -> str:
    """Render the report as a self-refreshing HTML page."""
    rows = report.get("targets") or []
    api = report.get("api")
    api_line = "API disabled (static targets only)"
    if api is not None:
        api_line = "LaunchDarkly API: " + (
            "up" if api.get("up") else f"DOWN ({_cell(api.get('last_error'))})"
        )
    generated = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = (
        "".join(_row(r) for r in rows)
        or '<tr><td colspan="10">No integrations or targets yet.</td></tr>'
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>ld-store-monitor</title><style>{_STYLE}</style></head><body>"
        "<h1>LaunchDarkly big segment stores</h1>"
        f'<div class="meta">{escape(api_line)} · {len(rows)} targets · '
        f"generated {generated} · v{escape(version)} · "
        '<a href="/metrics">/metrics</a> · <a href="/status">/status</a></div>'
        "<table><thead><tr><th>Verdict</th><th>Project</th><th>Environment</th>"
        "<th>Kind</th><th>Name</th><th>Store</th><th>LaunchDarkly</th><th>Probe</th>"
        "<th>Sync age</th><th>Last error</th></tr></thead>"
        f"<tbody>{body}</tbody></table></body></html>"
    )

"""The status page at `/`: one self-contained HTML document, no external assets.

Everything is rendered here, on the server, so the page reads the same with
JavaScript off: every row shown, a `<noscript>` meta refresh. The inline
script (`assets/status.js`) only adds what needs a browser: the filter
bar (its state kept in the URL hash, so a link can be shared), and a refresh
in place every 15 s (`?refresh=N` to change, 0 to stop) that fetches `/`
again and swaps the summary and the rows, keeping scroll position, focus and
filters, and says so loudly when the monitor stops answering. CSS and script
are inlined and no URL points off the host, so the page works air-gapped.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from html import escape
from importlib import resources
from typing import Any

from monitor.export.report import SEVERITY

REFRESH_SECONDS = 15
# Verdicts "only problems" keeps, and the summary's headline counts.
PROBLEMS = ("unavailable", "failing", "stale", "disagreement", "degraded")
URGENT = frozenset({"unavailable", "failing"})
SHOWN_ERRORS = 3  # per row; the title attribute and /status hold the rest
# What a verdict means, shown as the badge's tooltip.
MEANING = {
    "unavailable": "SDKs cannot read this store: connection, credentials or schema",
    "failing": "the store answers, but the probe found a problem",
    "stale": "the store's last sync is older than the stale threshold",
    "disagreement": "LaunchDarkly and the store disagree",
    "degraded": "the store is fine, but LaunchDarkly reports trouble writing to it",
    "pending": "not probed yet",
    "healthy": "the store is readable and fresh",
    "off": "the integration is turned off in LaunchDarkly",
}
COLUMNS = (
    ("verdict", "Verdict"),
    ("project", "Project"),
    ("environment", "Environment"),
    ("target", "Integration / store"),
    ("launchdarkly", "LaunchDarkly says"),
    ("probe", "Store probe"),
    ("age", "Sync age"),
    ("error", "Errors and findings"),
)


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


def _asset(name: str) -> str:
    return (resources.files("monitor.web") / "assets" / name).read_text("utf-8")


# Read once at import: the page must work air-gapped, so both are inlined.
_STYLE = _asset("status.css")
# `</` cannot occur inside an inline script without ending it; the file is ours.
_SCRIPT = _asset("status.js").replace("</", "<\\/")


def _text(value: Any) -> str:
    """Escaped text for an element; a dash for nothing."""
    return escape("—" if value is None or value == "" else str(value))


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _badge(verdict: str) -> str:
    meaning = MEANING.get(verdict, verdict)
    return (
        f'<span class="badge v-{escape(verdict)}" title="{escape(meaning)}">'
        f"{escape(verdict)}</span>"
    )


def _word(verdict: str) -> str:
    return f'<span class="word v-{escape(verdict)}">{escape(verdict)}</span>'


def _details(*parts: str | None) -> str:
    kept = [escape(p) for p in parts if p]
    return f'<div class="sub">{" · ".join(kept)}</div>' if kept else ""


def _api_cell(row: dict[str, Any]) -> str:
    api = row.get("api")
    if api is None:
        if row.get("source") == "static":
            return (
                '<span class="word static" title="listed in the config, not '
                "discovered through LaunchDarkly's API\">static</span>"
                + _details("from config")
            )
        return _text(None)
    available = api.get("available")
    age = api.get("last_sync_age_seconds")
    recent = api.get("recent_errors") or 0
    return _word(str(api.get("verdict"))) + _details(
        None if available is None else ("available" if available else "unavailable"),
        "potentially stale" if api.get("potentially_stale") else None,
        "never synced" if age is None else f"synced {format_age(age)} ago",
        f"{recent} recent error{'s' if recent != 1 else ''}" if recent else None,
    )


def _probe_cell(row: dict[str, Any]) -> str:
    probe = row.get("probe")
    if probe is None:
        if not row.get("on", True):
            return '<span class="word v-off">not probed</span>' + _details("off")
        return _word("pending") + _details(
            "cannot probe yet" if row.get("problem") else "first probe not done"
        )
    failures = probe.get("consecutive_failures") or 0
    backoff = probe.get("backoff_seconds") or 0
    if not probe.get("up"):
        state = ["down"]
    elif not probe.get("available"):
        state = ["up", "unreadable"]
    else:
        state = ["up", "stale" if probe.get("stale") else "fresh"]
    return _word(str(probe.get("verdict"))) + _details(
        *state,
        "schema mismatch" if probe.get("schema_ok") is False else None,
        f"reason: {probe['reason']}" if probe.get("reason") else None,
        f"{failures} failures in a row" if failures > 1 else None,
        f"retry in {format_age(backoff)}" if failures and backoff else None,
    )


def _never(why: str) -> str:
    return f'<span class="age late" title="{escape(why)}">never</span>'


def _age_cell(row: dict[str, Any], stale_after: float) -> str:
    """The store's own sync age when probed, else LaunchDarkly's."""
    if not row.get("on", True):
        stale_after = float("inf")  # nobody expects an integration that is off to sync
    probe = row.get("probe") or {}
    api = row.get("api") or {}
    source = "store"
    if probe.get("sync_age_seconds") is not None:
        age: float | None = float(probe["sync_age_seconds"])
    elif probe.get("available") and probe.get("synchronized_on") is None:
        return _never("the store holds no sync time")
    elif api.get("last_sync_age_seconds") is not None:
        age, source = float(api["last_sync_age_seconds"]), "LaunchDarkly"
    elif api and api.get("last_sync") is None and row.get("on", True):
        return _never("LaunchDarkly has never synced it")
    else:
        age = None
    late = " late" if age is not None and age >= stale_after else ""
    tag = '<span class="src">LD</span>' if source == "LaunchDarkly" else ""
    return (
        f'<span class="age{late}" title="{escape(source)}\'s last sync">'
        f"{format_age(age)}</span>{tag}"
    )


# An entry of the errors column: (label, text, tone); tone "bad", "warn" or "".
Entry = tuple[str, str, str]


def _disagreement(row: dict[str, Any]) -> str:
    api = row.get("api") or {}
    probe = row.get("probe") or {}
    if api.get("available") is False:
        return (
            "LaunchDarkly says the store is unavailable, but it is readable and fresh"
        )
    store = probe.get("sync_age_seconds")
    store_says = (
        "holds no sync time" if store is None else f"synced {format_age(store)} ago"
    )
    return (
        f"LaunchDarkly synced {format_age(api.get('last_sync_age_seconds'))} ago, "
        f"but the store {store_says}"
    )


def _errors(row: dict[str, Any], now: float) -> list[Entry]:
    """Every error and finding worth showing: the store's first, LaunchDarkly's last."""
    found: list[Entry] = []
    if row.get("problem"):
        found.append(("not probed", str(row["problem"]), "warn"))
    probe = row.get("probe") or {}
    if probe.get("error"):
        label = f"store, {probe['reason']}" if probe.get("reason") else "store"
        found.append((label, str(probe["error"]), "bad"))
    for note in probe.get("notes") or []:
        severity = str(note.get("severity") or "")
        tone = "bad" if severity == "failing" else "warn"
        found.append((severity or "note", str(note.get("text") or ""), tone))
    if row.get("disagreement"):
        found.append(("disagreement", _disagreement(row), "warn"))
    # LaunchDarkly repeats one failure per attempt: one entry per distinct
    # error, with how often it recurred and when it last did (newest first).
    repeats: dict[tuple[Any, str], list[dict[str, Any]]] = {}
    for error in (row.get("api") or {}).get("errors") or []:
        key = (error.get("status_code"), str(error.get("message") or ""))
        repeats.setdefault(key, []).append(error)
    for (code, message), errors in repeats.items():
        when = errors[0].get("timestamp")
        ago = "" if when is None else f", {format_age(now - float(when))} ago"
        times = f", {len(errors)} times" if len(errors) > 1 else ""
        label = f"LaunchDarkly{'' if code is None else f' {code}'}{ago}{times}"
        found.append((label, message, ""))
    return found


def _error_cell(row: dict[str, Any], now: float) -> str:
    errors = _errors(row, now)
    if not errors:
        return '<span class="none">—</span>'
    full = "\n".join(f"{label}: {text}" for label, text, _ in errors)
    shown = errors[:SHOWN_ERRORS]
    more = len(errors) - len(shown)
    items = "".join(
        f'<p class="msg {tone}"><span class="lbl">{escape(label)}</span> '
        f"{escape(text)}</p>"
        for label, text, tone in shown
    )
    tail = f'<p class="more">+{more} more (hover or see /status)</p>' if more else ""
    return f'<div class="errors" title="{escape(full)}">{items}{tail}</div>'


def _search_text(row: dict[str, Any], now: float) -> str:
    """What the free-text filter matches: names, ids, addresses and errors."""
    parts = [
        row.get(k) or "" for k in ("id", "name", "address", "prefix", "integration")
    ]
    parts += [row.get("project") or "", row.get("environment") or ""]
    parts += [f"{label} {text}" for label, text, _ in _errors(row, now)]
    return " ".join(str(p) for p in parts).lower()


def _row(row: dict[str, Any], now: float, stale_after: float) -> str:
    verdict = str(row.get("verdict"))
    kind = str(row.get("integration") or "")
    prefix = row.get("prefix")
    store = f'<code class="addr">{_text(row.get("address"))}</code>' + (
        f' <span class="prefix">prefix {escape(str(prefix))}</span>' if prefix else ""
    )
    return (
        f'<tr class="r-{escape(verdict)}" data-verdict="{escape(verdict)}" '
        f'data-project="{escape(str(row.get("project") or ""))}" '
        f'data-environment="{escape(str(row.get("environment") or ""))}" '
        f'data-search="{escape(_search_text(row, now))}" '
        f'id="t-{escape(str(row.get("id") or ""))}">'
        f'<td class="c-verdict">{_badge(verdict)}</td>'
        f'<td class="c-project">{_text(row.get("project"))}</td>'
        f'<td class="c-environment">{_text(row.get("environment"))}</td>'
        f'<th scope="row" class="c-target"><span class="name">{_text(row.get("name"))}'
        f'</span> <span class="kind k-{escape(kind)}">{_text(kind)}</span>'
        f'<div class="sub">{store}</div></th>'
        f'<td class="c-launchdarkly">{_api_cell(row)}</td>'
        f'<td class="c-probe">{_probe_cell(row)}</td>'
        f'<td class="c-age">{_age_cell(row, stale_after)}</td>'
        f'<td class="c-error">{_error_cell(row, now)}</td></tr>'
    )


def _headline(counts: Counter[str], total: int) -> tuple[str, str]:
    """(tone, sentence) for the top of the page."""
    problems = sum(counts[v] for v in PROBLEMS)
    if total == 0:
        return "idle", "No integrations or targets yet"
    if problems:
        tone = "bad" if any(counts[v] for v in URGENT) else "warn"
        verb = "needs" if problems == 1 else "need"
        return tone, f"{problems} of {total} targets {verb} attention"
    if counts["pending"]:
        return "idle", f"{counts['pending']} of {total} targets not probed yet"
    enabled = total - counts["off"]
    off = f" ({counts['off']} off)" if counts["off"] else ""
    return "good", f"All {enabled} enabled targets healthy{off}"


def _summary(rows: list[dict[str, Any]]) -> str:
    counts = Counter(str(r.get("verdict")) for r in rows)
    tone, headline = _headline(counts, len(rows))
    order = sorted(counts, key=lambda v: SEVERITY.get(v, 99))
    chips = "".join(
        f'<button type="button" class="chip v-{escape(v)}" data-chip="{escape(v)}" '
        f'aria-pressed="false" title="{escape(MEANING.get(v, v))}">'
        f'<span class="n">{counts[v]}</span> {escape(v)}</button>'
        for v in order
    )
    plain = " · ".join(f"{counts[v]} {v}" for v in order)
    return (
        f'<section id="summary" class="summary tone-{tone}" aria-live="polite" '
        'aria-label="Summary">'
        f'<p class="headline">{escape(headline)}</p>'
        f'<div class="chips" role="group" aria-label="Filter by verdict" '
        f'data-counts="{escape(plain)}">{chips}</div></section>'
    )


def _facts(report: dict[str, Any], now: float, version: str) -> str:
    api = report.get("api")
    if api is None:
        api_fact = '<span class="muted">not used (static targets only)</span>'
    elif api.get("up"):
        last = api.get("last_success")
        ago = "" if last is None else f", last answer {format_age(now - last)} ago"
        pending = api.get("pending_details") or 0
        more = f", {pending} statuses still loading" if pending else ""
        api_fact = f'<span class="ok">up</span>{escape(ago + more)}'
        if api.get("last_error"):
            api_fact += f' <span class="warn-text">({_text(api["last_error"])})</span>'
    else:
        api_fact = f'<span class="bad-text">down</span>: {_text(api.get("last_error"))}'
    if not report.get("ready"):
        daemon = '<span class="warn-text">starting</span> (first round not done)'
    elif not report.get("healthy"):
        daemon = '<span class="bad-text">loops stuck</span> (see /-/healthy)'
    else:
        daemon = '<span class="ok">ready, healthy</span>'
    stale_after = float(report.get("stale_after_seconds") or 0)
    facts = (
        ("LaunchDarkly API", api_fact),
        ("Daemon", daemon),
        ("Stale after", escape(format_age(stale_after))),
        ("Generated", f'<time id="generated">{escape(_utc(now))}</time>'),
        ("Version", escape(version)),
    )
    items = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in facts)
    return f'<dl id="facts" class="facts">{items}</dl>'


def _options(name: str, label: str, values: list[str]) -> str:
    options = "".join(
        f'<option value="{escape(v)}">{escape(v)}</option>' for v in values
    )
    return (
        f'<label>{label} <select name="{name}" id="f-{name}">'
        f'<option value="">all</option>{options}</select></label>'
    )


def _filters(rows: list[dict[str, Any]]) -> str:
    projects = sorted({str(r.get("project") or "") for r in rows} - {""})
    environments = sorted({str(r.get("environment") or "") for r in rows} - {""})
    return (
        '<form id="filters" class="filters" role="search" hidden '
        'aria-label="Filter targets">'
        f"{_options('project', 'Project', projects)}"
        f"{_options('environment', 'Environment', environments)}"
        '<label class="grow">Search <input type="search" name="q" id="f-q" '
        'placeholder="name, address, error… (press /)" autocomplete="off"></label>'
        '<label class="check"><input type="checkbox" name="problems" id="f-problems">'
        " Only problems</label>"
        '<button type="reset" id="f-clear">Clear</button>'
        '<output id="shown" aria-live="polite"></output></form>'
    )


def _title(rows: list[dict[str, Any]]) -> str:
    problems = sum(1 for r in rows if r.get("verdict") in PROBLEMS)
    state = f"{problems} problem{'s' if problems != 1 else ''}" if problems else "OK"
    return f"{state} · Big segment stores · ld-store-monitor"


def _worst(rows: list[dict[str, Any]]) -> str:
    return str(rows[0].get("verdict")) if rows else "pending"


def render_page(report: dict[str, Any], *, now: float, version: str) -> str:
    """Render the report as a self-contained, self-refreshing HTML page."""
    rows: list[dict[str, Any]] = list(report.get("targets") or [])
    stale_after = float(report.get("stale_after_seconds") or 0)
    cols = "".join(f'<col class="w-{key}">' for key, _ in COLUMNS)
    heads = "".join(
        f'<th scope="col" class="c-{key}">{label}</th>' for key, label in COLUMNS
    )
    body = "".join(_row(r, now, stale_after) for r in rows) or (
        f'<tr class="empty"><td colspan="{len(COLUMNS)}">No integrations or static '
        "targets yet: discovery may still be running.</td></tr>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f'<noscript><meta http-equiv="refresh" content="{REFRESH_SECONDS}"></noscript>'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(_title(rows))}</title><style>{_STYLE}</style></head>"
        f'<body data-generated="{now:.3f}" data-refresh="{REFRESH_SECONDS}" '
        f'data-worst="{escape(_worst(rows))}" data-problems="{" ".join(PROBLEMS)}">'
        '<header class="top"><h1>LaunchDarkly big segment stores</h1>'
        '<nav aria-label="Machine-readable"><a href="/status">/status JSON</a>'
        '<a href="/metrics">/metrics</a></nav>'
        f'<p id="live" class="live">Reloads every {REFRESH_SECONDS} s</p></header>'
        '<div id="offline" class="offline" role="alert" hidden></div>'
        f"{_summary(rows)}{_facts(report, now, version)}{_filters(rows)}"
        '<div class="table-wrap"><table id="targets">'
        "<caption>Every integration and static target, worst first</caption>"
        f"<colgroup>{cols}</colgroup><thead><tr>{heads}</tr></thead>"
        f'<tbody id="rows">{body}</tbody></table></div>'
        '<p id="no-match" class="no-match" hidden>No target matches these filters. '
        '<button type="button" id="no-match-clear">Show all</button></p>'
        f"<script>{_SCRIPT}</script></body></html>"
    )

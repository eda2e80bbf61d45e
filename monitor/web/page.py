"""The status page at `/`: one self-contained HTML document, no external assets.

Everything is rendered here, on the server, so the page reads the same with
JavaScript off: a page of rows (`?page=N`, `?per_page=N`; worst first, so
problems come first), pager links, a `<noscript>` meta refresh. Filters given
in the query (`project`, `environment`, `kind`, `verdict`, `problems`, `q`)
are applied here, on the server (`monitor/web/status.py`). The inline script
(`assets/status.js`) only adds what needs a browser: the filter bar (its
state kept in the URL hash, so a link can be shared), and a refresh in place
every 15 s (`?refresh=N` to change, 0 to stop) that fetches the page again
and swaps the summary and the rows, keeping scroll position, focus and
filters, and says so loudly when the monitor stops answering. When every
target fits on one page the filters work in the browser on the rows it has;
when they do not, the script asks the server for the filtered page instead.
CSS and script are inlined and no URL points off the host, so the page works
air-gapped.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from importlib import resources
from urllib.parse import urlencode

from monitor.export.humanize import format_age
from monitor.export.report import ApiErrorView, Report, Row
from monitor.export.verdict import Disagreement, Verdict
from monitor.probes.result import TableInfo

REFRESH_SECONDS = 15
SHOWN_ERRORS = 3  # per row; the title attribute and /status hold the rest
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


def _asset(name: str) -> str:
    return (resources.files("monitor.web") / "assets" / name).read_text("utf-8")


# Read once at import: the page must work air-gapped, so both are inlined.
_STYLE = _asset("status.css")
# `</` cannot occur inside an inline script without ending it; the file is ours.
_SCRIPT = _asset("status.js").replace("</", "<\\/")


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


# The page's Content-Security-Policy: its one inline script and style by
# their hashes (nothing else inline runs), fetches to itself only, no
# framing, no plugins, forms and links to itself.
PAGE_POLICY = (
    "default-src 'none'; "
    f"script-src 'sha256-{_sha256(_SCRIPT)}'; "
    f"style-src 'sha256-{_sha256(_STYLE)}'; "
    "img-src data:; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def _text(value: object) -> str:
    """Escaped text for an element; a dash for nothing."""
    return escape("—" if value is None or value == "" else str(value))


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _badge(verdict: Verdict) -> str:
    return (
        f'<span class="badge v-{escape(verdict)}" title="{escape(verdict.meaning)}">'
        f"{escape(verdict)}</span>"
    )


def _word(verdict: Verdict) -> str:
    return f'<span class="word v-{escape(verdict)}">{escape(verdict)}</span>'


def _details(*parts: str | None) -> str:
    kept = [escape(p) for p in parts if p]
    return f'<div class="sub">{" · ".join(kept)}</div>' if kept else ""


def _api_cell(row: Row) -> str:
    api = row.api
    if api is None:
        if row.source == "static":
            return (
                '<span class="word static" title="listed in the config, not '
                "discovered through LaunchDarkly's API\">static</span>"
                + _details("from config")
            )
        return _text(None)
    available = api.available
    age = api.last_sync_age_seconds
    recent = api.recent_errors
    return _word(api.verdict) + _details(
        None if available is None else ("available" if available else "unavailable"),
        "potentially stale" if api.potentially_stale else None,
        "never synced" if age is None else f"synced {format_age(age)} ago",
        f"{recent} recent error{'s' if recent != 1 else ''}" if recent else None,
    )


def _probe_cell(row: Row) -> str:
    probe = row.probe
    if probe is None:
        if not row.on:
            return '<span class="word v-off">not probed</span>' + _details("off")
        return _word(Verdict.PENDING) + _details(
            "cannot probe yet" if row.problem else "first probe not done"
        )
    failures = probe.consecutive_failures
    backoff = probe.backoff_seconds
    if not probe.up:
        state = ["down"]
    elif not probe.available:
        state = ["up", "unreadable"]
    else:
        state = ["up", "stale" if probe.stale else "fresh"]
    return _word(probe.verdict) + _details(
        *state,
        "schema mismatch" if probe.schema_ok is False else None,
        # A store that answers but whose membership reads fail: contexts
        # fall out of big segments, whatever the marker says.
        "membership reads fail"
        if probe.up and probe.membership_read_ok is False
        else None,
        _table_status(probe.table),
        f"reason: {probe.reason}" if probe.reason else None,
        f"{failures} failures in a row" if failures > 1 else None,
        f"retry in {format_age(backoff)}" if failures and backoff else None,
    )


def _table_status(table: TableInfo | None) -> str | None:
    """A DynamoDB table's status when it is not ACTIVE: UPDATING still serves reads."""
    if table is None or table.table_status == "ACTIVE":
        return None
    if table.readable:
        return f"table {table.table_status} (serves reads)"
    return f"table {table.table_status} (reads fail)"


def _never(why: str) -> str:
    return f'<span class="age late" title="{escape(why)}">never</span>'


def _age_cell(row: Row, stale_after: float) -> str:
    """The store's own sync age when probed, else LaunchDarkly's."""
    if not row.on:
        stale_after = float("inf")  # nobody expects an integration that is off to sync
    probe, api = row.probe, row.api
    source = "store"
    age: float | None
    if probe is not None and probe.sync_age_seconds is not None:
        age = probe.sync_age_seconds
    elif probe is not None and probe.available and probe.synchronized_on is None:
        return _never("the store holds no sync time")
    elif api is not None and api.last_sync_age_seconds is not None:
        age, source = api.last_sync_age_seconds, "LaunchDarkly"
    elif api is not None and api.last_sync is None and row.on:
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


def _disagreement(kind: Disagreement, row: Row) -> str:
    """The disagreement `sync_disagreement` found, in words."""
    if kind is Disagreement.API_UNAVAILABLE_BUT_FRESH:
        return (
            "LaunchDarkly says the store is unavailable, but it is readable and fresh"
        )
    store = None if row.probe is None else row.probe.sync_age_seconds
    store_says = (
        "holds no sync time" if store is None else f"synced {format_age(store)} ago"
    )
    api_age = None if row.api is None else row.api.last_sync_age_seconds
    return f"LaunchDarkly synced {format_age(api_age)} ago, but the store {store_says}"


def _errors(row: Row, now: float) -> list[Entry]:
    """Every error and finding worth showing: the store's first, LaunchDarkly's last."""
    found: list[Entry] = []
    if row.problem:
        found.append(("not probed", row.problem, "warn"))
    probe = row.probe
    if probe is not None and probe.error:
        label = f"store, {probe.reason}" if probe.reason else "store"
        found.append((label, probe.error, "bad"))
    for note in () if probe is None else probe.notes:
        tone = "bad" if note.severity is Verdict.FAILING else "warn"
        found.append((note.severity, note.text, tone))
    if row.disagreement:
        found.append(("disagreement", _disagreement(row.disagreement, row), "warn"))
    # LaunchDarkly repeats one failure per attempt: one entry per distinct
    # error, with how often it recurred and when it last did (newest first).
    repeats: dict[tuple[int | None, str], list[ApiErrorView]] = {}
    for error in () if row.api is None else row.api.errors:
        repeats.setdefault((error.status_code, error.message), []).append(error)
    for (code, message), errors in repeats.items():
        when = errors[0].timestamp
        ago = "" if when is None else f", {format_age(now - when)} ago"
        times = f", {len(errors)} times" if len(errors) > 1 else ""
        label = f"LaunchDarkly{'' if code is None else f' {code}'}{ago}{times}"
        found.append((label, message, ""))
    return found


def _error_cell(row: Row, now: float) -> str:
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


def search_text(row: Row, now: float) -> str:
    """What the free-text filter matches: names, ids, addresses and errors."""
    parts = [row.id, row.name, row.address, row.prefix, row.integration]
    parts += [row.project, row.environment]
    parts += [f"{label} {text}" for label, text, _ in _errors(row, now)]
    return " ".join(p or "" for p in parts).lower()


def render_row(row: Row, now: float) -> str:
    """One `<tr>` of the table (the row must already be redacted)."""
    verdict = row.verdict
    kind = row.integration
    prefix = row.prefix
    store = (
        f'<code class="addr">{_text(row.address)}</code>'
        + (f' <span class="prefix">prefix {escape(prefix)}</span>' if prefix else "")
        + f' <span class="sdk" title="SDK profile: whose reading of the store the '
        f'status follows">sdk {escape(row.sdk)}</span>'
    )
    return (
        f'<tr class="r-{escape(verdict)}" data-verdict="{escape(verdict)}" '
        f'data-project="{escape(row.project)}" '
        f'data-environment="{escape(row.environment)}" '
        f'data-kind="{escape(kind)}" '
        f'data-search="{escape(search_text(row, now))}" '
        f'id="t-{escape(row.id)}">'
        f'<td class="c-verdict">{_badge(verdict)}</td>'
        f'<td class="c-project">{_text(row.project)}</td>'
        f'<td class="c-environment">{_text(row.environment)}</td>'
        f'<th scope="row" class="c-target"><span class="name">{_text(row.name)}'
        f'</span> <span class="kind k-{escape(kind)}">{_text(kind)}</span>'
        f'<div class="sub">{store}</div></th>'
        f'<td class="c-launchdarkly">{_api_cell(row)}</td>'
        f'<td class="c-probe">{_probe_cell(row)}</td>'
        f'<td class="c-age">{_age_cell(row, row.stale_after_seconds)}</td>'
        f'<td class="c-error">{_error_cell(row, now)}</td></tr>'
    )


def _headline(counts: Counter[Verdict], total: int) -> tuple[str, str]:
    """(tone, sentence) for the top of the page."""
    problems = sum(n for v, n in counts.items() if v.is_problem)
    if total == 0:
        return "idle", "No integrations or targets yet"
    if problems:
        tone = "bad" if any(n for v, n in counts.items() if v.is_urgent) else "warn"
        verb = "needs" if problems == 1 else "need"
        return tone, f"{problems} of {total} targets {verb} attention"
    pending, off_count = counts[Verdict.PENDING], counts[Verdict.OFF]
    if pending:
        return "idle", f"{pending} of {total} targets not probed yet"
    enabled = total - off_count
    off = f" ({off_count} off)" if off_count else ""
    return "good", f"All {enabled} enabled targets healthy{off}"


def _summary(rows: tuple[Row, ...]) -> str:
    counts = Counter(r.verdict for r in rows)
    tone, headline = _headline(counts, len(rows))
    order = sorted(counts, key=lambda v: v.severity)
    chips = "".join(
        f'<button type="button" class="chip v-{escape(v)}" data-chip="{escape(v)}" '
        f'aria-pressed="false" title="{escape(v.meaning)}">'
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


def _facts(report: Report, now: float, version: str) -> str:
    api = report.api
    if api is None:
        api_fact = '<span class="muted">not used (static targets only)</span>'
    elif api.up:
        last = api.last_success
        ago = "" if last is None else f", last answer {format_age(now - last)} ago"
        pending = api.pending_details
        more = f", {pending} statuses still loading" if pending else ""
        api_fact = f'<span class="ok">up</span>{escape(ago + more)}'
        if api.last_error:
            api_fact += f' <span class="warn-text">({_text(api.last_error)})</span>'
    else:
        api_fact = f'<span class="bad-text">down</span>: {_text(api.last_error)}'
    if not report.ready:
        daemon = '<span class="warn-text">starting</span> (first round not done)'
    elif not report.healthy:
        daemon = '<span class="bad-text">loops stuck</span> (see /-/healthy)'
    else:
        daemon = '<span class="ok">ready, healthy</span>'
    stale_after = report.stale_after_seconds
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


def _filters(rows: tuple[Row, ...]) -> str:
    projects = sorted({r.project for r in rows} - {""})
    environments = sorted({r.environment for r in rows} - {""})
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


def _title(rows: tuple[Row, ...]) -> str:
    problems = sum(1 for r in rows if r.verdict.is_problem)
    state = f"{problems} problem{'s' if problems != 1 else ''}" if problems else "OK"
    return f"{state} · Big segment stores · ld-store-monitor"


def _worst(rows: tuple[Row, ...]) -> Verdict:
    return rows[0].verdict if rows else Verdict.PENDING


# Which verdicts "only problems" keeps: status.js reads them from the body.
_PROBLEMS = " ".join(v for v in Verdict if v.is_problem)


@dataclass(frozen=True, slots=True)
class Frame:
    """Everything of the page but its rows: built once per report."""

    title: str
    worst: str
    summary: str
    facts: str
    filters: str
    generated: float
    targets: int


def page_frame(report: Report, *, now: float, version: str) -> Frame:
    """The parts of the page that depend on the whole report, not on the page shown."""
    rows = report.targets
    return Frame(
        title=_title(rows),
        worst=_worst(rows),
        summary=_summary(rows),
        facts=_facts(report, now, version),
        filters=_filters(rows),
        generated=now,
        targets=len(rows),
    )


@dataclass(frozen=True, slots=True)
class Paging:
    """Which page of which rows is shown: the query's filters, counted."""

    page: int  # 1-based
    per_page: int
    matched: int  # rows the filters keep
    filters: tuple[tuple[str, str], ...] = ()  # the query's filters, for links

    @property
    def pages(self) -> int:
        """How many pages the matched rows fill (at least one)."""
        return max(1, -(-self.matched // self.per_page))

    @property
    def first(self) -> int:
        """The 0-based index of the first row shown."""
        return (self.page - 1) * self.per_page


def _link(paging: Paging, page: int, label: str, rel: str) -> str:
    query = urlencode(
        [*paging.filters, ("page", str(page)), ("per_page", str(paging.per_page))]
    )
    return f'<a href="/?{escape(query)}" rel="{rel}" data-page="{page}">{label}</a>'


def _pager(paging: Paging, frame: Frame, shown: int) -> str:
    """Where this page sits among the matched rows, with links to its neighbours."""
    first = paging.first + 1 if shown else 0
    last = paging.first + shown
    what = f"Rows {first} to {last} of {paging.matched}"
    if paging.filters:
        what += f" matching ({frame.targets} targets)"
    parts = [
        _link(paging, paging.page - 1, "← Previous", "prev") if paging.page > 1 else "",
        f"<span>{escape(what)} · page {paging.page} of {paging.pages}</span>",
        _link(paging, paging.page + 1, "Next →", "next")
        if paging.page < paging.pages
        else "",
    ]
    complete = not paging.filters and paging.pages == 1
    return (
        f'<nav id="pager" class="pager" aria-label="Pages" '
        f'data-page="{paging.page}" data-pages="{paging.pages}" '
        f'data-per-page="{paging.per_page}" data-matched="{paging.matched}" '
        f'data-complete="{int(complete)}"{" hidden" if complete else ""}>'
        f"{''.join(parts)}</nav>"
    )


def compose_page(frame: Frame, rows: Sequence[str], paging: Paging | None) -> str:
    """The document around rows already rendered (`render_row`).

    `paging` None: `rows` are every target's (the whole report on one page).
    """
    if paging is None:
        paging = Paging(1, max(1, len(rows)), len(rows))
    cols = "".join(f'<col class="w-{key}">' for key, _ in COLUMNS)
    heads = "".join(
        f'<th scope="col" class="c-{key}">{label}</th>' for key, label in COLUMNS
    )
    if rows:
        body = "".join(rows)
    elif frame.targets:
        body = (
            f'<tr class="empty"><td colspan="{len(COLUMNS)}">No target matches '
            "these filters on this page.</td></tr>"
        )
    else:
        body = (
            f'<tr class="empty"><td colspan="{len(COLUMNS)}">No integrations or '
            "static targets yet: discovery may still be running.</td></tr>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f'<noscript><meta http-equiv="refresh" content="{REFRESH_SECONDS}"></noscript>'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(frame.title)}</title><style>{_STYLE}</style></head>"
        f'<body data-generated="{frame.generated:.3f}" '
        f'data-refresh="{REFRESH_SECONDS}" '
        f'data-worst="{escape(frame.worst)}" data-problems="{_PROBLEMS}">'
        '<header class="top"><h1>LaunchDarkly big segment stores</h1>'
        '<nav aria-label="Machine-readable"><a href="/status">/status JSON</a>'
        '<a href="/metrics">/metrics</a></nav>'
        f'<p id="live" class="live">Reloads every {REFRESH_SECONDS} s</p></header>'
        '<div id="offline" class="offline" role="alert" hidden></div>'
        f"{frame.summary}{frame.facts}{frame.filters}"
        '<div class="table-wrap"><table id="targets">'
        "<caption>Every integration and static target, worst first</caption>"
        f"<colgroup>{cols}</colgroup><thead><tr>{heads}</tr></thead>"
        f'<tbody id="rows">{body}</tbody></table></div>'
        f"{_pager(paging, frame, len(rows))}"
        '<p id="no-match" class="no-match" hidden>No target matches these filters. '
        '<button type="button" id="no-match-clear">Show all</button></p>'
        f"<script>{_SCRIPT}</script></body></html>"
    )


def render_page(report: Report, *, now: float, version: str) -> str:
    """The (redacted) report, every row, as a self-contained, self-refreshing page."""
    frame = page_frame(report, now=now, version=version)
    return compose_page(frame, [render_row(r, now) for r in report.targets], None)

"""The status page's HTML: rows, badges, summary, escaping, self-containment."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from html import escape
from html.parser import HTMLParser

import pytest

from monitor.config import Sdk
from monitor.export.humanize import format_age
from monitor.export.report import (
    ApiErrorView,
    ApiHealth,
    ApiView,
    Note,
    ProbeView,
    Report,
    Row,
)
from monitor.export.verdict import Disagreement, Verdict
from monitor.probes.result import Reason, TableInfo
from monitor.web.page import REFRESH_SECONDS, render_page

NOW = 1_800_000_000.0
HOSTILE = '<script>alert("x")</script>'


class Parsed(HTMLParser):
    """The parts of the page a test looks at: rows, badges, tags and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[dict[str, str | None]] = []
        self.badges: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.ids: dict[str, dict[str, str | None]] = {}
        self._badge = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record every tag, each row's attributes and each badge's text."""
        self.tags.append(tag)
        found = dict(attrs)
        if found.get("id"):
            self.ids[str(found["id"])] = found
        if tag == "tr" and "data-verdict" in found:
            self.rows.append(found)
        self._badge = tag == "span" and "badge" in (found.get("class") or "")

    def handle_data(self, data: str) -> None:
        """Collect the visible text, and the text of badges."""
        self.text.append(data)
        if self._badge:
            self.badges.append(data)
            self._badge = False


def parse(html: str) -> Parsed:
    """Parse a rendered page."""
    parsed = Parsed()
    parsed.feed(html)
    parsed.close()
    return parsed


API = ApiView(
    available=True,
    potentially_stale=False,
    last_sync=NOW - 20,
    last_sync_age_seconds=20.0,
    last_error=None,
    recent_errors=0,
    errors=(),
    verdict=Verdict.HEALTHY,
)
PROBE = ProbeView(
    up=True,
    success=True,
    available=True,
    stale=False,
    schema_ok=True,
    membership_read_ok=True,
    reason=None,
    error=None,
    host_level=False,
    synchronized_on=NOW - 6,
    sync_age_seconds=6.0,
    duration_seconds=0.002,
    phases={"connect": 0.001, "read": 0.001},
    tls_not_after=None,
    finished_at=NOW - 1,
    consecutive_failures=0,
    backoff_seconds=0.0,
    failures={},
    membership_present=None,
    canaries=(),
    redis=None,
    table=None,
    notes=(),
    verdict=Verdict.HEALTHY,
)


def row(name: str, verdict: Verdict) -> Row:
    """A report row of target `name` with this verdict, both sides healthy."""
    return Row(
        id=name.lower().replace(" ", "-"),
        source="api",
        project="web",
        environment="production",
        integration="redis",
        name=name,
        on=True,
        address="redis-1.internal:6379",
        prefix="64f1a2b3c4d5e6f708192a3b",
        sdk=Sdk.PYTHON,
        stale_after_seconds=120.0,
        problem=None,
        api=API,
        probe=PROBE,
        disagreement=None,
        verdict=verdict,
    )


ROWS = (
    replace(
        row("Mobile production Redis", Verdict.UNAVAILABLE),
        project="mobile",
        probe=replace(
            PROBE,
            up=False,
            available=False,
            reason=Reason.AUTH,
            error="authentication failed: invalid username-password pair",
            synchronized_on=None,
            sync_age_seconds=None,
            consecutive_failures=3,
            backoff_seconds=20.0,
            verdict=Verdict.UNAVAILABLE,
        ),
    ),
    replace(
        row("Web production DynamoDB", Verdict.FAILING),
        integration="dynamodb",
        address="ld-big-segments (us-east-1)",
        probe=replace(
            PROBE,
            reason=Reason.SCHEMA,
            error="key schema is wrong",
            verdict=Verdict.FAILING,
        ),
    ),
    replace(
        row("Web staging Redis", Verdict.STALE),
        environment="staging",
        probe=replace(
            PROBE,
            stale=True,
            sync_age_seconds=900.0,
            synchronized_on=NOW - 900,
            verdict=Verdict.STALE,
        ),
    ),
    row("Web production Redis", Verdict.HEALTHY),
    replace(
        row("relay-proxy-store", Verdict.HEALTHY),
        id="relay-proxy-store",
        source="static",
        prefix="launchdarkly",
        api=None,
    ),
    replace(
        row("Web staging DynamoDB (disabled)", Verdict.OFF),
        environment="staging",
        on=False,
        probe=None,
        api=replace(API, verdict=Verdict.OFF),
    ),
)


def report(rows: Sequence[Row]) -> Report:
    """A whole report around `rows`, daemon and API up."""
    return Report(
        version="1.2.3",
        generated_at=NOW,
        ready=True,
        healthy=True,
        stale_after_seconds=120.0,
        api=ApiHealth(
            up=True,
            last_success=NOW - 3,
            last_error=None,
            pending_details=0,
            rate_limit_remaining={},
        ),
        targets=tuple(rows),
    )


def page(whole: Report) -> str:
    """The page of this report."""
    return render_page(whole, now=NOW, version="1.2.3")


def render(rows: Sequence[Row] = ROWS) -> str:
    """The page of a report around `rows`."""
    return page(report(rows))


def test_table_has_one_row_per_target_in_report_order() -> None:
    """Every target gets exactly one row, in the report's worst-first order."""
    parsed = parse(render())
    assert [r["data-verdict"] for r in parsed.rows] == [r.verdict for r in ROWS]
    assert [r["id"] for r in parsed.rows] == [f"t-{r.id}" for r in ROWS]
    assert [r["data-project"] for r in parsed.rows] == [r.project for r in ROWS]


def test_each_row_has_a_badge_with_its_verdict() -> None:
    """The verdict column shows each row's verdict as a coloured badge."""
    html = render()
    assert parse(html).badges == [r.verdict for r in ROWS]
    assert '<span class="badge v-unavailable"' in html
    assert 'class="r-unavailable"' in html  # the row stripe takes the verdict colour


def test_summary_counts_rows_per_verdict_worst_first() -> None:
    """The summary counts rows per verdict, worst first, and says how many need attention."""
    html = render()
    parsed = parse(html)
    chips = re.findall(r'data-chip="([^"]*)"', html)
    assert chips == ["unavailable", "failing", "stale", "healthy", "off"]
    counts = re.findall(r'data-counts="([^"]*)"', html)
    assert counts == ["1 unavailable · 1 failing · 1 stale · 2 healthy · 1 off"]
    assert "3 of 6 targets need attention" in " ".join(parsed.text)
    assert "<title>3 problems · " in html


def test_all_healthy_summary_says_so() -> None:
    """With nothing wrong the headline says every enabled target is healthy."""
    html = render([ROWS[3], ROWS[4], ROWS[5]])
    assert "All 2 enabled targets healthy (1 off)" in html
    assert "<title>OK · " in html
    assert "tone-good" in html


def test_static_target_shows_static_instead_of_launchdarkly_status() -> None:
    """A static target's LaunchDarkly cell says "static"; an API row shows LaunchDarkly's words."""
    html = render([ROWS[4], ROWS[3]])
    cells = re.findall(r'<td class="c-launchdarkly">(.*?)</td>', html)
    assert "static" in cells[0]
    assert "healthy" not in cells[0]
    assert "available · synced 20s ago" in cells[1]


def test_failing_row_shows_probe_reason_and_whole_error_text() -> None:
    """The store's error text is shown whole (wrapped), with the full text as a title."""
    long_error = "connection reset by peer while reading " + "x" * 400
    failing = replace(
        row("Web production Redis", Verdict.FAILING),
        probe=replace(
            PROBE, reason=Reason.OTHER, error=long_error, verdict=Verdict.FAILING
        ),
    )
    html = render([failing])
    assert f"</span> {long_error}</p>" in html
    assert f'title="store, other: {long_error}"' in html
    assert "reason: other" in html


def test_an_updating_table_is_shown_as_such_and_not_as_a_failure() -> None:
    """UPDATING still serves reads: the row stays healthy and says so; CREATING fails."""
    updating = replace(
        row("Web production DynamoDB", Verdict.HEALTHY),
        integration="dynamodb",
        probe=replace(PROBE, table=TableInfo("UPDATING", "PAY_PER_REQUEST", 3)),
    )
    creating = replace(
        row("Web staging DynamoDB", Verdict.FAILING),
        id="creating",
        integration="dynamodb",
        probe=replace(
            PROBE,
            schema_ok=False,
            reason=Reason.SCHEMA,
            error="table status is CREATING",
            table=TableInfo("CREATING", "PAY_PER_REQUEST", None),
            verdict=Verdict.FAILING,
        ),
    )
    active = replace(
        row("Web test DynamoDB", Verdict.HEALTHY),
        id="active",
        integration="dynamodb",
        probe=replace(PROBE, table=TableInfo("ACTIVE", "PAY_PER_REQUEST", 3)),
    )
    html = render([updating, creating, active])
    cells = re.findall(r'<td class="c-probe">(.*?)</td>', html)
    assert len(cells) == 3
    assert "table UPDATING (serves reads)" in cells[0]
    assert "schema mismatch" not in cells[0]
    assert "reason" not in cells[0]
    assert "table CREATING (reads fail)" in cells[1]
    assert "table" not in cells[2]
    assert parse(html).badges == [Verdict.HEALTHY, Verdict.FAILING, Verdict.HEALTHY]


def test_failing_membership_reads_are_named_in_the_probe_cell() -> None:
    """Marker fine, membership reads failing: the cell says so; a working read says nothing."""
    failing = replace(
        row("Web production", Verdict.FAILING),
        probe=replace(
            PROBE,
            success=False,
            membership_read_ok=False,
            reason=Reason.NO_PERMISSION,
            verdict=Verdict.FAILING,
        ),
    )
    working = replace(row("Web staging", Verdict.HEALTHY), id="working")
    cells = re.findall(r'<td class="c-probe">(.*?)</td>', render([failing, working]))
    assert "membership reads fail" in cells[0]
    assert "membership" not in cells[1]


def test_launchdarkly_errors_are_labelled_with_status_and_age() -> None:
    """LaunchDarkly's own errors carry their status code and how long ago they happened."""
    api = replace(
        API,
        recent_errors=1,
        errors=(ApiErrorView(503, "i/o timeout", NOW - 300),),
        verdict=Verdict.DEGRADED,
    )
    html = render([replace(row("Web production Redis", Verdict.DEGRADED), api=api)])
    assert "LaunchDarkly 503, 5m ago</span> i/o timeout" in html
    assert "1 recent error<" in html


def test_repeated_launchdarkly_errors_are_shown_once_with_a_count() -> None:
    """The same LaunchDarkly error recurring is one entry: latest age and how many times."""
    denied = "AccessDeniedException: not authorized"
    errors = (
        ApiErrorView(403, denied, NOW - 120),
        ApiErrorView(503, "reset", NOW - 600),
        ApiErrorView(403, denied, NOW - 3600),
    )
    api = replace(API, recent_errors=3, errors=errors)
    degraded = replace(row("Web DynamoDB", Verdict.DEGRADED), api=api)
    shown = "".join(parse(render([degraded])).text)
    assert shown.count(denied) == 1
    assert "LaunchDarkly 403, 2m ago, 2 times" in shown
    assert "LaunchDarkly 503, 10m ago" in shown


def test_sync_age_is_the_stores_and_falls_back_to_launchdarkly() -> None:
    """Sync age comes from the store when probed, from LaunchDarkly (tagged LD) when not."""
    pending = replace(row("Not probed", Verdict.PENDING), probe=None)
    html = render([ROWS[2], ROWS[1], pending])
    ages = re.findall(r'<td class="c-age">(.*?)</td>', html)
    assert ">15m<" in ages[0]
    assert "late" in ages[0]  # older than stale_after
    assert ">6s<" in ages[1]
    assert "late" not in ages[1]
    assert ">20s<" in ages[2]
    assert ">LD<" in ages[2]


def test_store_without_sync_marker_shows_never() -> None:
    """A readable store holding no synchronizedOn shows "never", not a dash."""
    never = replace(
        row("New Redis", Verdict.STALE),
        probe=replace(PROBE, stale=True, synchronized_on=None, sync_age_seconds=None),
    )
    assert ">never</span>" in render([never])


def test_hostile_strings_render_as_text() -> None:
    """Names, projects, addresses and errors are escaped: nothing becomes markup."""
    evil = replace(
        row(HOSTILE, Verdict.FAILING),
        project='"><img src=x onerror=alert(1)>',
        environment="</script><script>alert(2)</script>",
        address="<b>bold</b>",
        probe=replace(
            PROBE, error=HOSTILE, reason=Reason.OTHER, verdict=Verdict.FAILING
        ),
    )
    html = render([evil])
    parsed = parse(html)
    assert parsed.tags.count("script") == 1  # only the page's own script
    assert "img" not in parsed.tags
    assert "b" not in parsed.tags
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert HOSTILE in "".join(parsed.text)  # shown to the reader as text
    assert parsed.rows[0]["data-project"] == '"><img src=x onerror=alert(1)>'


def test_api_down_shows_its_last_error() -> None:
    """When the LaunchDarkly API is down the header says so, with the error text."""
    down = ApiHealth(
        up=False,
        last_success=None,
        last_error="401 <Unauthorized>",
        pending_details=0,
        rate_limit_remaining={},
    )
    html = page(replace(report(ROWS), api=down))
    assert '<span class="bad-text">down</span>: 401 &lt;Unauthorized&gt;' in html


def test_header_shows_daemon_state_threshold_time_version_and_links() -> None:
    """The header says whether the daemon is ready, the stale threshold, when, which version."""
    html = page(replace(report(ROWS), ready=False))
    text = " ".join(parse(html).text)
    assert "starting" in text
    assert "Stale after" in text
    assert "2m" in text
    assert "2027-01-15 08:00:00 UTC" in text
    assert "1.2.3" in text
    assert '<a href="/metrics">' in html
    assert '<a href="/status">' in html


def test_empty_report_says_there_is_nothing_yet() -> None:
    """With no targets the page says so instead of showing an empty table."""
    html = render([])
    assert "No integrations or static targets yet" in html
    assert "No integrations or targets yet" in html
    assert parse(html).rows == []


def test_page_references_no_other_host() -> None:
    """Self-contained: no absolute URLs, every href/src is local, a data: or a fragment."""
    html = render()
    assert "http://" not in html
    assert "https://" not in html
    assert "//" not in re.sub(r"<script>.*</script>", "", html, flags=re.S)
    for url in re.findall(r'(?:href|src|action)="([^"]*)"', html):
        assert url.startswith(("/", "data:", "#")), url
    assert "@import" not in html
    assert "url(" not in html


def test_page_works_without_javascript() -> None:
    """Without JavaScript: filters hidden, all rows shown, a <noscript> meta refresh."""
    html = render()
    parsed = parse(html)
    assert "hidden" in parsed.ids["filters"]
    assert all("hidden" not in r for r in parsed.rows)
    assert (
        f'<noscript><meta http-equiv="refresh" content="{REFRESH_SECONDS}"></noscript>'
        in html
    )
    assert f'data-refresh="{REFRESH_SECONDS}"' in html
    assert REFRESH_SECONDS == 15


def test_page_has_accessible_basics() -> None:
    """A language, column headers with scope, a caption, a live summary."""
    html = render()
    assert html.startswith('<!doctype html><html lang="en">')
    assert html.count('<th scope="col"') == 8
    assert "<caption>" in html
    assert 'id="summary" class="summary tone-bad" aria-live="polite"' in html


def test_filter_choices_list_each_project_and_environment_once() -> None:
    """The project and environment selects offer every value in the report, sorted."""
    html = render()
    projects = re.search(r'<select name="project".*?</select>', html)
    environments = re.search(r'<select name="environment".*?</select>', html)
    assert projects is not None
    assert environments is not None
    assert re.findall(r'value="([^"]*)"', projects.group()) == ["", "mobile", "web"]
    assert re.findall(r'value="([^"]*)"', environments.group()) == [
        "",
        "production",
        "staging",
    ]


def test_probe_notes_and_disagreement_are_listed_with_the_errors() -> None:
    """The probe's findings and a LaunchDarkly/store disagreement are spelled out, failing ones in red."""
    notes = (
        Note(
            Verdict.FAILING,
            "no membership data: every context reads as not included",
        ),
        Note(
            Verdict.DEGRADED,
            "allkeys-lru with maxmemory can evict big segment keys",
        ),
    )
    flagged = replace(
        row("Web production Redis", Verdict.FAILING),
        disagreement=Disagreement.STORE_STALE,
        probe=replace(
            PROBE, notes=notes, verdict=Verdict.FAILING, sync_age_seconds=600.0
        ),
    )
    html = render([flagged])
    assert (
        '<p class="msg bad"><span class="lbl">failing</span> no membership data: '
        "every context reads as not included</p>"
    ) in html
    assert '<p class="msg warn"><span class="lbl">degraded</span> allkeys-lru' in html
    assert (
        '<span class="lbl">disagreement</span> LaunchDarkly synced 20s ago, '
        "but the store synced 10m ago"
    ) in html


def test_disagreement_of_an_unavailable_but_fresh_store_is_phrased_as_such() -> None:
    """LaunchDarkly calling a fresh store unavailable reads as that, not as a sync age."""
    flagged = replace(
        row("Web production Redis", Verdict.DISAGREEMENT),
        disagreement=Disagreement.API_UNAVAILABLE_BUT_FRESH,
        api=replace(API, available=False, verdict=Verdict.UNAVAILABLE),
    )
    assert (
        '<span class="lbl">disagreement</span> LaunchDarkly says the store is '
        "unavailable, but it is readable and fresh</p>"
    ) in render([flagged])


def test_script_gets_the_problem_verdicts_and_badges_their_meaning() -> None:
    """The body lists the problem verdicts for "only problems"; a badge's title is its meaning."""
    html = render()
    assert 'data-problems="unavailable failing stale disagreement degraded"' in html
    assert f'class="badge v-stale" title="{escape(Verdict.STALE.meaning)}"' in html


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, "—"),
        (-5.0, "0s"),
        (0.0, "0s"),
        (42.4, "42s"),
        (119.0, "119s"),
        (120.0, "2m"),
        (7199.0, "120m"),
        (7200.0, "2.0h"),
        (12600.0, "3.5h"),
        (172799.0, "48.0h"),
        (172800.0, "2.0d"),
    ],
)
def test_format_age_picks_a_unit_a_person_reads(
    seconds: float | None, expected: str
) -> None:
    """Seconds under 2 minutes, minutes under 2 hours, hours under 2 days, then days."""
    assert format_age(seconds) == expected


def test_each_row_names_its_sdk_profile_and_ages_by_its_threshold() -> None:
    """The store cell says whose rules apply; "late" follows the row's own threshold."""
    fresh = ROWS[1]  # 6 s old: not late under 120 s
    node = replace(fresh, sdk=Sdk.NODE, stale_after_seconds=1.0)
    html = render([fresh, node])
    assert '<span class="sdk"' in html
    assert "sdk python" in html
    assert "sdk node" in html
    ages = re.findall(r'<td class="c-age">(.*?)</td>', html)
    assert "late" not in ages[0]
    assert "late" in ages[1]

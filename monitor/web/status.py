"""`/status` and the status page, built once and served to every reader.

At thousands of targets the report is megabytes (8 MB of JSON, 5 MB of HTML
at 5,000); building it on every request held the event loop for more than a
second each time and starved the probes sharing it. So:

- One build serves every reader. A build is current while nothing it was
  made from changed (the config, the discovery view, the target list, every
  target's result object: compared by identity, so checking costs a pass
  over the records and no rendering) and it is younger than `MAX_AGE`
  seconds: ages ("synced 3m ago"), stale verdicts and `generated_at` are as
  of the build, so they are at most that old and never freeze. Readers that
  arrive during a build await that same build; none starts another.
- A build never holds the loop for long: it builds, redacts and renders row
  by row and yields to the loop every `SLICE` seconds of work, so a probe
  waits at most one slice. The full JSON and each row's HTML are rendered
  once per build; a request only picks rows and joins text.
- The limit protects the build, not the reads. A new build starts at most
  `COOLDOWN_FACTOR` build-durations (and at least `MIN_GAP` seconds) after
  the previous one ended; in between, readers get the previous build as long
  as it is younger than `MAX_AGE`. Only when it is older and the next build
  may not start yet (builds slower than about two seconds) is the answer
  `429` with `Retry-After`. A read served from a build is never refused.
- Everything served is redacted in the build (`Redactor.value` for the JSON
  as before, `Redactor.text` on every string of the page's rows).

`/status` with no query is the whole report as before. With any of `page`,
`per_page`, `project`, `environment`, `kind`, `verdict` (comma-separated),
`problems=1` or `q` (words, all of which must occur in a row's names,
address, prefix or error text) it holds only the matching rows of that page
plus a `paging` object. The page (`/`) takes the same parameters; it shows
`PER_PAGE` rows by default.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from monitor import __version__
from monitor.export.report import (
    Report,
    assemble_report,
    integrations_by_id,
    report_row,
)
from monitor.export.verdict import Verdict
from monitor.log import Redactor
from monitor.service.state import MonitorState
from monitor.web.page import (
    Frame,
    Paging,
    compose_page,
    page_frame,
    render_row,
    search_text,
)

MAX_AGE = 10.0  # seconds a build is served before the next read rebuilds it
MIN_GAP = 2.0  # seconds at least between the end of a build and the next start
COOLDOWN_FACTOR = 4.0  # ... and at least this many times the last build's duration
SLICE = 0.004  # seconds of work a build does before it yields to the loop
PER_PAGE = 100  # rows the page shows by default
MAX_PER_PAGE = 1000
ANSWERS_KEPT = 32  # filtered answers kept per build (the same query is cheap)
FILTERS = ("project", "environment", "kind", "verdict", "problems", "q")
_PROBLEMS = frozenset(v.value for v in Verdict if v.is_problem)


class QueryError(ValueError):
    """A query parameter that cannot be used."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One row as served: its JSON and HTML text and what the filters read."""

    json: bytes  # the row's JSON, indented as an element of `targets`
    html: str
    search: str  # lower-cased text the `q` words are looked for in
    project: str
    environment: str
    kind: str
    verdict: str


@dataclass
class StatusBuild:
    """One report, redacted and rendered, and the state it was built from."""

    key: tuple[Any, ...]
    started: float  # monotonic
    duration: float
    generated_at: float
    report: Report  # redacted
    entries: tuple[Entry, ...]
    head: bytes  # the JSON up to and including `"targets": `
    body: bytes  # the whole /status JSON
    frame: Frame
    answers: OrderedDict[tuple[Any, ...], bytes] = field(default_factory=OrderedDict)


@dataclass(frozen=True, slots=True)
class Query:
    """The filters and page a request asks for."""

    project: str = ""
    environment: str = ""
    kind: str = ""
    verdicts: frozenset[str] = frozenset()
    problems: bool = False
    words: tuple[str, ...] = ()
    page: int = 1
    per_page: int | None = None  # None: every matching row (/status)
    given: tuple[tuple[str, str], ...] = ()  # the filters as given, for links

    @property
    def filtered(self) -> bool:
        """True when any filter is set."""
        return bool(self.given)

    def keeps(self, entry: Entry) -> bool:
        """True when `entry` passes every filter (the page's script does the same)."""
        return (
            (not self.project or entry.project == self.project)
            and (not self.environment or entry.environment == self.environment)
            and (not self.kind or entry.kind == self.kind)
            and (not self.problems or entry.verdict in _PROBLEMS)
            and (not self.verdicts or entry.verdict in self.verdicts)
            and all(word in entry.search for word in self.words)
        )


def _number(query: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = query.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise QueryError(f"{name} must be at least 1")
    return value


def parse_query(query: Mapping[str, str], per_page: int | None) -> Query:
    """The filters and page of a request; `per_page` is the default page size."""
    size = _number(query, "per_page", per_page)
    if size is not None:
        size = min(size, MAX_PER_PAGE)
    page = _number(query, "page", 1)
    assert page is not None  # noqa: S101 -- it has a default
    given = tuple(
        (name, query[name].strip())
        for name in FILTERS
        if query.get(name, "").strip()
        and not (name == "problems" and query[name] in ("0", "false"))
    )
    values = dict(given)
    return Query(
        project=values.get("project", ""),
        environment=values.get("environment", ""),
        kind=values.get("kind", ""),
        verdicts=frozenset(v for v in values.get("verdict", "").split(",") if v),
        problems="problems" in values,
        words=tuple(values.get("q", "").lower().split()),
        page=page,
        per_page=size,
        given=given,
    )


class _Slices:
    """Yields to the event loop whenever `SLICE` seconds of work have passed."""

    def __init__(self, slice_seconds: float) -> None:
        self._slice = slice_seconds
        self._since = time.perf_counter()
        self.pauses = 0

    async def pause(self) -> None:
        """Yield if this slice is spent."""
        if time.perf_counter() - self._since >= self._slice:
            await asyncio.sleep(0)
            self.pauses += 1
            self._since = time.perf_counter()


def _indent(text: str, spaces: int) -> str:
    """`text` with every line but the first indented by `spaces` more."""
    return text.replace("\n", "\n" + " " * spaces)


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2)


class StatusCache:
    """The current build of the report, and the one build in progress, if any."""

    def __init__(
        self,
        state: MonitorState,
        redactor: Redactor,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        slice_seconds: float = SLICE,
    ) -> None:
        self._state = state
        self._redactor = redactor
        self._clock = clock
        self._monotonic = monotonic
        self._slice = slice_seconds
        self._build: StatusBuild | None = None
        self._task: asyncio.Task[StatusBuild] | None = None
        self._ended = 0.0  # monotonic end of the last build
        self.builds = 0  # builds started: the tests and the benchmark count them

    def _key(self) -> tuple[Any, ...]:
        state = self._state
        return (
            state.config,
            state.view,
            state.targets,
            state.records,
            state.ready(),
            state.healthy(),
            tuple(record.result for record in state.records.values()),
        )

    @staticmethod
    def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
        # Identity for the objects (replaced whole on change), equality for the
        # flags and the tuple of results (whose elements compare by identity first).
        return all(x is y for x, y in zip(a[:4], b[:4], strict=True)) and a[4:] == b[4:]

    def cooldown(self) -> float:
        """Seconds after a build ends before the next may start."""
        last = self._build.duration if self._build is not None else 0.0
        return max(MIN_GAP, COOLDOWN_FACTOR * last)

    async def get(self) -> StatusBuild | float:
        """The build to serve, or the seconds to wait (`429`) when none may be."""
        if self._task is not None:
            return await asyncio.shield(self._task)
        now = self._monotonic()
        current = self._build
        if current is not None and now - current.started < MAX_AGE:
            if self._same(current.key, self._key()):
                return current
            if now - self._ended < self.cooldown():
                return current  # changed, but built recently: the next build waits
        elif current is not None and now - self._ended < self.cooldown():
            return self._ended + self.cooldown() - now
        task = asyncio.create_task(self._run(), name="status-build")
        self._task = task
        return await asyncio.shield(task)

    async def _run(self) -> StatusBuild:
        try:
            self.builds += 1
            build = await self.build()
            self._build = build
            return build
        finally:
            self._ended = self._monotonic()
            self._task = None

    async def build(self) -> StatusBuild:
        """Build, redact and render the report, a slice of work at a time."""
        state = self._state
        redactor = self._redactor
        slices = _Slices(self._slice)
        started = self._monotonic()
        key = self._key()
        now = self._clock()
        items = integrations_by_id(state)
        rows = []
        for target in state.targets:
            rows.append(report_row(state, items, target, now))
            await slices.pause()
        report = assemble_report(state, now, rows)
        await slices.pause()
        memo: dict[str, str] = {}

        def text(value: str) -> str:
            masked = memo.get(value)
            if masked is None:
                masked = memo[value] = redactor.text(value)
            return masked

        redacted_rows = []
        entries = []
        for row in report.targets:
            redacted = row.redacted(text)
            redacted_rows.append(redacted)
            element = "    " + _indent(_dumps(redactor.value(row.to_json())), 4)
            entries.append(
                Entry(
                    json=element.encode("utf-8"),
                    html=render_row(redacted, now),
                    search=search_text(redacted, now),
                    project=redacted.project,
                    environment=redacted.environment,
                    kind=redacted.integration,
                    verdict=redacted.verdict.value,
                )
            )
            await slices.pause()
        head_text = _dumps(redactor.value(replace(report, targets=()).to_json()))
        # json.dumps ends it with `"targets": []\n}`: cut after `"targets": `.
        head = head_text[: head_text.rindex("[]")].encode("utf-8")
        redacted_report = replace(
            replace(report, targets=()).redacted(text), targets=tuple(redacted_rows)
        )
        frame = page_frame(redacted_report, now=now, version=__version__)
        await slices.pause()
        body = head + _targets([e.json for e in entries]) + b"\n}"
        return StatusBuild(
            key=key,
            started=started,
            duration=self._monotonic() - started,
            generated_at=now,
            report=redacted_report,
            entries=tuple(entries),
            head=head,
            body=body,
            frame=frame,
        )


def _targets(elements: Sequence[bytes]) -> bytes:
    """The `targets` array of rendered elements, as `json.dumps(indent=2)` writes it."""
    if not elements:
        return b"[]"
    return b"[\n" + b",\n".join(elements) + b"\n  ]"


def select(build: StatusBuild, query: Query) -> tuple[list[Entry], Paging]:
    """The entries of the query's page, and where that page sits."""
    entries = build.entries
    matched = [e for e in entries if query.keeps(e)] if query.filtered else entries
    size = query.per_page or max(1, len(matched))
    paging = Paging(
        page=query.page, per_page=size, matched=len(matched), filters=query.given
    )
    first = paging.first
    return list(matched[first : first + size]), paging


def status_answer(build: StatusBuild, query: Query) -> bytes:
    """The `/status` JSON for `query` (the whole report when it asks nothing)."""
    if not query.filtered and query.per_page is None and query.page == 1:
        return build.body
    shown, paging = select(build, query)
    meta = {
        "page": paging.page,
        "per_page": paging.per_page,
        "pages": paging.pages,
        "matched": paging.matched,
        "total": len(build.entries),
        "filters": dict(query.given),
    }
    return (
        build.head
        + _targets([e.json for e in shown])
        + b',\n  "paging": '
        + _indent(_dumps(meta), 2).encode("utf-8")
        + b"\n}"
    )


def page_answer(build: StatusBuild, query: Query) -> bytes:
    """The status page for `query`: the frame and the rows of its page."""
    shown, paging = select(build, query)
    return compose_page(build.frame, [e.html for e in shown], paging).encode("utf-8")


STATUS_CACHE = web.AppKey("status_cache", StatusCache)


async def _answer(
    request: web.Request,
    default_per_page: int | None,
    render: Callable[[StatusBuild, Query], bytes],
    content_type: str,
) -> web.Response:
    try:
        query = parse_query(request.query, default_per_page)
    except QueryError as problem:
        return web.json_response({"error": str(problem)}, status=400)
    got = await request.app[STATUS_CACHE].get()
    if not isinstance(got, StatusBuild):
        wait = max(1, round(got))
        return web.json_response(
            {
                "error": "rate limited: the report is rebuilt too often; "
                f"try again in {wait}s"
            },
            status=429,
            headers={"Retry-After": str(wait)},
        )
    key = (render, query)
    body = got.answers.get(key)
    if body is None:
        body = render(got, query)
        got.answers[key] = body
        while len(got.answers) > ANSWERS_KEPT:
            got.answers.popitem(last=False)
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={
            "X-Generated-At": f"{got.generated_at:.3f}",
            "Cache-Control": "no-store",
        },
    )


async def status(request: web.Request) -> web.Response:
    """Every target's last result as JSON, redacted; filtered and paged on request."""
    return await _answer(request, None, status_answer, "application/json")


async def index(request: web.Request) -> web.Response:
    """The status page a person opens in a browser: a page of rows, worst first."""
    return await _answer(request, PER_PAGE, page_answer, "text/html")

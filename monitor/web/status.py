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
- A build renders only what changed. Each target's row is kept between
  builds with the inputs it came from (target, integration, result, the
  record's counters: by identity) and what of it depends on the time
  (`time_signature`: available, stale, disagreement, a TLS note); while
  those are the same, the build only writes the two ages into the kept
  JSON. At 5,000 targets that is about 60 ms; after a round, when every
  result is new, about 0.5 s. A build yields to the loop every `SLICE`
  seconds of work (and collects the youngest generation between two
  yields), so a probe waits at most about one slice. The JSON is written by
  the C encoder, one row per line. The page's rows are rendered per answer,
  only those of the page shown; a request only picks rows and joins text.
- Answers carry an ETag (`If-None-Match` gets `304` while the build and
  query are the same) and are gzipped once per answer, in a worker thread,
  for clients that accept it.
- The limit protects the build, not the reads. A new build starts at most
  `COOLDOWN_FACTOR` build-durations (and at least `MIN_GAP` seconds) after
  the previous one ended; in between, readers get the previous build as long
  as it is younger than `MAX_AGE`. Only when it is older and the next build
  may not start yet (builds slower than about two seconds) is the answer
  `429` with `Retry-After`. A read served from a build is never refused.
- Everything served is redacted when its row is rendered: a row's JSON text
  is checked once with `Redactor.may_change` (a substring search for known
  secrets and for the words the patterns need); only when it says maybe is
  the row redacted the exact way (`Redactor.value` for the JSON,
  `Row.redacted` for the page), and then rendered again at every build.

`/status` with no query is the whole report as before. With any of `page`,
`per_page`, `project`, `environment`, `kind`, `verdict` (comma-separated),
`problems=1` or `q` (words, all of which must occur in a row's names,
address, prefix or error text) it holds only the matching rows of that page
plus a `paging` object. The page (`/`) takes the same parameters; it shows
`PER_PAGE` rows by default.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import re
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from monitor import __version__
from monitor.export.report import (
    Report,
    Row,
    api_age,
    assemble_report,
    integrations_by_id,
    store_age,
    target_row,
    time_signature,
)
from monitor.export.verdict import Verdict
from monitor.launchdarkly.discovery import DiscoveredIntegration
from monitor.log import Redactor
from monitor.probes.result import ProbeResult
from monitor.probes.runner import TargetRecord
from monitor.service.state import MonitorState
from monitor.targets import Target
from monitor.web.compress import GZIP_LEVEL, accepts_gzip
from monitor.web.page import (
    PAGE_POLICY,
    Frame,
    Paging,
    compose_page,
    page_frame,
    render_row,
    search_text,
)

MAX_AGE = 10.0  # seconds a build is served before the next read rebuilds it
WATCHED = 600.0  # seconds after a read during which each probe round warms a build
MIN_GAP = 2.0  # seconds at least between the end of a build and the next start
COOLDOWN_FACTOR = 4.0  # ... and at least this many times the last build's duration
SLICE = 0.004  # seconds of work a build does before it yields to the loop
PER_PAGE = 100  # rows the page shows by default
MAX_PER_PAGE = 1000
ANSWERS_KEPT = 32  # filtered answers kept per build (the same query is cheap)
# The build resumes through the timer heap, not `sleep(0)`'s ready queue: a
# task resumed by `sleep(0)` runs again before the timers and I/O callbacks
# that came due during its slice, which then wait two slices instead of one.
_YIELD = 1e-6
GC_YOUNG = 5_000  # objects in the youngest generation a slice may leave behind
BODY_ROWS = 500  # rows joined into the body between two pauses
GZIP_MIN_BYTES = 1024  # smaller answers are sent as they are
FILTERS = ("project", "environment", "kind", "verdict", "problems", "q")
_PROBLEMS = frozenset(v.value for v in Verdict if v.is_problem)


class QueryError(ValueError):
    """A query parameter that cannot be used."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One row as served: its JSON text and what the filters and the page read."""

    json: str  # the row's JSON: one element of `targets`, on one line
    row: Row  # redacted; its ages are as of when it was rendered (`aged`)
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
    report: Report  # redacted; its rows' ages as of their rendering (`aged`)
    entries: tuple[Entry, ...]
    head: str  # the JSON up to and including `"targets": `
    body: bytes  # the whole /status JSON
    frame: Frame
    serial: str = ""  # names this build in ETags
    rerendered: int = 0  # rows rendered afresh (the others were kept)
    answers: OrderedDict[tuple[Any, ...], Answer] = field(default_factory=OrderedDict)


@dataclass(slots=True)
class Answer:
    """One answer's body, its ETag and, once a client asked for it, its gzip."""

    body: bytes
    etag: str
    gzip: asyncio.Future[bytes] | None = None


@dataclass(slots=True)
class _Kept:
    """A target's row as last rendered, and the inputs it was rendered from."""

    target: Target
    item: DiscoveredIntegration | None
    result: ProbeResult | None
    counters: tuple[Any, ...]
    stale_after: float
    signature: tuple[object, ...]
    pieces: list[str]  # the JSON cut at the ages: text, hole, text, hole, text
    entry: Entry
    order: tuple[Any, ...]  # sort key: worst first, then by name


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
    """Yields to the event loop whenever `SLICE` seconds of work have passed.

    Before yielding it collects the youngest generation when the build has
    left more than `GC_YOUNG` objects in it: a collection costs in proportion
    to that, and the daemon's threshold (50,000) would otherwise land one of
    10-20 ms in the middle of a slice.
    """

    def __init__(self, slice_seconds: float) -> None:
        self._slice = slice_seconds
        self._since = time.perf_counter()
        self.pauses = 0

    async def pause(self) -> None:
        """Yield if this slice is spent."""
        if time.perf_counter() - self._since >= self._slice:
            await asyncio.sleep(_YIELD)
            if gc.isenabled() and gc.get_count()[0] > GC_YOUNG:
                gc.collect(0)  # a step of its own, between two yields
                await asyncio.sleep(_YIELD)
            self.pauses += 1
            self._since = time.perf_counter()


# Placeholders for the two ages in a kept row's JSON (`_HOLE` cuts them out).
_API_AGE = "@@ld-age:1@@"
_STORE_AGE = "@@ld-age:2@@"
_HOLE = re.compile(f'"({_API_AGE}|{_STORE_AGE})"')


def _json_text(value: Any) -> str:
    # The C encoder (no indent): a row per line is written by hand around it.
    return json.dumps(value)


def _age_text(value: float | None) -> str:
    return "null" if value is None else float.__repr__(value)


def aged(row: Row, now: float) -> Row:
    """`row` with its two ages as of `now` (a kept row's are as of its rendering)."""
    api, probe = row.api, row.probe
    if api is not None:
        api = replace(api, last_sync_age_seconds=api_age(api.last_sync, now))
    if probe is not None:
        probe = replace(probe, sync_age_seconds=store_age(probe.synchronized_on, now))
    return replace(row, api=api, probe=probe)


def _counters(record: TargetRecord | None) -> tuple[Any, ...]:
    """What of a record, besides its result, a row shows (mutated in place)."""
    if record is None:
        return ()
    return (
        record.consecutive_failures,
        record.backoff,
        record.last_available,
        tuple(record.failures.items()),
    )


def _element(kept: _Kept, now: float) -> str:
    """A kept row's JSON with its ages as of `now`."""
    pieces = kept.pieces
    if len(pieces) == 1:
        return pieces[0]
    row = kept.entry.row
    parts = [pieces[0]]
    for i in range(1, len(pieces), 2):
        if pieces[i] == _API_AGE:
            assert row.api is not None  # noqa: S101 -- it had a hole
            parts.append(_age_text(api_age(row.api.last_sync, now)))
        else:
            assert row.probe is not None  # noqa: S101 -- it had a hole
            parts.append(_age_text(store_age(row.probe.synchronized_on, now)))
        parts.append(pieces[i + 1])
    return "".join(parts)


class StatusCache:
    """The current build of the report, and the one build in progress, if any.

    Between builds it keeps every target's rendered row (`_Kept`): a build
    renders again only the rows whose inputs changed (the target, its
    integration, its result, the record's counters, by identity) or whose
    time-dependent verdicts did (`time_signature`); for the others it only
    writes the two ages into the kept JSON.
    """

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
        self._kept: dict[str, _Kept] = {}
        self._kept_for: tuple[Any, ...] = ()  # (config, redactor generation)
        self._token = f"{time.time_ns():x}"  # ETags of another process differ
        self._read_at: float | None = None  # monotonic time of the last read
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
        """The build to serve, or the seconds to wait (`429`) when none may be.

        While a build runs, readers get the previous one if it is still
        fresh (a round old at most), else they wait for the new one.
        """
        now = self._monotonic()
        self._read_at = now
        current = self._build
        if self._task is not None:
            if current is not None and now - current.started < MAX_AGE:
                return current
            return await asyncio.shield(self._task)
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

    def warm(self) -> None:
        """Start a build now if someone read the status lately and it changed.

        The daemon calls it after every probe round and discovery, so that a
        build after a round (every row new) runs in the background, in slices,
        and readers are answered from a finished build, not made to wait for
        one. Nobody reading for `WATCHED` seconds: nothing is built.
        """
        now = self._monotonic()
        if self._read_at is None or now - self._read_at > WATCHED:
            return
        if self._task is not None or now - self._ended < self.cooldown():
            return
        current = self._build
        if current is not None and self._same(current.key, self._key()):
            return
        self._task = asyncio.create_task(self._run(), name="status-build")

    async def _run(self) -> StatusBuild:
        try:
            self.builds += 1
            build = await self.build()
            self._build = build
            return build
        finally:
            self._ended = self._monotonic()
            self._task = None

    def _render(
        self,
        target: Target,
        item: DiscoveredIntegration | None,
        record: TargetRecord | None,
        now: float,
        stale_after: float,
    ) -> tuple[list[str], Entry, tuple[Any, ...], bool]:
        """A row's JSON cut at its ages, its entry and its sort key, redacted once."""
        row = target_row(target, item, record, now, stale_after)
        data = row.to_json()
        holes = ages = 0
        api, probe = data["api"], data["probe"]
        if api is not None and api["last_sync_age_seconds"] is not None:
            api["last_sync_age_seconds"] = _API_AGE
            holes = ages = holes + 1
        if probe is not None and probe["sync_age_seconds"] is not None:
            probe["sync_age_seconds"] = _STORE_AGE
            holes = ages = holes + 1
        text = _json_text(data)  # the placeholders hold no word a pattern needs
        shown = row
        if self._redactor.may_change(text):  # rare: the exact, slower path
            data = self._redactor.value(row.to_json())
            text = _json_text(data)  # no holes: rendered again at every build
            holes = -1
            shown = row.redacted(self._redactor.text)
        pieces = _HOLE.split(text) if holes > 0 else [text]
        if holes > 0 and len(pieces) != 2 * holes + 1:  # a string like a hole
            pieces = [_json_text(self._redactor.value(row.to_json()))]
            holes = -1
        keep = holes == ages  # else its ages are as of now: render it every time
        entry = Entry(
            json="",
            row=shown,
            search=search_text(shown, now),
            project=shown.project,
            environment=shown.environment,
            kind=shown.integration,
            verdict=shown.verdict.value,
        )
        order = (row.verdict.severity, row.project, row.environment, row.name)
        return pieces, entry, order, keep

    async def build(self) -> StatusBuild:
        """Build, redact and render the report, a slice of work at a time."""
        state = self._state
        redactor = self._redactor
        slices = _Slices(self._slice)
        started = self._monotonic()
        key = self._key()
        now = self._clock()
        items = integrations_by_id(state)
        if self._kept_for != (state.config, redactor.generation):
            self._kept = {}  # thresholds, SDKs or secrets may all differ
            self._kept_for = (state.config, redactor.generation)
        previous = self._kept
        kept: dict[str, _Kept] = {}
        rerendered = 0
        for target in state.targets:
            item = items.get(target.id) if target.source == "api" else None
            record = state.records.get(target.id)
            result = None if record is None else record.result
            counters = _counters(record)
            stale_after = state.stale_after_of(target)
            signature = time_signature(target, item, record, now, stale_after)
            old = previous.get(target.id)
            if (
                old is None
                or old.target is not target
                or old.item is not item
                or old.result is not result
                or old.counters != counters
                or old.stale_after != stale_after
                or old.signature != signature
            ):
                pieces, entry, order, keep = self._render(
                    target, item, record, now, stale_after
                )
                if not keep:
                    signature = (object(),)  # equal to no later signature
                old = _Kept(
                    target,
                    item,
                    result,
                    counters,
                    stale_after,
                    signature,
                    pieces,
                    entry,
                    order,
                )
                rerendered += 1
            kept[target.id] = old
            await slices.pause()
        self._kept = kept
        await slices.pause()
        rows = sorted(kept.values(), key=lambda k: k.order)
        await slices.pause()
        entries = []
        for k in rows:
            text = _element(k, now)
            e = k.entry
            entries.append(
                Entry(
                    text, e.row, e.search, e.project, e.environment, e.kind, e.verdict
                )
            )
            await slices.pause()
        report = assemble_report(state, now, [])
        head_text = _json_text(redactor.value(report.to_json()))
        # json.dumps ends it with `"targets": []}`: cut after `"targets": `.
        head = head_text[: head_text.rindex("[]")]
        redacted_report = replace(
            report.redacted(redactor.text), targets=tuple(e.row for e in entries)
        )
        await slices.pause()
        frame = page_frame(redacted_report, now=now, version=__version__)
        await slices.pause()
        body = await _body(head, [e.json for e in entries], slices)
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
            serial=f"{self._token}-{self.builds}-{now:.3f}",
            rerendered=rerendered,
        )


async def _body(head: str, elements: list[str], slices: _Slices) -> bytes:
    """The whole /status JSON, joined and encoded a few hundred rows at a time."""
    if not elements:
        return (head + "[]}").encode("utf-8")
    chunks = [(head + "[\n").encode("utf-8")]
    for first in range(0, len(elements), BODY_ROWS):
        chunk = ",\n".join(elements[first : first + BODY_ROWS])
        if first:
            chunk = ",\n" + chunk
        chunks.append(chunk.encode("utf-8"))
        await slices.pause()
    chunks.append(b"\n]}")
    return b"".join(chunks)


def _targets(elements: Sequence[str]) -> str:
    """The `targets` array of rendered elements, one per line."""
    if not elements:
        return "[]"
    return "[\n" + ",\n".join(elements) + "\n]"


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
    text = build.head + _targets([e.json for e in shown])
    return (text + ', "paging": ' + _json_text(meta) + "}").encode("utf-8")


def page_answer(build: StatusBuild, query: Query) -> bytes:
    """The status page for `query`: the frame and the rows of its page."""
    shown, paging = select(build, query)
    now = build.generated_at
    rows = [render_row(aged(e.row, now), now) for e in shown]
    return compose_page(build.frame, rows, paging).encode("utf-8")


STATUS_CACHE = web.AppKey("status_cache", StatusCache)


async def _gzip(answer: Answer) -> bytes:
    """The answer's body gzipped, once per answer, in a worker thread."""
    if answer.gzip is None:
        answer.gzip = asyncio.get_running_loop().create_future()
        try:
            packed = await asyncio.to_thread(gzip.compress, answer.body, GZIP_LEVEL)
        except BaseException as problem:
            answer.gzip.set_exception(problem)
            answer.gzip.exception()  # retrieved: the readers waiting get it
            answer.gzip = None
            raise
        answer.gzip.set_result(packed)
        return packed
    return await asyncio.shield(answer.gzip)


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
    answer = got.answers.get(key)
    if answer is None:
        body = render(got, query)
        etag = f'"{got.serial}-{len(got.answers)}-{zlib.crc32(body):08x}"'
        answer = got.answers[key] = Answer(body, etag)
        while len(got.answers) > ANSWERS_KEPT:
            got.answers.popitem(last=False)
    headers = {
        "X-Generated-At": f"{got.generated_at:.3f}",
        # Kept by a browser, but asked again every time: 304 while unchanged.
        "Cache-Control": "no-cache",
        "ETag": answer.etag,
        "Vary": "Accept-Encoding",
    }
    if answer.etag in _etags(request.headers.get("If-None-Match", "")):
        return web.Response(status=304, headers=headers)
    body = answer.body
    if len(body) >= GZIP_MIN_BYTES and accepts_gzip(
        request.headers.get("Accept-Encoding", "")
    ):
        body = await _gzip(answer)
        headers["Content-Encoding"] = "gzip"
    return web.Response(
        body=body, content_type=content_type, charset="utf-8", headers=headers
    )


def _etags(header: str) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compare as strong)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


async def status(request: web.Request) -> web.Response:
    """Every target's last result as JSON, redacted; filtered and paged on request."""
    return await _answer(request, None, status_answer, "application/json")


async def index(request: web.Request) -> web.Response:
    """The status page a person opens in a browser: a page of rows, worst first."""
    response = await _answer(request, PER_PAGE, page_answer, "text/html")
    # On its 304s too: a browser keeps the headers a 304 brings with it.
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response

"""One report of every target, shared by /status, the status page and `check`.

A row joins what LaunchDarkly says (API) with what the probe saw (store),
plus a verdict a person can sort by. The report is typed: frozen dataclasses
whose fields are named and ordered like the `/status` JSON keys, so
`Report.to_json()` is that JSON. Callers redact before anything leaves the
process: the JSON with `Redactor.value`, the typed report (for the page and
`check`'s table) with `Report.redacted`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from enum import Enum
from typing import Any, Literal

from monitor import __version__
from monitor.config import Sdk
from monitor.export.verdict import Disagreement, Verdict, sync_disagreement
from monitor.launchdarkly.discovery import DiscoveredIntegration
from monitor.probes.profiles import PROFILE_NOTES, Compare, profile_of
from monitor.probes.result import (
    CanaryResult,
    ProbeResult,
    Reason,
    RedisHealth,
    TableInfo,
    sync_in_future,
)
from monitor.probes.runner import TargetRecord
from monitor.service.state import MonitorState
from monitor.targets import Source, Target


@dataclass(frozen=True, slots=True)
class ApiErrorView:
    """One of LaunchDarkly's recent errors writing to the store."""

    status_code: int | None
    message: str
    timestamp: float | None


@dataclass(frozen=True, slots=True)
class ApiView:
    """LaunchDarkly's view of one integration (its `_status`)."""

    available: bool | None
    potentially_stale: bool | None
    last_sync: float | None
    last_sync_age_seconds: float | None
    last_error: float | None
    recent_errors: int
    errors: tuple[ApiErrorView, ...]  # the newest few
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Note:
    """A finding beyond available/stale: failing (wrong now), degraded (a risk),
    or healthy (a standing fact to know, which does not change the verdict)."""

    severity: Verdict  # FAILING, DEGRADED or HEALTHY
    text: str


@dataclass(frozen=True, slots=True)
class ProbeView:
    """The probe's view of one target: its last result and the runner's record."""

    up: bool
    success: bool  # the whole read the SDK makes worked: metadata and membership
    available: bool
    stale: bool
    schema_ok: bool | None
    membership_read_ok: bool | None  # None: not attempted
    reason: Reason | None
    error: str | None
    # The result was not probed: its host failed at the connection level for
    # another store in the same round (the error says so).
    host_level: bool
    synchronized_on: float | None
    sync_age_seconds: float | None
    duration_seconds: float
    phases: Mapping[str, float]
    tls_not_after: float | None
    finished_at: float
    consecutive_failures: int
    backoff_seconds: float
    failures: Mapping[str, int]  # reason -> probes failed for it
    membership_present: bool | None
    canaries: tuple[CanaryResult, ...]
    redis: RedisHealth | None  # JSON adds `eviction_unsafe`
    table: TableInfo | None
    notes: tuple[Note, ...]
    verdict: Verdict

    def to_json(self) -> dict[str, Any]:
        """The `probe` object of a `/status` row."""
        return _object(self)


@dataclass(frozen=True, slots=True)
class Row:
    """One target: what it is, LaunchDarkly's view, the probe's, one verdict."""

    id: str
    source: Source
    project: str
    environment: str
    integration: str  # the kind: redis or dynamodb
    name: str
    on: bool
    address: str | None
    prefix: str | None
    sdk: Sdk  # whose reading of the store available/stale follow
    stale_after_seconds: float  # this store's stale threshold
    problem: str | None  # why it cannot be probed
    api: ApiView | None  # None for a static target
    probe: ProbeView | None  # None before its first probe
    # None: not comparable, False: they agree. JSON says true for either kind.
    disagreement: Disagreement | Literal[False] | None
    verdict: Verdict

    def to_json(self) -> dict[str, Any]:
        """One element of the `/status` JSON's `targets`."""
        return _object(self)

    def redacted(self, text: Callable[[str], str]) -> Row:
        """A copy with every string passed through `text`; enums are kept."""
        redacted: Row = _redact(self, text)
        return redacted


@dataclass(frozen=True, slots=True)
class ApiHealth:
    """How the monitor's own use of the LaunchDarkly API goes."""

    up: bool
    last_success: float | None
    last_error: str | None
    pending_details: int
    rate_limit_remaining: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Report:
    """The whole report: daemon health, API health and one row per target."""

    version: str
    generated_at: float
    ready: bool
    healthy: bool
    stale_after_seconds: float
    api: ApiHealth | None  # None with the API off (static targets only)
    targets: tuple[Row, ...]  # worst first

    def to_json(self) -> dict[str, Any]:
        """The `/status` JSON (before redaction)."""
        return _object(self)

    def redacted(self, text: Callable[[str], str]) -> Report:
        """A copy with every string passed through `text`; enums are kept."""
        redacted: Report = _redact(self, text)
        return redacted


_PLAIN = (str, int, float, bool, type(None))
_NAMES: dict[type, tuple[str, ...]] = {}


def _json(value: object) -> Any:
    """`value` as JSON-ready data: what `to_json` is made of."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Disagreement):
        return True  # /status has always said true/false/null; the page phrases it
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, RedisHealth):
        return {**_object(value), "eviction_unsafe": value.eviction_unsafe}
    if is_dataclass(value) and not isinstance(value, type):
        return _object(value)
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    return value


def _object(value: Any) -> dict[str, Any]:
    """A dataclass as a JSON object: one key per field, in declaration order."""
    kind = type(value)
    names = _NAMES.get(kind)
    if names is None:
        names = _NAMES[kind] = tuple(f.name for f in fields(value))
    out = {}
    for name in names:
        item = getattr(value, name)
        out[name] = item if type(item) in _PLAIN else _json(item)
    return out


def _redact(value: Any, text: Callable[[str], str]) -> Any:
    """`value` with every string in it passed through `text`; enums are closed words."""
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        return text(value)
    if is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _redact(getattr(value, f.name), text) for f in fields(value)}
        return replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(_redact(v, text) for v in value)
    if isinstance(value, Mapping):
        return {_redact(k, text): _redact(v, text) for k, v in value.items()}
    return value


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


def api_age(last_sync: float | None, now: float) -> float | None:
    """`ApiView.last_sync_age_seconds`: LaunchDarkly's last sync, seconds ago."""
    return None if last_sync is None else round(max(0.0, now - last_sync), 3)


def store_age(synchronized_on: float | None, now: float) -> float | None:
    """`ProbeView.sync_age_seconds`: the store's `synchronizedOn`, seconds ago."""
    return None if synchronized_on is None else round(now - synchronized_on, 3)


def api_verdict(item: DiscoveredIntegration) -> Verdict:
    """LaunchDarkly's view in one word."""
    status = item.integration.status
    if not item.integration.on:
        return Verdict.OFF
    if status.available is False:
        return Verdict.UNAVAILABLE
    if status.potentially_stale:
        return Verdict.STALE
    if status.errors_total:
        return Verdict.DEGRADED
    if status.available is None and status.potentially_stale is None:
        return Verdict.PENDING
    return Verdict.HEALTHY


def api_view(item: DiscoveredIntegration, now: float) -> ApiView:
    """LaunchDarkly's view of one integration, ages as of `now`."""
    status = item.integration.status
    last_sync = _seconds(status.last_sync_ms)
    return ApiView(
        available=status.available,
        potentially_stale=status.potentially_stale,
        last_sync=last_sync,
        last_sync_age_seconds=api_age(last_sync, now),
        last_error=_seconds(status.last_error_ms),
        recent_errors=status.errors_total,
        errors=tuple(
            ApiErrorView(e.status_code, e.message, _seconds(e.timestamp_ms))
            for e in status.errors[:5]
        ),
        verdict=api_verdict(item),
    )


def probe_view(
    result: ProbeResult,
    record: TargetRecord,
    now: float,
    stale_after: float,
    sdk: Sdk = Sdk.PYTHON,
) -> ProbeView:
    """The probe's view of one result under `sdk`'s rules; counters from `record`."""
    available, stale = result.sdk_status(
        now, stale_after, sdk, last_stale=record.last_stale(stale_after, sdk)
    )
    sync = (
        None
        if result.synchronized_on_ms is None
        else result.synchronized_on_ms / 1000.0
    )
    notes = _notes(result, now, sdk)
    # An SDK that swallows read errors (PHP) reports a store it cannot read as
    # available: the row still says the store is failing.
    swallowed = (
        profile_of(sdk).read_error_available
        and not result.read_ok
        and result.raw is None
    )
    # An SDK that cannot tell a stale store (PHP compares seconds with
    # milliseconds) reports it fresh: the row still says the store is stale.
    hidden_stale = (
        profile_of(sdk).compare is Compare.PHP_SECONDS
        and result.sdk_status(now, stale_after, Sdk.PYTHON)[1]
        and result.read_ok
    )
    if not available:
        verdict = Verdict.UNAVAILABLE
    elif swallowed:
        verdict = Verdict.FAILING
    elif stale or hidden_stale:
        verdict = Verdict.STALE
    elif result.reason is not None or any(n.severity is Verdict.FAILING for n in notes):
        verdict = Verdict.FAILING
    elif any(n.severity is Verdict.DEGRADED for n in notes):
        verdict = Verdict.DEGRADED
    else:
        verdict = Verdict.HEALTHY
    return ProbeView(
        up=result.up,
        success=result.success(sdk),
        available=available,
        stale=stale,
        schema_ok=result.schema_ok,
        membership_read_ok=result.membership_read_ok,
        reason=result.reason,
        error=result.error,
        host_level=result.host_level,
        synchronized_on=sync,
        sync_age_seconds=store_age(sync, now),
        duration_seconds=round(result.duration, 6),
        phases={phase: round(seconds, 6) for phase, seconds in result.phases},
        tls_not_after=result.tls_not_after,
        finished_at=result.finished_at,
        consecutive_failures=record.consecutive_failures,
        backoff_seconds=record.backoff,
        failures={str(k): v for k, v in sorted(record.failures.items())},
        membership_present=result.membership_present,
        canaries=result.canaries,
        redis=result.redis,
        table=result.table,
        notes=notes,
        verdict=verdict,
    )


# A certificate expiring within this many days is worth a note on the page.
TLS_NOTE_DAYS = 14


def _notes(result: ProbeResult, now: float, sdk: Sdk) -> tuple[Note, ...]:
    """Findings beyond available/stale: failing (wrong now) or degraded (a risk)."""
    # What a profile cannot see (PHP: an outage) is said on every row of it, but
    # is no finding about the store: a healthy PHP store stays healthy, and
    # `check` does not fail a whole PHP fleet for its SDK.
    notes = [Note(Verdict.HEALTHY, PROFILE_NOTES[sdk])] if sdk in PROFILE_NOTES else []
    notes += [
        Note(Verdict.FAILING, f"canary {canary.name}: {canary.detail}")
        for canary in result.canaries
        if canary.ok is False
    ]
    notes += _read_notes(result, sdk)
    if result.membership_present is False:
        notes.append(
            Note(
                Verdict.FAILING,
                "no membership data: every context reads as not included",
            )
        )
    if result.redis is not None and result.redis.eviction_unsafe:
        policy = result.redis.maxmemory_policy
        notes.append(
            Note(
                Verdict.DEGRADED, f"{policy} with maxmemory can evict big segment keys"
            )
        )
    tls = _tls_note(result, now)
    if tls is not None:
        notes.append(Note(Verdict.DEGRADED, tls))
    sync = result.synchronized_on_ms
    if sync is not None and sync_in_future(sync, now):
        notes.append(
            Note(
                Verdict.DEGRADED,
                "synchronizedOn lies more than a day in the future: impossible, "
                "and the SDKs never see this store as stale",
            )
        )
    return tuple(notes)


def _tls_note(result: ProbeResult, now: float) -> str | None:
    """The note on a certificate that expires soon, as of `now`."""
    if (
        result.tls_not_after is not None
        and result.tls_not_after - now < TLS_NOTE_DAYS * 86400
    ):
        days = (result.tls_not_after - now) / 86400
        return f"TLS certificate expires in {days:.1f} days"
    return None


# What a failed read means for evaluations. In every SDK a failed metadata
# read leaves membership lookups working (python-server-sdk
# `ldclient/impl/evaluator.py:254-261`, go-server-sdk
# `subsystems/ldstoreimpl/big_segment_store_wrapper.go:114-157`, js-core
# `packages/shared/sdk-server/src/BigSegmentsManager.ts:99-100`); contexts
# fall out of big segments only when the membership read fails.
MARKER_ONLY_NOTE = (
    "the sync marker is unreadable but membership reads work: evaluations are "
    "still right, only the store status is wrong (Go, Java, .NET and C++ even "
    "keep the evaluation reason HEALTHY/STALE)"
)
MEMBERSHIP_FAILING_NOTE = (
    "membership reads fail: every context falls out of every big segment "
    "(evaluated as not included)"
)


def _read_notes(result: ProbeResult, sdk: Sdk) -> list[Note]:
    """Which read failed, and what that does to evaluations."""
    if result.membership_read_ok is False:
        detail = f": {result.membership_error}" if result.membership_error else ""
        return [Note(Verdict.FAILING, MEMBERSHIP_FAILING_NOTE + detail)]
    if result.membership_read_ok and result.up and not result.metadata_read_ok(sdk):
        return [Note(Verdict.DEGRADED, MARKER_ONLY_NOTE)]
    return []


def overall_verdict(
    target: Target,
    api: ApiView | None,
    probe: ProbeView | None,
    disagreement: Disagreement | Literal[False] | None,
) -> Verdict:
    """One word for the row: the store first, then both sides compared, then the API."""
    if not target.on:
        return Verdict.OFF
    # LaunchDarkly's own verdicts that are problems: unavailable, stale, degraded.
    api_trouble = api is not None and api.verdict.is_problem
    if probe is None:
        # Not probed (yet): LaunchDarkly's word is all there is.
        return api.verdict if api is not None and api_trouble else Verdict.PENDING
    if probe.verdict.severity < Verdict.DISAGREEMENT.severity:
        return probe.verdict  # the store itself is unavailable, failing or stale
    if disagreement:
        return Verdict.DISAGREEMENT
    if probe.verdict is Verdict.DEGRADED or api_trouble:
        return Verdict.DEGRADED
    return Verdict.HEALTHY


def target_row(
    target: Target,
    item: DiscoveredIntegration | None,
    record: TargetRecord | None,
    now: float,
    stale_after: float,
) -> Row:
    """The report row of one target (and its integration, when it has one).

    `stale_after`: the target's threshold (`MonitorState.stale_after_of`).
    """
    api = api_view(item, now) if item is not None else None
    probe = None
    disagreement: Disagreement | Literal[False] | None = None
    if record is not None and record.result is not None:
        probe = probe_view(record.result, record, now, stale_after, target.sdk)
        disagreement = sync_disagreement(item, record.result, now, stale_after)
    return Row(
        id=target.id,
        source=target.source,
        project=target.labels.project,
        environment=target.labels.environment,
        integration=target.kind,
        name=target.name,
        on=target.on,
        address=target.address,
        prefix=target.prefix or None,
        sdk=target.sdk,
        stale_after_seconds=stale_after,
        problem=target.problem,
        api=api,
        probe=probe,
        disagreement=disagreement,
        verdict=overall_verdict(target, api, probe, disagreement),
    )


def time_signature(
    target: Target,
    item: DiscoveredIntegration | None,
    record: TargetRecord | None,
    now: float,
    stale_after: float,
) -> tuple[object, ...]:
    """All of `target_row` that depends on `now`, but for the two ages.

    Two calls with the same inputs (the same target, item, record counters
    and result) whose signatures are equal give rows that differ only in
    `api.last_sync_age_seconds` and `probe.sync_age_seconds` (`api_age`,
    `store_age`): a caller may keep a row's rendering and refill the ages.
    It must follow `probe_view`, `_notes` and `sync_disagreement`.
    """
    if record is None or record.result is None:
        return ()
    result = record.result
    sdk = target.sdk
    status = result.sdk_status(
        now, stale_after, sdk, last_stale=record.last_stale(stale_after, sdk)
    )
    hidden_stale = (
        profile_of(sdk).compare is Compare.PHP_SECONDS
        and result.sdk_status(now, stale_after, Sdk.PYTHON)[1]
    )
    sync = result.synchronized_on_ms
    return (
        status,
        hidden_stale,
        _tls_note(result, now),
        sync is not None and sync_in_future(sync, now),
        sync_disagreement(item, result, now, stale_after),
    )


def report_row(
    state: MonitorState,
    items: Mapping[str, DiscoveredIntegration],
    target: Target,
    now: float,
) -> Row:
    """One target's row from the state; `items`: the integrations by id."""
    return target_row(
        target,
        items.get(target.id) if target.source == "api" else None,
        state.records.get(target.id),
        now,
        state.stale_after_of(target),
    )


def integrations_by_id(state: MonitorState) -> dict[str, DiscoveredIntegration]:
    """The discovered integrations of the state's view, by id."""
    return {item.integration.id: item for item in state.view.integrations}


def assemble_report(state: MonitorState, now: float, rows: list[Row]) -> Report:
    """The report around `rows` (sorted here, worst first) as of `now`."""
    rows.sort(key=lambda r: (r.verdict.severity, r.project, r.environment, r.name))
    view = state.view
    return Report(
        version=__version__,
        generated_at=now,
        ready=state.ready(),
        healthy=state.healthy(),
        stale_after_seconds=state.stale_after,
        api=None
        if state.api is None
        else ApiHealth(
            up=view.api_up,
            last_success=view.last_success,
            last_error=view.last_error,
            pending_details=view.pending_details,
            rate_limit_remaining=dict(state.api.rate_limit_remaining),
        ),
        targets=tuple(rows),
    )


def build_report(state: MonitorState, clock: Callable[[], float] = time.time) -> Report:
    """The whole report: daemon health, API health and one row per target."""
    now = clock()
    items = integrations_by_id(state)
    rows = [report_row(state, items, target, now) for target in state.targets]
    return assemble_report(state, now, rows)

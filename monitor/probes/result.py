"""What a probe reports; the target's SDK profile turns it into a status.

A probe reads a store's metadata the way the SDKs do and records what it
saw, raw value included; `sdk_status()` then applies the rules of one SDK's
`BigSegmentStoreStatus` (`monitor/probes/profiles.py`, with the sources).
For the default profile, `python`:

| store result                          | available | stale |
|---------------------------------------|-----------|-------|
| metadata read raised an error         | false     | false |
| metadata missing (no key, no item)    | true      | true  |
| now - synchronizedOn >= stale_after   | true      | true  |
| otherwise                             | true      | false |

(python-server-sdk `ldclient/impl/big_segments.py:75-85`,
`ldclient/impl/big_segments_common.py:29-30`.)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from monitor.config import ProbeConfig, Sdk
from monitor.probes.profiles import (
    Parsed,
    RawMetadata,
    Read,
    profile_of,
    read_metadata,
    status_of,
)
from monitor.targets import Target


class Reason(StrEnum):
    """Closed set of probe failure reasons; each maps to a metric label value."""

    DNS = "dns"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    TLS_HANDSHAKE = "tls_handshake"
    TLS_VERIFY = "tls_verify"
    AUTH = "auth"
    NO_PERMISSION = "no_permission"
    NOT_FOUND = "not_found"
    SCHEMA = "schema"
    PARSE = "parse"
    CLUSTER_REDIRECT = "cluster_redirect"  # MOVED/ASK the SDK does not follow
    THROTTLED = "throttled"
    REPLY_TOO_LARGE = "reply_too_large"  # a reply beyond the monitor's bounds
    OTHER = "other"


# Reasons that say the host itself did not answer (nothing of the store's own
# credentials or layout was tried): every store on that host fails alike.
# Authentication, permission and schema failures stay per store.
HOST_LEVEL_REASONS = frozenset(
    {Reason.DNS, Reason.TIMEOUT, Reason.REFUSED, Reason.TLS_HANDSHAKE}
)


# A synchronizedOn further ahead of the monitor's clock than this cannot be
# clock skew: it is flagged as impossible (`ld_store_sync_in_future`), since
# it would keep the store "fresh" for the SDKs whatever happens.
FUTURE_SYNC_TOLERANCE = 86_400.0


def sync_in_future(synchronized_on_ms: int, now: float) -> bool:
    """`synchronizedOn` lies more than FUTURE_SYNC_TOLERANCE seconds after `now`."""
    return synchronized_on_ms > (now + FUTURE_SYNC_TOLERANCE) * 1000


class ProbeError(Exception):
    """A probe step that failed for a known reason."""

    def __init__(self, reason: Reason, message: str) -> None:
        self.reason = reason
        super().__init__(message)


PHASES = ("connect", "tls", "auth", "read")


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a probe, for the debug view: what, how long, how it went."""

    name: str
    seconds: float
    ok: bool
    detail: str | None = None


# TableStatus values in which a table serves GetItem and Query: `UPDATING`
# (capacity, index or stream changes) "remains available for data operations"
# (AWS). CREATING, DELETING, ARCHIVING, ARCHIVED and
# INACCESSIBLE_ENCRYPTION_CREDENTIALS fail reads; the SDKs never call
# DescribeTable, only reads matter to them.
READABLE_TABLE_STATUSES = frozenset({"ACTIVE", "UPDATING"})


@dataclass(frozen=True, slots=True)
class TableInfo:
    """What DescribeTable says of a DynamoDB table, worth a dashboard."""

    table_status: str
    billing_mode: str
    item_count: int | None

    @property
    def readable(self) -> bool:
        """The table's status lets the SDKs read it (ACTIVE or UPDATING)."""
        return self.table_status in READABLE_TABLE_STATUSES


@dataclass(frozen=True, slots=True)
class RedisHealth:
    """What INFO says of a Redis server that matters to big segments."""

    version: str
    maxmemory_policy: str
    maxmemory: int
    used_memory: int
    persistence_enabled: bool

    @property
    def eviction_unsafe(self) -> bool:
        """An allkeys-* policy with a memory limit may evict big segment keys.

        Big segment keys carry no TTL, so volatile-* policies never pick them;
        allkeys-* policies do, and an SDK then silently sees non-membership.
        """
        return self.maxmemory > 0 and self.maxmemory_policy.startswith("allkeys-")


@dataclass(frozen=True, slots=True)
class CanaryResult:
    """How one canary context evaluated: ok None when it could not be checked."""

    name: str
    ok: bool | None
    detail: str


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Everything one probe of one target established."""

    finished_at: float
    duration: float
    up: bool  # reachable and authenticated
    read_ok: bool  # the metadata read an SDK does succeeded
    schema_ok: bool | None  # None: the probe never got far enough to tell
    synchronized_on_ms: int | None  # None: metadata missing (or not read)
    reason: Reason | None = None
    error: str | None = None
    phases: tuple[tuple[str, float], ...] = ()
    steps: tuple[Step, ...] = ()
    tls_not_after: float | None = None
    membership_present: bool | None = None
    table: TableInfo | None = None
    redis: RedisHealth | None = None
    canaries: tuple[CanaryResult, ...] = ()
    # What the metadata read returned, for the profile to parse; None when
    # the read failed or never happened.
    raw: RawMetadata | None = None
    # The membership read an SDK makes for an evaluation (Redis SMEMBERS of an
    # include set, DynamoDB GetItem of a membership item), for a context no
    # one uses; False too when the store could not be read at all (SDKs'
    # reads fail the same way). None: not known (a result made without it).
    membership_read_ok: bool | None = None
    membership_error: str | None = None
    # The result was not probed: another store on the same host failed at the
    # connection level in this round, and this one shares its fate.
    host_level: bool = False
    # The monitor itself failed (out of file descriptors): no verdict on the
    # store; the runner keeps the previous one.
    monitor_fault: bool = False

    @property
    def ok(self) -> bool:
        """True when the probe found nothing wrong with reachability or layout."""
        return self.reason is None

    def sdk_status(
        self,
        now: float,
        stale_after: float,
        sdk: Sdk = Sdk.PYTHON,
        *,
        last_stale: bool = False,
    ) -> tuple[bool, bool]:
        """(available, stale) as SDK `sdk` reading the same store would report now."""
        return status_of(
            profile_of(sdk),
            self.parsed(sdk),
            now=now,
            stale_after=stale_after,
            last_stale=last_stale,
        )

    def parsed(self, sdk: Sdk = Sdk.PYTHON) -> Parsed:
        """What SDK `sdk` made of the metadata read: a timestamp, missing or failed.

        It does not depend on the time, so a caller judging the same result
        at every scrape keeps it (`export.metrics.KeptResult`).
        """
        return read_metadata(
            profile_of(sdk),
            read_ok=self.read_ok,
            synchronized_on_ms=self.synchronized_on_ms,
            raw=self.raw,
        )

    def metadata_read_ok(self, sdk: Sdk = Sdk.PYTHON) -> bool:
        """The metadata read worked and SDK `sdk` can parse what it returned."""
        return self.parsed(sdk) is not Read.FAILED

    def success(self, sdk: Sdk = Sdk.PYTHON) -> bool:
        """The whole read SDK `sdk` makes worked: metadata and membership."""
        return (
            self.up
            and self.metadata_read_ok(sdk)
            and self.membership_read_ok is not False
        )


class Recorder:
    """Collects phase timings and steps while a probe runs, so a timeout keeps them."""

    def __init__(self, timeout: float | None = None) -> None:
        self.started = time.perf_counter()
        self.timeout = timeout  # the probe's deadline after `started`, if known
        self.phases: dict[str, float] = {}
        self.steps: list[Step] = []
        self.current: str | None = None
        self.authenticated = False  # reached: the store answered as the monitor's user
        self._step_started = self.started

    def begin(self, name: str) -> None:
        """Start timing step `name`."""
        self.current = name
        self._step_started = time.perf_counter()

    def end(self, ok: bool = True, detail: str | None = None) -> float:
        """Finish the current step; phases among PHASES are also kept as phases."""
        seconds = time.perf_counter() - self._step_started
        if self.current is not None:
            self.steps.append(Step(self.current, seconds, ok, detail))
            if self.current in PHASES:
                self.phases[self.current] = self.phases.get(self.current, 0.0) + seconds
        self.current = None
        return seconds

    def elapsed(self) -> float:
        """Seconds since the probe started."""
        return time.perf_counter() - self.started

    def remaining(self) -> float | None:
        """Seconds left before the probe's deadline (None: no deadline known)."""
        return None if self.timeout is None else self.timeout - self.elapsed()

    def failure(
        self,
        reason: Reason,
        message: str,
        finished_at: float,
        *,
        steps: tuple[Step, ...] | None = None,
        tls_not_after: float | None = None,
        host_level: bool = False,
    ) -> ProbeResult:
        """The result of a probe that failed: nothing read, up as far as it got.

        The SDKs' membership reads fail the same way: membership_read_ok False.
        """
        return ProbeResult(
            finished_at=finished_at,
            duration=self.elapsed(),
            up=self.authenticated,
            read_ok=False,
            schema_ok=None,
            synchronized_on_ms=None,
            reason=reason,
            error=message,
            membership_read_ok=False,
            membership_error=message,
            phases=tuple(self.phases.items()),
            steps=tuple(self.steps) if steps is None else steps,
            tls_not_after=tls_not_after,
            host_level=host_level,
        )


class Probe(Protocol):
    """A probe of one kind of store."""

    def run(self, target: Target, recorder: Recorder) -> Awaitable[ProbeResult]:
        """Probe `target` once; never raises for store trouble, returns it."""
        ...

    def reconfigure(self, settings: ProbeConfig) -> None:
        """Take the probe settings of a reloaded config, from the next probe on."""
        ...

    def prune(self, present: Set[str]) -> None:
        """Forget what is kept per target for every target id not in `present`."""
        ...

    async def close(self) -> None:
        """Release shared clients."""

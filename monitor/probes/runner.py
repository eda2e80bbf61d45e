"""Probe rounds: every due target once, bounded, isolated, each under its deadline.

- A per-host and a global limit on probes in flight, taken in that order, so
  neither the monitor nor any one store is flooded, and probes queued behind
  a hung host never hold a global slot that a healthy host could use.
- Each probe runs under `probe.timeout` (counted from when it starts, not
  from when it was queued), so a hung store costs one timeout and never
  delays the others. A round is never cancelled as a whole: it ends when its
  last probe does.
- A dead host is judged once per round, not once per store: when a probe of
  a host fails at the connection level (`HOST_LEVEL_REASONS`), the host's
  probes still queued in that round resolve at once with the same reason
  (`ProbeResult.host_level`); in later rounds the host gets one trial probe
  at a time until it answers, and then its stores are probed normally in
  that same round.
- A target that keeps failing for a reason of its own (authentication,
  schema...) is probed with backoff, capped at a few intervals; a success
  brings it straight back to the normal cadence.
- Results are stored per target as they complete: `/metrics` always answers
  from the latest results without waiting for a round to end.
- The monitor's own shortage of file descriptors is not the store's failure:
  such a probe keeps the store's previous verdict, is counted
  (`RunnerLoad.fd_exhausted`) and logged once per round (`probe.fd_exhausted`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import structlog

from monitor.config import ProbeConfig, Sdk
from monitor.probes.failures import MonitorResourceError
from monitor.probes.profiles import profile_of
from monitor.probes.result import (
    HOST_LEVEL_REASONS,
    Probe,
    ProbeResult,
    Reason,
    Recorder,
    Step,
)
from monitor.targets import Target

# A failing target waits interval * 2^(failures-1) between probes,
# at most this many intervals.
MAX_BACKOFF_INTERVALS = 4


@dataclass
class TargetRecord:
    """What the runner keeps per target across rounds."""

    result: ProbeResult | None = None
    failures: Counter[Reason] = field(default_factory=Counter)
    consecutive_failures: int = 0
    backoff: float = 0.0  # extra seconds beyond the interval before the next probe
    next_due: float = 0.0  # monotonic
    last_success: float | None = None  # epoch
    # The last result the target's SDK would have read as available: C++
    # keeps the stale of its last good status while the store is unavailable.
    last_available: ProbeResult | None = None

    def last_stale(self, stale_after: float, sdk: Sdk) -> bool:
        """The stale an SDK that keeps it (C++) still reports while unavailable.

        cpp-sdks libs/server-sdk/src/data_components/big_segments/
        big_segment_store_wrapper.cpp:195-199; False for every other profile.
        """
        last = self.last_available
        if last is None or not profile_of(sdk).read_error_keeps_stale:
            return False
        return last.sdk_status(last.finished_at, stale_after, sdk)[1]


@dataclass(frozen=True, slots=True)
class RoundSummary:
    """How a round went, for its canonical log line."""

    probed: int
    failed: int
    skipped: int
    duration: float
    reasons: dict[str, int]
    host_level: int = 0  # failures resolved from another store's host failure
    hosts_down: int = 0  # hosts that failed at the connection level this round
    budget: float = 0.0  # the worst case the round was sized for (round_budget)
    overran: bool = False  # it took longer than the probe interval


@dataclass
class RunnerLoad:
    """How busy the runner is, live: read by /metrics (saturation)."""

    in_flight: int = 0  # probes running now (holding a global slot)
    pending: int = 0  # probes of the current round not finished yet
    rounds: int = 0
    rounds_overrun: int = 0  # rounds that took longer than the probe interval
    last_round_duration: float | None = None
    last_round_budget: float | None = None
    fd_exhausted: int = 0  # probes that found the monitor out of file descriptors

    @property
    def queued(self) -> int:
        """Probes of the current round waiting for a slot."""
        return self.pending - self.in_flight


@dataclass
class HostGate:
    """One host's per-host limit and its standing across rounds."""

    slots: asyncio.Semaphore
    # One trial at a time while the host is down.
    trial: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The connection-level failure that put the host down, and its round.
    down: ProbeResult | None = None
    down_round: int = -1

    def is_down(self) -> bool:
        """The last probe of the host failed at the connection level."""
        return self.down is not None

    def judge(self, result: ProbeResult, round_no: int) -> None:
        """Put the host down on a connection-level failure, up on any answer."""
        if result.monitor_fault:
            return  # the monitor's trouble says nothing of the host
        if result.reason in HOST_LEVEL_REASONS and not result.host_level:
            self.down = result
            self.down_round = round_no
        elif not result.host_level:
            self.down = None


def round_budget(targets: Sequence[Target], settings: ProbeConfig) -> float:
    """The longest a round of `targets` may take if every probe ran to its timeout.

    Probes queue in waves behind the global limit and behind each host's
    limit; the slower of the two sets the length. Dead hosts cost about one
    wave (their queue resolves at once), so real rounds are far shorter.
    """
    if not targets:
        return 0.0
    per_host = Counter(host_key(t) for t in targets)
    waves = max(
        math.ceil(len(targets) / settings.concurrency),
        math.ceil(max(per_host.values()) / settings.per_host_concurrency),
    )
    return waves * settings.timeout


def host_key(target: Target) -> str:
    """What the per-host limit counts: the Redis host:port or the DynamoDB endpoint."""
    return "none" if target.endpoint is None else target.endpoint.host_key


class ProbeRunner:
    """Runs probes and keeps each target's latest result and counters."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        settings: ProbeConfig,
        logger: structlog.stdlib.BoundLogger,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._probes = probes
        self.settings = settings
        self._log = logger
        self._monotonic = monotonic
        self._clock = clock
        self.records: dict[str, TargetRecord] = {}
        self.load = RunnerLoad()
        self._global = asyncio.Semaphore(settings.concurrency)
        self.hosts: dict[str, HostGate] = {}  # by host_key
        self._round_no = 0

    def reconfigure(self, settings: ProbeConfig) -> None:
        """Apply reloaded probe settings from the next round, to the probes too."""
        if settings != self.settings:
            limits_changed = (
                settings.concurrency != self.settings.concurrency
                or settings.per_host_concurrency != self.settings.per_host_concurrency
            )
            self.settings = settings
            if limits_changed:
                self._global = asyncio.Semaphore(settings.concurrency)
                # New slots, and no host stays judged down by the old settings.
                self.hosts.clear()
        for probe in self._probes.values():
            probe.reconfigure(settings)

    async def close(self) -> None:
        """Close every probe's shared clients."""
        for probe in self._probes.values():
            await probe.close()

    def make_all_due(self) -> None:
        """Probe every target in the next round (after a reload changed credentials)."""
        for record in self.records.values():
            record.next_due = 0.0

    def forget_missing(self, targets: Iterable[Target]) -> None:
        """Drop records of targets (and gates of hosts, and what each probe
        keeps per target) that no longer exist."""
        targets = tuple(targets)
        present = frozenset(t.id for t in targets)
        for target_id in list(self.records.keys() - present):
            del self.records[target_id]
        for probe in self._probes.values():
            probe.prune(present)
        hosts = {host_key(t) for t in targets}
        for key in list(self.hosts.keys() - hosts):
            if not self.hosts[key].trial.locked():
                del self.hosts[key]

    async def run_round(self, targets: Sequence[Target]) -> RoundSummary:
        """Probe every due, probeable target once; the round ends with its last."""
        started = self._monotonic()
        self._round_no += 1
        round_no = self._round_no
        fd_exhausted = self.load.fd_exhausted
        probeable = [t for t in targets if self.can_probe(t)]
        due = [
            t
            for t in probeable
            if self.records.get(t.id, TargetRecord()).next_due <= started
        ]
        skipped = len(probeable) - len(due)
        budget = round_budget(due, self.settings)
        results = await asyncio.gather(
            *(self._limited(t, started, round_no) for t in due)
        )
        reasons = Counter(str(r.reason) for r in results if r.reason is not None)
        duration = self._monotonic() - started
        load = self.load
        load.rounds += 1
        load.last_round_duration = duration
        load.last_round_budget = budget
        overran = duration > self.settings.interval
        if overran:
            load.rounds_overrun += 1
        if load.fd_exhausted > fd_exhausted:
            self._log.error(
                "probe.fd_exhausted",
                probes=load.fd_exhausted - fd_exhausted,
                hint="the monitor ran out of file descriptors: those stores keep "
                "their previous verdict; raise the limit (ulimit -n, "
                "LimitNOFILE) or lower probe.concurrency or server.max_connections",
            )
        return RoundSummary(
            probed=len(due),
            failed=sum(reasons.values()),
            skipped=skipped,
            duration=duration,
            reasons=dict(reasons),
            host_level=sum(1 for r in results if r.host_level),
            hosts_down=sum(1 for g in self.hosts.values() if g.down_round == round_no),
            budget=budget,
            overran=overran,
        )

    def can_probe(self, target: Target) -> bool:
        """True when the target is fully known and a probe exists for its kind."""
        return target.probeable and target.kind in self._probes

    def _gate(self, target: Target) -> HostGate:
        key = host_key(target)
        gate = self.hosts.get(key)
        if gate is None:
            gate = self.hosts[key] = HostGate(
                asyncio.Semaphore(self.settings.per_host_concurrency)
            )
        return gate

    async def _limited(
        self, target: Target, round_started: float, round_no: int
    ) -> ProbeResult:
        gate = self._gate(target)
        self.load.pending += 1
        try:
            # The host's slot first: a hung host's queue waits here, not in
            # the global limit, so it never starves the other hosts.
            async with gate.slots:
                result = None
                if gate.is_down():
                    # Down: one trial probe at a time, until the host answers.
                    async with gate.trial:
                        down = gate.down
                        if down is not None and gate.down_round == round_no:
                            result = self._host_level(target, down)
                        elif down is not None:
                            result = await self._judged(target, gate, round_no)
                        # else it answered while this probe waited: probe freely
                if result is None:
                    result = await self._judged(target, gate, round_no)
        finally:
            self.load.pending -= 1
        self._record(target, result, round_started)
        return result

    async def _judged(
        self, target: Target, gate: HostGate, round_no: int
    ) -> ProbeResult:
        """Probe `target` under a global slot; its result judges the host."""
        async with self._global:
            self.load.in_flight += 1
            try:
                result = await self.probe(target)
            finally:
                self.load.in_flight -= 1
        was_down = gate.down is not None
        gate.judge(result, round_no)
        if gate.down is not None and not was_down:
            self._log.warning(
                "probe.host_down",
                host=host_key(target),
                reason=str(result.reason),
                error=result.error,
                hint="the host's other stores in this round take this result",
            )
        elif was_down and gate.down is None:
            self._log.info("probe.host_recovered", host=host_key(target))
        return result

    def _host_level(self, target: Target, failure: ProbeResult) -> ProbeResult:
        """This store's result when its host already failed this round."""
        assert failure.reason is not None  # noqa: S101 -- a host is down for a reason
        address = target.address or host_key(target)
        message = (
            f"host-level: {address} failed at the connection level for another "
            f"store in this round ({failure.error}); not probed again"
        )
        return Recorder().failure(
            failure.reason,
            message,
            self._clock(),
            steps=(Step("host", 0.0, False, message),),
            tls_not_after=failure.tls_not_after,
            host_level=True,
        )

    async def probe(self, target: Target) -> ProbeResult:
        """Probe `target` under the per-probe deadline; store trouble is returned."""
        timeout = self.settings.timeout
        recorder = Recorder(timeout)
        try:
            async with asyncio.timeout(timeout):
                return await self._probes[target.kind].run(target, recorder)
        except TimeoutError:
            phase = recorder.current or "connect"
            reason = Reason.TIMEOUT
            message = f"no answer within {timeout:g}s (during {phase})"
            if phase == "tls":
                # A plain port answers nothing to a TLS ClientHello: it waits
                # for a newline that never comes.
                reason = Reason.TLS_HANDSHAKE
                message = f"no TLS handshake within {timeout:g}s (a plain port?)"
            steps = (*recorder.steps, Step(phase, recorder.elapsed(), False, message))
            return recorder.failure(reason, message, self._clock(), steps=steps)
        except MonitorResourceError as err:
            self.load.fd_exhausted += 1
            message = f"not probed: {err}"
            return replace(
                recorder.failure(Reason.OTHER, message, self._clock()),
                monitor_fault=True,
            )
        except Exception as err:  # noqa: BLE001 -- a probe bug must not end the round
            # A bug of the monitor, not the store's doing. The log's
            # processors make it one line, type and redacted message, above
            # debug level, and a traceback without local variables at debug.
            self._log.error("probe.crashed", integration_id=target.id, exc_info=err)
            message = f"internal error: {type(err).__name__}: {err}"
            return recorder.failure(Reason.OTHER, message, self._clock())

    def _record(
        self, target: Target, result: ProbeResult, round_started: float
    ) -> None:
        if result.monitor_fault:
            # No verdict on the store: keep the previous one, and try again
            # next round (no failure counted, no backoff).
            record = self.records.get(target.id)
            if record is not None:
                record.next_due = round_started + 0.5 * self.settings.interval
            return
        record = self.records.setdefault(target.id, TargetRecord())
        previous = record.result
        self._log.debug(
            "probe.result",
            integration_id=target.id,
            address=target.address,
            reason=None if result.reason is None else str(result.reason),
            error=result.error,
            duration=round(result.duration, 6),
        )
        if (
            result.reason is not None
            and result.tls_not_after is None
            and previous is not None
            and previous.tls_not_after is not None
        ):
            # A failure that read no certificate keeps the last known expiry:
            # the series must not vanish while the store is failing.
            result = replace(result, tls_not_after=previous.tls_not_after)
        record.result = result
        stale_after = (
            self.settings.stale_after
            if target.stale_after is None
            else target.stale_after
        )
        if result.sdk_status(result.finished_at, stale_after, target.sdk)[0]:
            record.last_available = result
        interval = self.settings.interval
        if result.ok:
            if record.consecutive_failures:
                self._log.info(
                    "probe.recovered",
                    integration_id=target.id,
                    after_failures=record.consecutive_failures,
                )
            record.consecutive_failures = 0
            record.backoff = 0.0
            record.last_success = result.finished_at
        else:
            assert result.reason is not None  # noqa: S101 -- not ok means a reason
            record.failures[result.reason] += 1
            record.consecutive_failures += 1
            if result.reason in HOST_LEVEL_REASONS:
                # The host's gate already limits a dead host to one probe per
                # round; no back-off, so its stores come back with the host.
                record.backoff = 0.0
            else:
                factor = min(
                    2 ** (record.consecutive_failures - 1), MAX_BACKOFF_INTERVALS
                )
                record.backoff = interval * (factor - 1)
            # Quiet under failure: log only when failing starts or its reason
            # changes; a host-level result is logged once, for the host.
            if not result.host_level and (
                previous is None or previous.reason != result.reason
            ):
                self._log.warning(
                    "probe.failed",
                    integration_id=target.id,
                    reason=str(result.reason),
                    error=result.error,
                    address=target.address,
                )
        # Due in the round that starts one interval (plus any backoff) after
        # this one; half an interval of slack absorbs scheduling jitter.
        record.next_due = round_started + interval + record.backoff - 0.5 * interval

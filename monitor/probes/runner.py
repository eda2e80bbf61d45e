"""Probe rounds: every due target once, bounded, isolated, each under its deadline.

- A global and a per-host limit on probes in flight, so neither the monitor
  nor any one store is flooded.
- Each probe runs under `probe.timeout` (counted from when it starts, not
  from when it was queued), so a hung store costs one timeout and never
  delays the others.
- A target that keeps failing is probed with backoff, capped at a few
  intervals; a success brings it straight back to the normal cadence.
- Results are stored per target as they complete: `/metrics` always answers
  from the latest results without waiting for a round to end.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from monitor.config import ProbeConfig, Sdk
from monitor.probes.profiles import profile_of
from monitor.probes.result import Probe, ProbeResult, Reason, Recorder, Step
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
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def reconfigure(self, settings: ProbeConfig) -> None:
        """Apply reloaded probe settings from the next round, to the probes too."""
        if settings != self.settings:
            self.settings = settings
            self._global = asyncio.Semaphore(settings.concurrency)
            self._hosts.clear()
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
        """Drop records of targets that no longer exist, so their series go."""
        present = {t.id for t in targets}
        for target_id in list(self.records.keys() - present):
            del self.records[target_id]

    async def run_round(self, targets: Sequence[Target]) -> RoundSummary:
        """Probe every due, probeable target once."""
        started = self._monotonic()
        probeable = [t for t in targets if self.can_probe(t)]
        due = [
            t
            for t in probeable
            if self.records.get(t.id, TargetRecord()).next_due <= started
        ]
        skipped = len(probeable) - len(due)
        results = await asyncio.gather(*(self._limited(t, started) for t in due))
        reasons = Counter(str(r.reason) for r in results if r.reason is not None)
        return RoundSummary(
            probed=len(due),
            failed=sum(reasons.values()),
            skipped=skipped,
            duration=self._monotonic() - started,
            reasons=dict(reasons),
        )

    def can_probe(self, target: Target) -> bool:
        """True when the target is fully known and a probe exists for its kind."""
        return target.probeable and target.kind in self._probes

    async def _limited(self, target: Target, round_started: float) -> ProbeResult:
        host = self._hosts.setdefault(
            host_key(target), asyncio.Semaphore(self.settings.per_host_concurrency)
        )
        async with self._global, host:
            result = await self.probe(target)
        self._record(target, result, round_started)
        return result

    async def probe(self, target: Target) -> ProbeResult:
        """Probe `target` under the per-probe deadline; store trouble is returned."""
        recorder = Recorder()
        timeout = self.settings.timeout
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
        except Exception as err:  # noqa: BLE001 -- a probe bug must not end the round
            self._log.exception("probe.crashed", integration_id=target.id)
            message = f"internal error: {type(err).__name__}: {err}"
            return recorder.failure(Reason.OTHER, message, self._clock())

    def _record(
        self, target: Target, result: ProbeResult, round_started: float
    ) -> None:
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
            factor = min(2 ** (record.consecutive_failures - 1), MAX_BACKOFF_INTERVALS)
            record.backoff = interval * (factor - 1)
            # Quiet under failure: log only when failing starts or its reason changes.
            if previous is None or previous.reason != result.reason:
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

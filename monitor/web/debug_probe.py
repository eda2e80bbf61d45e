"""On-demand debug probe: `GET /probe?integration_id=…` runs one probe now.

Like blackbox_exporter's debug output: every step with its timing and
outcome, as JSON, next to the result as a `/status` row's `probe` would show
it (`ProbeView`). It never touches the metrics (the scheduled rounds own
those), and it is rate-limited so that a reload-happy browser tab or a
script cannot turn the monitor into a load generator against a store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.export.report import probe_view
from monitor.probes.runner import ProbeRunner, TargetRecord
from monitor.service.state import MonitorState

# At most one debug probe of a target every TARGET_GAP seconds, and at most
# BURST debug probes in any WINDOW seconds overall.
TARGET_GAP = 2.0
BURST = 10
WINDOW = 60.0


@dataclass(frozen=True, slots=True)
class DebugReply:
    """HTTP status, JSON body and an optional Retry-After."""

    status: int
    body: dict[str, Any]
    retry_after: float | None = None


class DebugProber:
    """Runs rate-limited one-off probes and describes them step by step."""

    def __init__(
        self,
        state: MonitorState,
        runner: ProbeRunner | None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._runner = runner
        self._monotonic = monotonic
        self._recent: list[float] = []
        self._last_by_target: dict[str, float] = {}
        self._lock = asyncio.Lock()

    def _limit(self, target_id: str) -> float | None:
        """Seconds to wait before this probe is allowed, or None when it is."""
        now = self._monotonic()
        self._recent = [t for t in self._recent if now - t < WINDOW]
        waits = []
        last = self._last_by_target.get(target_id)
        if last is not None and now - last < TARGET_GAP:
            waits.append(TARGET_GAP - (now - last))
        if len(self._recent) >= BURST:
            waits.append(WINDOW - (now - self._recent[0]))
        if waits:
            return max(waits)
        self._recent.append(now)
        self._last_by_target[target_id] = now
        return None

    async def run(self, integration_id: str | None) -> DebugReply:
        """Probe the target with this id (an integration `_id` or a static name)."""
        if not integration_id:
            return DebugReply(
                400,
                {"error": "give ?integration_id=<integration _id or target name>"},
            )
        target = next((t for t in self._state.targets if t.id == integration_id), None)
        if target is None:
            return DebugReply(404, {"error": f"no target {integration_id!r}"})
        runner = self._runner
        if runner is None or not runner.can_probe(target):
            problem = target.problem or f"no probe for {target.kind} stores"
            return DebugReply(
                409, {"error": f"cannot probe {integration_id!r}: {problem}"}
            )
        wait = self._limit(integration_id)
        if wait is not None:
            return DebugReply(
                429, {"error": f"rate limited: try again in {wait:.1f}s"}, wait
            )
        async with self._lock:  # one debug probe at a time
            result = await runner.probe(target)
        # The failure counters are the scheduled rounds': this probe is not one.
        record = self._state.records.get(target.id) or TargetRecord()
        view = probe_view(
            result,
            record,
            time.time(),
            self._state.stale_after_of(target),
            target.sdk,
        )
        return DebugReply(
            200,
            {
                "target": {
                    "id": target.id,
                    "kind": target.kind,
                    "source": target.source,
                    "project": target.labels.project,
                    "environment": target.labels.environment,
                    "address": target.address,
                    "prefix": target.prefix,
                },
                "result": {"ok": result.ok, **view.to_json()},
                "steps": [
                    {
                        "step": s.name,
                        "seconds": round(s.seconds, 6),
                        "ok": s.ok,
                        "detail": s.detail,
                    }
                    for s in result.steps
                ],
            },
        )

"""The runner's per-host judgement, with a scripted probe (no network).

A host whose probes fail at the connection level is judged once per round:
its queued probes take the failure at once, later rounds send one trial
probe at a time, and an answer brings every store of the host back in the
same round. A hung host's queue waits for its own slots, never for global
ones, so healthy hosts are probed while it hangs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Set

import structlog

from monitor.config import ProbeConfig
from monitor.probes.result import ProbeResult, Reason, Recorder
from monitor.probes.runner import ProbeRunner, host_key, round_budget
from monitor.targets import RedisEndpoint, Target
from tests.support.clock import FakeClock
from tests.support.targets import static_target

TIMEOUT = 0.2


class ScriptedProbe:
    """Answers at once, refuses, or hangs, per host; counts the probes run."""

    def __init__(self) -> None:
        self.mode: dict[str, str] = {}
        self.calls: Counter[str] = Counter()
        self.finished: list[str] = []
        self.hanging = 0  # probes hanging now
        self.finished_while_hanging = 0

    def reconfigure(self, settings: ProbeConfig) -> None:
        """Nothing to reconfigure."""

    def prune(self, present: Set[str]) -> None:
        """Nothing kept per target."""

    async def close(self) -> None:
        """Nothing to close."""

    async def run(self, target: Target, recorder: Recorder) -> ProbeResult:
        """The scripted outcome for the target's host."""
        host = host_key(target)
        self.calls[host] += 1
        mode = self.mode.get(host, "ok")
        if mode == "hang":
            recorder.begin("auth")
            self.hanging += 1
            try:
                await asyncio.sleep(3600)
            finally:
                self.hanging -= 1
        if mode == "refuse":
            recorder.begin("connect")
            return recorder.failure(Reason.REFUSED, "connection refused", 0.0)
        if mode == "auth":
            return recorder.failure(Reason.AUTH, "WRONGPASS", 0.0)
        self.finished.append(target.id)
        self.finished_while_hanging += self.hanging > 0
        return ProbeResult(
            finished_at=0.0,
            duration=0.0,
            up=True,
            read_ok=True,
            schema_ok=True,
            synchronized_on_ms=1,
            membership_read_ok=True,
        )


def targets_on(port: int, count: int, name: str) -> list[Target]:
    """`count` targets sharing the host 127.0.0.1:`port`."""
    endpoint = RedisEndpoint(host="127.0.0.1", port=port)
    return [static_target(endpoint, f"{name}{i}") for i in range(count)]


def make_runner(
    probe: ScriptedProbe, concurrency: int = 4, per_host: int = 2
) -> tuple[ProbeRunner, FakeClock]:
    """A runner over `probe` with a small global and per-host limit."""
    clock = FakeClock()
    settings = ProbeConfig(
        interval=10,
        timeout=TIMEOUT,
        concurrency=concurrency,
        per_host_concurrency=per_host,
    )
    runner = ProbeRunner(
        {"redis": probe}, settings, structlog.get_logger("test"), monotonic=clock
    )
    return runner, clock


async def test_a_dead_host_is_judged_once_per_round_then_tried_once() -> None:
    """Round 1: the slots in flight time out, the rest resolve at once; round 2: one trial."""
    probe = ScriptedProbe()
    dead = targets_on(1, 10, "d")
    host = host_key(dead[0])
    probe.mode[host] = "hang"
    runner, clock = make_runner(probe)

    summary = await runner.run_round(dead)
    assert probe.calls[host] == 2  # the two per-host slots in flight
    assert summary.reasons == {"timeout": 10}
    assert summary.host_level == 8
    assert summary.hosts_down == 1
    assert runner.hosts[host].down is not None
    for target in dead:
        record = runner.records[target.id]
        assert record.backoff == 0.0  # the gate, not a back-off, limits the host

    clock.advance(10)
    summary = await runner.run_round(dead)
    assert probe.calls[host] == 3  # one trial probe
    assert summary.host_level == 9

    probe.mode[host] = "ok"
    clock.advance(10)
    summary = await runner.run_round(dead)
    assert summary.failed == 0  # the trial answered: every store probed again
    assert probe.calls[host] == 13
    assert runner.hosts[host].down is None


async def test_per_store_failures_do_not_put_the_host_down() -> None:
    """Authentication fails per store: every store is probed, with its own back-off."""
    probe = ScriptedProbe()
    stores = targets_on(2, 6, "a")
    host = host_key(stores[0])
    probe.mode[host] = "auth"
    runner, _ = make_runner(probe)
    summary = await runner.run_round(stores)
    assert probe.calls[host] == 6
    assert summary.host_level == 0
    assert runner.hosts[host].down is None


async def test_a_refused_host_resolves_its_queue_without_waiting() -> None:
    """A refusal is connection-level too: one probe per slot in flight, then the rest."""
    probe = ScriptedProbe()
    stores = targets_on(3, 12, "r")
    host = host_key(stores[0])
    probe.mode[host] = "refuse"
    runner, _ = make_runner(probe, per_host=1)
    summary = await runner.run_round(stores)
    assert probe.calls[host] == 1
    assert summary.reasons == {"refused": 12}
    assert summary.host_level == 11


async def test_a_hung_host_never_holds_global_slots_a_healthy_host_needs() -> None:
    """Per-host slot first: with the global limit 2 and a hung host of 20, the healthy host finishes first."""
    probe = ScriptedProbe()
    hung = targets_on(4, 20, "h")
    healthy = targets_on(5, 20, "ok")
    probe.mode[host_key(hung[0])] = "hang"
    runner, _ = make_runner(probe, concurrency=2, per_host=1)
    # Hung targets first in the list: they queue first.
    summary = await runner.run_round([*hung, *healthy])
    assert summary.reasons == {"timeout": 20}
    assert set(probe.finished) == {t.id for t in healthy}
    # Every healthy probe ran while the hung one was still hanging.
    assert probe.finished_while_hanging == len(healthy)
    assert probe.calls[host_key(hung[0])] == 1


def test_round_budget_follows_the_slower_of_the_two_limits() -> None:
    """Waves behind the global limit or behind the busiest host, times the timeout."""
    settings = ProbeConfig(
        interval=30, timeout=2, concurrency=64, per_host_concurrency=16
    )
    one_host = targets_on(6, 300, "x")
    assert round_budget(one_host, settings) == 19 * 2.0  # ceil(300 / 16)
    spread = [t for port in range(100, 120) for t in targets_on(port, 10, f"p{port}-")]
    assert round_budget(spread, settings) == 4 * 2.0  # ceil(200 / 64)
    assert round_budget([], settings) == 0.0


async def test_forgotten_hosts_lose_their_gate() -> None:
    """A host with no targets left is not kept (nor reported down)."""
    probe = ScriptedProbe()
    stores = targets_on(7, 2, "f")
    probe.mode[host_key(stores[0])] = "refuse"
    runner, _ = make_runner(probe)
    await runner.run_round(stores)
    assert host_key(stores[0]) in runner.hosts
    runner.forget_missing([])
    assert runner.hosts == {}
    assert runner.records == {}

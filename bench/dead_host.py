"""A probe round with 10 % of the Redis hosts dead, against the same round without them.

N integrations spread round-robin over ten hosts: nine password-protected
redis-servers and one dead host, a socket that listens and never accepts
(connections complete in the kernel's backlog, then nothing answers: the
worst kind of dead host, every probe waits for its timeout). The monitor
runs with its default limits (64 global, 16 per host) and `probe.timeout`
1 s.

- floor: one round over the nine healthy hosts' integrations only (the same
  work with the dead host removed);
- dead host, first round: the dead host's gate reset, as if it had just
  died: its 16 probes in flight wait their timeout, the rest of its queue
  resolves at once from the first failure;
- dead host, later rounds: the host already judged down: one trial probe.

Target (issue 13): a round with the dead host within 1.5 x the floor plus
one timeout. Every dead-host integration must come back failed with a
connection-level reason and every healthy one succeed, or the run fails.

    .venv/bin/python -m bench.dead_host [--quick] [--smoke] [--repeat 5] [--json]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.fleet import (
    config_document,
    load_config,
    opened_monitor,
    redis_fleet,
    served_simulator,
)
from bench.harness import Options, Report, parse_options, progress, ratios
from bench.stores import RedisStores
from devtools.servers.ports import dead_listener
from monitor.daemon import freeze_startup_objects
from monitor.probes.result import HOST_LEVEL_REASONS
from monitor.probes.runner import ProbeRunner, RoundSummary, host_key
from monitor.targets import Target

HEALTHY_HOSTS = 9  # and one dead: 10 % of the hosts
TIMEOUT = 1.0
TARGET_FACTOR = 1.5


async def timed_round(
    runner: ProbeRunner, targets: Sequence[Target], *, fresh_host: str | None = None
) -> tuple[float, RoundSummary]:
    """One round over `targets`, all due; `fresh_host` forgets its judgement first."""
    runner.make_all_due()
    if fresh_host is not None:
        runner.hosts.pop(fresh_host, None)
    started = time.perf_counter()
    summary = await runner.run_round(targets)
    return time.perf_counter() - started, summary


def check(summary: RoundSummary, probed: int, failed: int) -> None:
    """Every dead-host target failed at the host; every other one succeeded."""
    host_failures = sum(
        count
        for reason, count in summary.reasons.items()
        if reason in HOST_LEVEL_REASONS
    )
    if summary.probed != probed or summary.failed != failed or host_failures != failed:
        raise RuntimeError(f"round went wrong: {summary}")


async def measure(
    size: int, redis: RedisStores, options: Options, report: Report
) -> None:
    """One size: floor, first and later dead-host rounds, `repeat` times each."""
    dead = dead_listener()
    try:
        dead_port = dead.getsockname()[1]
        stores = redis_fleet(size, [*redis.ports, dead_port])
        redis.populate((s.prefix, s.port) for s in stores if s.port != dead_port)
        async with served_simulator(stores) as api:
            config = load_config(
                config_document(
                    api.url, probe={"health_interval": "1h", "timeout": TIMEOUT}
                )
            )
            async with opened_monitor(config) as monitor:
                outcome = await monitor.discover()
                if outcome is None or not outcome.ok:
                    raise RuntimeError(f"discovery went wrong: {outcome}")
                targets = monitor.state.targets
                dead_key = f"redis:127.0.0.1:{dead_port}"
                healthy = [t for t in targets if host_key(t) != dead_key]
                n_dead = len(targets) - len(healthy)
                runner = monitor.runner
                progress(f"N={size}: warm-up ({n_dead} integrations on the dead host)")
                await timed_round(runner, healthy)
                await timed_round(runner, targets)
                freeze_startup_objects()
                floor: list[float] = []
                first: list[float] = []
                later: list[float] = []
                for i in range(options.repeat):
                    wall, summary = await timed_round(runner, healthy)
                    check(summary, len(healthy), 0)
                    floor.append(wall)
                    wall, summary = await timed_round(
                        runner, targets, fresh_host=dead_key
                    )
                    check(summary, len(targets), n_dead)
                    first.append(wall)
                    wall, summary = await timed_round(runner, targets)
                    check(summary, len(targets), n_dead)
                    later.append(wall)
                    ms = [round(w[-1] * 1000) for w in (floor, first, later)]
                    progress(
                        f"N={size} repeat {i + 1}: floor {ms[0]} ms, "
                        f"first {ms[1]} ms, later {ms[2]} ms"
                    )
    finally:
        dead.close()
    report.add(f"floor (healthy hosts only) N={size}", [w * 1000 for w in floor], "ms")
    report.add(f"dead host, first round N={size}", [w * 1000 for w in first], "ms")
    report.add(f"dead host, later rounds N={size}", [w * 1000 for w in later], "ms")
    bound = [f + TIMEOUT for f in floor]
    for name, walls in (("first round", first), ("later rounds", later)):
        figure = report.add(
            f"dead host {name} / (floor + timeout) N={size}",
            ratios(walls, bound),
            "x",
            target=f"<= {TARGET_FACTOR}",
        )
        figure.met = figure.median <= TARGET_FACTOR


def _sizes(options: Options) -> list[int]:
    if options.smoke:
        return [20]
    if options.quick:
        return [1000]
    return [1000, 5000]


async def main(options: Options) -> Report:
    """Every size; the report."""
    sizes = _sizes(options)
    report = Report(
        "dead_host",
        "a probe round with 10 % of the Redis hosts dead vs the round without them",
        options,
        parameters={
            "N": "/".join(str(s) for s in sizes),
            "hosts": f"{HEALTHY_HOSTS} redis-servers + 1 dead (listens, never accepts)",
            "concurrency": 64,
            "per_host": 16,
            "timeout_s": TIMEOUT,
        },
    )
    with tempfile.TemporaryDirectory(prefix="bench-dead-") as tmp:
        redis = RedisStores(Path(tmp), count=HEALTHY_HOSTS)
        try:
            for size in sizes:
                await measure(size, redis, options, report)
        finally:
            redis.stop()
    report.note(
        "target: a round with the dead host within 1.5 x (floor + one timeout); "
        "ratios pair each dead-host round with the floor round before it"
    )
    return report


if __name__ == "__main__":
    opts = parse_options(__doc__.splitlines()[0] if __doc__ else "dead_host")
    asyncio.run(main(opts)).emit()

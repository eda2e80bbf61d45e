"""One Redis probe round of the monitor against the floor of the same network work.

N integrations served by the API simulator, their prefixes spread over four
password-protected redis-servers. The monitor (`Monitor.probe_round()`, the
default concurrency 64 and per-host 16; 16 x 4 hosts = 64) probes every
target once; the floor does the same network work in a minimal asyncio
script: per target, open a TCP connection, AUTH (one round trip, as the
monitor waits for it too), TYPE + GET + SMEMBERS (the membership read)
pipelined, close; raw
`asyncio.open_connection` and hand-written RESP, the same global and per-host
limits acquired in the same order, targets in the same order.

Health reads (INFO and the SCAN membership sample) run on a target's first
probe and then every `probe.health_interval`: the warm-up round does them,
`health_interval` is raised to 1 h so that no timed round repeats them, and
INFO commandstats proves that each timed round of either side sent exactly
N AUTH, N TYPE, N GET and N SMEMBERS and nothing else.

    .venv/bin/python -m bench.redis_round [--quick] [--repeat 5] [--json]
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.fleet import (
    Store,
    config_document,
    load_config,
    opened_monitor,
    redis_fleet,
    served_simulator,
)
from bench.harness import (
    Options,
    Report,
    parse_options,
    progress,
    ratios,
    spied,
)
from bench.stores import REDIS_PASSWORD, RedisStores
from monitor.daemon import freeze_startup_objects
from monitor.service.monitor import Monitor
from monitor.store_keys import (
    membership_probe_hash,
    redis_include_key,
    redis_synchronized_on_key,
)

CONCURRENCY = 64  # ProbeConfig's defaults, which the monitor runs with here
PER_HOST = 16
RATIO_TARGET = 1.3
FLAT_TARGET = 1.2  # per-target time at 5,000 at most this times that at 1,000


class FloorError(Exception):
    """The floor met a reply it did not expect."""


def _command(*parts: bytes) -> bytes:
    """One RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


async def _reply(reader: asyncio.StreamReader) -> bytes | None:
    """One simple-string or bulk-string reply."""
    line = await reader.readline()
    kind = line[:1]
    if kind == b"+":
        return line[1:-2]
    if kind == b"$":
        length = int(line[1:-2])
        if length < 0:
            return None
        return (await reader.readexactly(length + 2))[:-2]
    raise FloorError(f"unexpected reply {line!r}")


async def floor_probe(host: str, port: int, password: bytes, prefix: str) -> int:
    """Connect, AUTH, TYPE + GET + SMEMBERS pipelined, close; synchronizedOn."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(_command(b"AUTH", password))
        if await _reply(reader) != b"OK":
            raise FloorError("AUTH refused")
        key = redis_synchronized_on_key(prefix).encode()
        member = redis_include_key(prefix, membership_probe_hash()).encode()
        writer.write(
            _command(b"TYPE", key)
            + _command(b"GET", key)
            + _command(b"SMEMBERS", member)
        )
        kind = await _reply(reader)
        value = await _reply(reader)
        if await reader.readline() != b"*0\r\n":  # the empty set of no one
            raise FloorError(f"SMEMBERS {member!r}: not an empty set")
        if kind != b"string" or value is None:
            raise FloorError(f"{key!r}: {kind!r} {value!r}")
        return int(value)
    finally:
        writer.transport.abort()  # as the monitor closes its probe connections


async def floor_round(stores: list[Store]) -> None:
    """Every target once, global 64 and per host 16, acquired as the runner does."""
    limit = asyncio.Semaphore(CONCURRENCY)
    hosts: dict[int, asyncio.Semaphore] = {}
    password = REDIS_PASSWORD.encode()

    async def one(store: Store) -> int:
        host = hosts.setdefault(store.port, asyncio.Semaphore(PER_HOST))
        async with limit, host:
            return await floor_probe("127.0.0.1", store.port, password, store.prefix)

    await asyncio.gather(*(one(s) for s in stores))


@dataclass
class Sample:
    """One timed round: wall and CPU seconds."""

    wall: float
    cpu: float


async def _timed_monitor(monitor: Monitor, expected: int) -> Sample:
    runner = monitor.runner
    runner.make_all_due()
    wall, cpu = time.perf_counter(), time.process_time()
    summary = await monitor.probe_round()
    sample = Sample(time.perf_counter() - wall, time.process_time() - cpu)
    if summary.probed != expected or summary.failed:
        raise RuntimeError(f"monitor round went wrong: {summary}")
    return sample


async def _timed_floor(stores: list[Store]) -> Sample:
    wall, cpu = time.perf_counter(), time.process_time()
    await floor_round(stores)
    return Sample(time.perf_counter() - wall, time.process_time() - cpu)


async def _profile(
    monitor: Monitor, stores: list[Store], path: Path, rounds: int
) -> None:
    """Sample `rounds` monitor rounds into `path`, as many floor rounds beside it."""
    with spied(path):
        for _ in range(rounds):
            await _timed_monitor(monitor, len(stores))
    with spied(path.with_name(path.name + ".floor")):
        for _ in range(rounds):
            await _timed_floor(stores)


def _check_commands(counts: Counter[str], n: int, side: str) -> None:
    expected = Counter({"auth": n, "type": n, "get": n, "smembers": n})
    if counts != expected:
        raise RuntimeError(f"{side} sent {dict(counts)}, expected {dict(expected)}")


async def measure(
    size: int, redis: RedisStores, options: Options, report: Report
) -> tuple[float, float]:
    """Measure one size; the monitor's and the floor's median time per target."""
    stores = redis_fleet(size, redis.ports)
    redis.populate((s.prefix, s.port) for s in stores)
    async with served_simulator(stores) as api:
        config = load_config(config_document(api.url, probe={"health_interval": "1h"}))
        assert config.probe.concurrency == CONCURRENCY
        assert config.probe.per_host_concurrency == PER_HOST
        async with opened_monitor(config) as monitor:
            outcome = await monitor.discover()
            if outcome is None or not outcome.ok or len(monitor.state.targets) != size:
                raise RuntimeError(f"discovery went wrong: {outcome}")
            # Same order as the runner's: the monitor's own target list.
            by_id = {s.integration_id: s for s in stores}
            ordered = [by_id[t.id] for t in monitor.state.targets]
            progress(f"N={size}: warm-up (health reads cached, floor warmed)")
            await _timed_monitor(monitor, size)
            freeze_startup_objects()  # as the daemon does once it is ready
            await _timed_floor(ordered)
            mon: list[Sample] = []
            flo: list[Sample] = []
            for i in range(options.repeat):
                # Alternate who goes first so that neither always meets the
                # other's TIME_WAIT sockets and cache state.
                sides = ("monitor", "floor") if i % 2 == 0 else ("floor", "monitor")
                for side in sides:
                    redis.reset_stats()
                    if side == "monitor":
                        mon.append(await _timed_monitor(monitor, size))
                    else:
                        flo.append(await _timed_floor(ordered))
                    _check_commands(redis.command_counts(), size, side)
                progress(
                    f"N={size} repeat {i + 1}: monitor {mon[-1].wall * 1000:.1f} ms, "
                    f"floor {flo[-1].wall * 1000:.1f} ms"
                )
            if options.profile is not None and size == _profile_size(options):
                await _profile(monitor, ordered, options.profile, options.repeat)
    mon_wall = [s.wall for s in mon]
    flo_wall = [s.wall for s in flo]
    report.add(f"monitor round N={size}", [w * 1000 for w in mon_wall], "ms")
    report.add(f"floor round N={size}", [w * 1000 for w in flo_wall], "ms")
    ratio = ratios(mon_wall, flo_wall)
    at_target = size == 1000
    figure = report.add(
        f"ratio monitor/floor N={size}",
        ratio,
        "x",
        target=f"<= {RATIO_TARGET}" if at_target else None,
    )
    if at_target:
        figure.met = figure.median <= RATIO_TARGET
    # CPU time of this process: less swayed than wall time by other work on
    # the machine, which delays both sides by however long it holds a core.
    report.add(
        f"CPU ratio monitor/floor N={size}",
        ratios([s.cpu for s in mon], [s.cpu for s in flo]),
        "x",
    )
    per_target = [w / size * 1e6 for w in mon_wall]
    report.add(f"monitor per target N={size}", per_target, "µs")
    report.add(f"floor per target N={size}", [w / size * 1e6 for w in flo_wall], "µs")
    report.add(
        f"monitor CPU per target N={size}", [s.cpu / size * 1e6 for s in mon], "µs"
    )
    report.add(
        f"floor CPU per target N={size}", [s.cpu / size * 1e6 for s in flo], "µs"
    )
    return statistics.median(per_target), statistics.median(
        w / size * 1e6 for w in flo_wall
    )


def _sizes(options: Options) -> list[int]:
    if options.smoke:
        return [5]
    if options.quick:
        return [100, 1000]
    return [100, 1000, 5000]


def _profile_size(options: Options) -> int:
    return max(s for s in _sizes(options) if s <= 1000)


async def main(options: Options) -> Report:
    """Run every size; return the report."""
    sizes = _sizes(options)
    report = Report(
        "redis_round",
        "one Redis probe round: monitor vs floor (raw asyncio + RESP)",
        options,
        parameters={
            "N": "/".join(str(s) for s in sizes),
            "stores": 4,
            "concurrency": CONCURRENCY,
            "per_host": PER_HOST,
            "health_reads": "cached by the warm-up, not in timed rounds",
        },
    )
    per_target: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        redis = RedisStores(Path(tmp))
        try:
            for size in sizes:
                per_target[size] = await measure(size, redis, options, report)
        finally:
            redis.stop()
    if 1000 in per_target and 5000 in per_target:
        growth = per_target[5000][0] / per_target[1000][0]
        report.add(
            "monitor per-target time 5000 / 1000",
            [growth],
            "x",
            target=f"<= {FLAT_TARGET} (flat)",
            met=growth <= FLAT_TARGET,
        )
        # The floor's own growth: what the machine adds (more TIME_WAIT
        # sockets, a larger heap), not the monitor.
        report.add(
            "floor per-target time 5000 / 1000",
            [per_target[5000][1] / per_target[1000][1]],
            "x",
        )
    report.note(
        "each timed round of both sides sent exactly N AUTH + N TYPE + N GET + "
        "N SMEMBERS "
        "(checked with INFO commandstats)"
    )
    report.note("ratios pair each monitor round with the floor round beside it")
    return report


if __name__ == "__main__":
    opts = parse_options(__doc__.splitlines()[0] if __doc__ else "redis_round")
    asyncio.run(main(opts)).emit()

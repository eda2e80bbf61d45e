"""One DynamoDB probe round of the monitor against a raw aiobotocore loop.

200 tables (one target each) on a local moto server running in a child
process. The monitor probes them through `Monitor.probe_round()` (static
targets, the default concurrency 64 and per-host 16: every table sits
behind one endpoint, so 16 in flight). In steady state a probe is two
GetItem, the metadata item and one context's membership item, as an SDK
reads them: DescribeTable is cached for 10 minutes and the membership Query
runs every `probe.health_interval`. The warm-up round does both; the
interval is raised to 1 h so no timed round repeats them.

The floor makes the same steady-state calls: two consistent GetItem per
target, in the same order, through one aiobotocore client with the monitor's client
settings (pool 16, same timeouts and retry mode), 16 at a time. moto counts
requests by operation, which proves that each timed round of either side
sent exactly 2N GetItem (the metadata item and one context's membership
item per target, as an SDK reads them) and nothing else.

    .venv/bin/python -m bench.dynamodb_round [--quick] [--repeat 5] [--json]
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

from aiobotocore.session import AioSession

from bench.fleet import daemon_logging, opened_monitor
from bench.harness import (
    Options,
    Report,
    parse_options,
    progress,
    ratios,
    spied,
)
from bench.stores import AWS_ENV, REGION, MotoProcess
from monitor.config import Config, parse_config
from monitor.daemon import freeze_startup_objects
from monitor.probes.dynamodb.clients import client_config
from monitor.probes.dynamodb.probe import MAX_POOL_CONNECTIONS
from monitor.service.monitor import Monitor
from monitor.store_keys import (
    dynamodb_membership_namespace,
    dynamodb_metadata_key,
    membership_probe_hash,
)

RATIO_TARGET = 1.3


def tables(count: int) -> list[tuple[str, str]]:
    """(table, prefix) of each target."""
    return [(f"bench-bigsegments-{i:04d}", f"bench{i:04d}") for i in range(count)]


def monitor_config(endpoint_url: str, count: int) -> Config:
    """Static DynamoDB targets, the API off, default probe settings but health."""
    return parse_config(
        {
            "api": {"enabled": False},
            "probe": {"health_interval": "1h"},
            "targets": [
                {
                    "kind": "dynamodb",
                    "name": table,
                    "table": table,
                    "region": REGION,
                    "prefix": prefix,
                    "endpoint_url": endpoint_url,
                }
                for table, prefix in tables(count)
            ],
            "server": {"listen": "127.0.0.1:0"},
        },
        env={},
    )


async def floor_round(
    client: Any, targets: list[tuple[str, str]], concurrency: int
) -> None:
    """Per target, `concurrency` at a time, what an SDK reads: the metadata item,
    then one context's membership item (two consistent GetItem, in order)."""
    limit = asyncio.Semaphore(concurrency)
    member = membership_probe_hash()

    async def one(table: str, prefix: str) -> int:
        key = dynamodb_metadata_key(prefix)
        async with limit:
            reply = await client.get_item(
                TableName=table,
                Key={"namespace": {"S": key}, "key": {"S": key}},
                ConsistentRead=True,
            )
            await client.get_item(
                TableName=table,
                Key={
                    "namespace": {"S": dynamodb_membership_namespace(prefix)},
                    "key": {"S": member},
                },
                ConsistentRead=True,
            )
        return int(reply["Item"]["synchronizedOn"]["N"])

    await asyncio.gather(*(one(t, p) for t, p in targets))


async def _timed_monitor(monitor: Monitor, expected: int) -> tuple[float, float]:
    runner = monitor.runner
    runner.make_all_due()
    wall, cpu = time.perf_counter(), time.process_time()
    summary = await monitor.probe_round()
    result = (time.perf_counter() - wall, time.process_time() - cpu)
    if summary.probed != expected or summary.failed:
        raise RuntimeError(f"monitor round went wrong: {summary}")
    return result


async def _timed_floor(
    client: Any, targets: list[tuple[str, str]], concurrency: int
) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await floor_round(client, targets, concurrency)
    return time.perf_counter() - wall, time.process_time() - cpu


def _check(counts: Counter[str], n: int, side: str) -> None:
    # Two per target: the metadata item and one context's membership item.
    if counts != Counter({"GetItem": 2 * n}):
        raise RuntimeError(f"{side} sent {dict(counts)}, expected {2 * n} GetItem")


async def main(options: Options) -> Report:
    """Measure; return the report."""
    count = 5 if options.smoke else 200
    os.environ.update(AWS_ENV)
    report = Report(
        "dynamodb_round",
        "one DynamoDB probe round: monitor vs raw aiobotocore GetItem loop",
        options,
        parameters={
            "N": count,
            "server": "moto (child process)",
            "steady_state": "2 GetItem per target: metadata, one membership item "
            "(DescribeTable, Query cached)",
        },
    )
    targets = tables(count)
    moto = MotoProcess()
    try:
        progress(f"creating {count} tables on moto")
        moto.create_tables(targets)
        config = monitor_config(moto.endpoint_url, count)
        per_host = config.probe.per_host_concurrency
        daemon_logging(config)
        session = AioSession()
        floor_settings = client_config(
            config.probe.timeout, min(per_host, MAX_POOL_CONNECTIONS)
        )
        async with (
            opened_monitor(config) as monitor,
            session.create_client(
                "dynamodb",
                region_name=REGION,
                endpoint_url=moto.endpoint_url,
                config=floor_settings,
            ) as client,
        ):
            progress("warm-up (DescribeTable and Query cached, pools filled)")
            await _timed_monitor(monitor, count)
            freeze_startup_objects()  # as the daemon does once it is ready
            await _timed_floor(client, targets, per_host)
            mon: list[tuple[float, float]] = []
            flo: list[tuple[float, float]] = []
            for i in range(options.repeat):
                sides = ("monitor", "floor") if i % 2 == 0 else ("floor", "monitor")
                for side in sides:
                    moto.reset_counts()
                    if side == "monitor":
                        mon.append(await _timed_monitor(monitor, count))
                    else:
                        flo.append(await _timed_floor(client, targets, per_host))
                    _check(moto.counts(), count, side)
                progress(
                    f"repeat {i + 1}: monitor {mon[-1][0] * 1000:.1f} ms, "
                    f"floor {flo[-1][0] * 1000:.1f} ms"
                )
            if options.profile is not None:
                with spied(options.profile):
                    for _ in range(options.repeat):
                        await _timed_monitor(monitor, count)
            freeze_startup_objects()  # as the daemon does once it is ready
    finally:
        moto.stop()
    report.add(f"monitor round N={count}", [m[0] * 1000 for m in mon], "ms")
    report.add(f"floor round N={count}", [f[0] * 1000 for f in flo], "ms")
    figure = report.add(
        "ratio monitor/floor",
        ratios([m[0] for m in mon], [f[0] for f in flo]),
        "x",
        target=f"<= {RATIO_TARGET}",
    )
    figure.met = figure.median <= RATIO_TARGET
    report.add(
        "CPU ratio monitor/floor", ratios([m[1] for m in mon], [f[1] for f in flo]), "x"
    )
    report.add("monitor per target", [m[0] / count * 1e6 for m in mon], "µs")
    report.add("floor per target", [f[0] / count * 1e6 for f in flo], "µs")
    report.add("monitor CPU per target", [m[1] / count * 1e6 for m in mon], "µs")
    report.add("floor CPU per target", [f[1] / count * 1e6 for f in flo], "µs")
    report.note(
        f"each timed round of both sides sent exactly {2 * count} GetItem, "
        "metadata and membership (counted by the moto child); concurrency 16 "
        "on both sides"
    )
    report.note("CPU figures are this process only; moto's own work runs in its child")
    return report


if __name__ == "__main__":
    opts = parse_options(__doc__.splitlines()[0] if __doc__ else "dynamodb_round")
    asyncio.run(main(opts)).emit()

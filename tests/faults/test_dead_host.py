"""A dead shared host: hundreds of stores on one server that stops answering.

A real daemon probes N stores that share one host, reached through a fault
proxy in a child process (so the proxy keeps its own pace while the daemon's
loop is busy). The host goes from healthy to accepting connections and never
answering. Every store must report `available 0` with a connection-level
reason within one interval plus one timeout (plus a margin for a loaded
machine): the host's queued probes resolve at once from the first failure
(`ProbeResult.host_level`) instead of each waiting its own timeout behind the
per-host limit. When the host answers again, every store must come back
within one interval: the host's trial probe succeeds and its other stores
are probed normally in that same round. The same for a DynamoDB endpoint.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from devtools.servers.moto_server import (
    MotoServer,
    create_bigsegment_table,
    put_metadata,
)
from devtools.servers.ports import dead_listener
from devtools.servers.proxy_process import ProxyProcess
from devtools.servers.redis_server import RedisServer
from monitor.probes.result import HOST_LEVEL_REASONS, ProbeResult, Reason
from monitor.probes.runner import host_key
from tests.support.clock import now_ms
from tests.support.daemon import InProcessDaemon, StartDaemon
from tests.support.plugin import MakeProxyProcess
from tests.support.polling import wait_until
from tests.support.scrape import Scrape

REDIS_STORES = 300
DYNAMODB_STORES = 60
TABLE = "dead-host-bigsegments"
REGION = "us-east-1"
# Scheduling slack on a loaded CI machine; far below another interval.
MARGIN = 1.5


def static_config(targets: list[dict[str, Any]], **probe: float) -> dict[str, Any]:
    """A daemon with the API off watching `targets`; `probe` settings on top."""
    return {
        "api": {"enabled": False},
        "probe": probe,
        "server": {"listen": "127.0.0.1:0"},
        "targets": targets,
    }


def redis_targets(proxy: ProxyProcess) -> list[dict[str, Any]]:
    """N static Redis targets on the proxy's one address."""
    return [
        {
            "kind": "redis",
            "name": f"store-{i}",
            "url": f"redis://{proxy.address}",
            "prefix": f"env{i}",
        }
        for i in range(REDIS_STORES)
    ]


def dynamodb_targets(proxy: ProxyProcess) -> list[dict[str, Any]]:
    """N static DynamoDB targets (one table, N prefixes) on the proxy's endpoint."""
    return [
        {
            "kind": "dynamodb",
            "name": f"table-{i}",
            "table": TABLE,
            "region": REGION,
            "prefix": f"env{i}",
            "endpoint_url": f"http://{proxy.address}",
        }
        for i in range(DYNAMODB_STORES)
    ]


def results(running: InProcessDaemon) -> list[ProbeResult | None]:
    """Every target's latest result, in target order."""
    state = running.daemon.state
    return [
        record.result if (record := state.records.get(t.id)) else None
        for t in state.targets
    ]


def all_available(running: InProcessDaemon, since: float) -> bool:
    """Every store's latest result is newer than `since` and available."""
    state = running.daemon.state
    for target in state.targets:
        record = state.records.get(target.id)
        result = None if record is None else record.result
        if result is None or result.finished_at < since:
            return False
        available, _ = result.sdk_status(
            result.finished_at, state.stale_after_of(target), target.sdk
        )
        if not available:
            return False
    return True


def all_down(running: InProcessDaemon, since: float) -> bool:
    """Every store's latest result is newer than `since` and failed at the host."""
    return all(
        r is not None and r.finished_at >= since and r.reason in HOST_LEVEL_REASONS
        for r in results(running)
    )


async def dies_and_comes_back(
    running: InProcessDaemon,
    proxy: ProxyProcess,
    interval: float,
    timeout: float,
    count: int,
) -> None:
    """The scenario and its assertions, for either kind of store."""
    await wait_until(lambda: all_available(running, 0.0), timeout=30)
    assert len(running.daemon.state.targets) == count

    await proxy.set("accept_hang")
    died = time.time()
    await wait_until(
        lambda: all_down(running, died), timeout=interval + timeout + MARGIN
    )
    down = results(running)
    host_level = sum(1 for r in down if r is not None and r.host_level)
    # All but the probes in flight when the host died resolved from one
    # failure, with the host named in their message.
    assert host_level >= count - running.daemon.config.probe.per_host_concurrency
    assert all(
        (r.error or "").startswith("host-level: ")
        for r in down
        if r is not None and r.host_level
    )
    scrape, _ = await running.scrape()
    assert all(s.value == 0 for s in scrape.find("ld_store_available")), (
        "a store still reports available"
    )
    assert len(scrape.find("ld_store_available")) == count
    gates = running.daemon.state.hosts
    (key,) = {host_key(t) for t in running.daemon.state.targets}
    assert gates[key].down is not None

    await proxy.set("pass")
    back = time.time()
    await wait_until(
        lambda: all_available(running, back), timeout=interval + timeout + MARGIN
    )
    assert gates[key].down is None


async def test_a_dead_redis_host_fails_every_store_within_one_interval(
    redis_plain: RedisServer,
    proxy_process: MakeProxyProcess,
    start_daemon: StartDaemon,
) -> None:
    """300 stores on one Redis host that starts accepting and never answering: all down within interval + timeout, all back within an interval."""
    interval, timeout = 2.0, 0.5
    proxy = await proxy_process(redis_plain.host, redis_plain.client_port)
    synced = str(now_ms())
    with redis_plain.admin() as client:
        pipe = client.pipeline()
        for i in range(REDIS_STORES):
            pipe.set(f"env{i}:big_segments_synchronized_on", synced)
        pipe.execute()
    running = await start_daemon(
        static_config(redis_targets(proxy), interval=interval, timeout=timeout)
    )
    await dies_and_comes_back(running, proxy, interval, timeout, REDIS_STORES)


async def test_a_dead_dynamodb_endpoint_fails_every_table_within_one_interval(
    clean_moto: MotoServer,
    aws_env: None,
    proxy_process: MakeProxyProcess,
    start_daemon: StartDaemon,
) -> None:
    """60 stores behind one DynamoDB endpoint that stops answering: the same promise."""
    # botocore's own timeouts and one retry need 2.5 s (see test_store_faults).
    interval, timeout = 4.0, 2.5
    create_bigsegment_table(clean_moto.endpoint_url, TABLE)
    synced = now_ms()
    for i in range(DYNAMODB_STORES):
        put_metadata(clean_moto.endpoint_url, TABLE, f"env{i}", synced)
    proxy = await proxy_process(clean_moto.host, clean_moto.port)
    running = await start_daemon(
        static_config(dynamodb_targets(proxy), interval=interval, timeout=timeout)
    )
    await dies_and_comes_back(running, proxy, interval, timeout, DYNAMODB_STORES)


async def test_a_round_longer_than_the_interval_is_counted_and_logged(
    start_daemon: StartDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    """One slot, three hung hosts: each round takes three timeouts, longer than the interval; it finishes anyway."""
    interval, timeout = 0.4, 0.3
    listeners = [dead_listener() for _ in range(3)]
    try:
        raw = static_config(
            [
                {
                    "kind": "redis",
                    "name": f"hung-{i}",
                    "url": f"redis://127.0.0.1:{sock.getsockname()[1]}",
                }
                for i, sock in enumerate(listeners)
            ],
            interval=interval,
            timeout=timeout,
            concurrency=1,
        )
        running = await start_daemon(raw)

        def overran(scrape: Scrape) -> bool:
            found = scrape.find("ld_store_probe_rounds_overrun_total")
            return bool(found) and found[0].value >= 1

        scrape = await running.wait_metric(overran, timeout=10)
        # The round was not cut short: every store has its own timeout result.
        for target in running.daemon.state.targets:
            record = running.daemon.state.records[target.id]
            assert record.result is not None
            assert record.result.reason is Reason.TIMEOUT
            assert not record.result.host_level  # three hosts, one store each
        (duration,) = scrape.find("ld_store_probe_round_duration_seconds")
        assert duration.value >= 3 * timeout
    finally:
        for sock in listeners:
            sock.close()
    assert "probe.round_overran" in capsys.readouterr().out

"""Lifecycle under faults: SIGTERM mid-round, liveness that ignores the stores, stuck loops.

`/-/healthy` says whether the daemon's own loops tick, never whether the
stores or the API are up: it must stay 200 with everything down, and turn
503 only when a loop stops ticking.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import yaml

from devtools.ldsim import Simulator
from devtools.servers.ports import free_port
from devtools.servers.redis_server import RedisServer
from monitor.probes.runner import RoundSummary
from tests.support.daemon import (
    STATIC,
    ServeSimulator,
    StartDaemon,
    daemon_config,
    daemon_process,
    log_events,
    scenario,
    seed_store,
)
from tests.support.endpoints import BlackholeServer
from tests.support.plugin import MakeFaultProxy
from tests.support.polling import wait_until


def process_group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (from /proc, no psutil needed)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ")".
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def listening_on(port: int) -> bool:
    """True when some socket listens on 127.0.0.1:`port` (per /proc/net/tcp)."""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
            return True
    return False


async def test_sigterm_during_a_probe_round_exits_cleanly(
    tmp_path: Path, fault_proxy: MakeFaultProxy, closed_port: int
) -> None:
    """SIGTERM while a probe hangs on a blackholed store: exit 0 within 5 s, no child, no listener."""
    proxy = await fault_proxy("127.0.0.1", closed_port)
    proxy.blackhole()
    port = free_port()
    config = {
        "api": {"enabled": False},
        # A probe timeout far longer than the test: only shutdown can end the round.
        "probe": {"interval": "60s", "timeout": "30s"},
        "targets": [
            {"kind": "redis", "name": "hung", "url": f"redis://{proxy.address}"}
        ],
        "server": {"listen": f"127.0.0.1:{port}"},
        "logging": {"format": "json", "level": "info"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    async with daemon_process(path, new_session=True) as process:
        # The probe is in flight once the store has seen its connection.
        await wait_until(lambda: proxy.connections_accepted >= 1, timeout=20)
        assert listening_on(port)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            stdout, stderr = await process.communicate()
        took = time.monotonic() - sent
    log = stderr.decode()
    assert process.returncode == 0, log
    assert took < 5.0
    events = log_events(log)
    assert "probe.round" not in events  # the round was still in flight
    assert events[-1] == "daemon.stopped"
    assert "Traceback" not in log + stdout.decode()
    assert process_group_members(process.pid) == []
    assert not listening_on(port)
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=1),
    ):
        pass


async def test_healthy_stays_200_with_every_store_and_the_api_down(
    redis_plain: RedisServer,
    blackhole: BlackholeServer,
    serve_simulator: ServeSimulator,
    start_daemon: StartDaemon,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A blackholed store and a stalled API for 2.5 s: /-/healthy answers 200 every time."""
    # A small grace makes "healthy" mean something here: a loop that stopped
    # ticking would be reported within this test, not after 30 s.
    monkeypatch.setattr("monitor.service.loops.HEALTH_GRACE", 1.0)
    sim = Simulator(scenario(redis_plain))
    sim.faults.stall = True
    url = await serve_simulator(sim)
    raw = daemon_config(
        f"redis://{blackhole.address}",
        api={"base_url": url, "interval": 0.4, "timeout": 0.2},
        probe={"interval": 0.3, "timeout": 0.1},
    )
    running = await start_daemon(raw)
    started = time.monotonic()
    answers: list[int] = []
    while time.monotonic() - started < 2.5:
        answers.append((await running.get("/-/healthy"))[0])
        await asyncio.sleep(0.05)
    assert set(answers) == {200}
    assert len(answers) > 20
    scrape, _ = await running.scrape()
    assert scrape.value("ld_store_api_up") == 0
    assert scrape.value("ld_store_probe_up", integration_id=STATIC) == 0
    assert (
        scrape.value(
            "ld_store_probe_failures_total", integration_id=STATIC, reason="timeout"
        )
        or 0
    ) >= 1
    assert sim.stats.count("list_integrations", 0) >= 2  # stalled, and retried
    assert running.daemon.loops["probe"].iterations >= 5
    assert running.daemon.loops["discovery"].iterations >= 1


async def test_healthy_turns_503_when_a_loop_is_stuck(
    redis_plain: RedisServer,
    start_daemon: StartDaemon,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A probe round that never ends stalls the loop: 503 naming it, 200 again once it returns.

    The round itself is never cancelled (each probe bounds itself): past the
    loop's deadline only the health check says so.
    """
    monkeypatch.setattr("monitor.service.loops.HEALTH_GRACE", 0.1)
    seed_store(redis_plain)
    raw = daemon_config(
        redis_plain.url,
        api={"enabled": False},
        probe={"interval": 0.3, "timeout": 0.1},
    )
    running = await start_daemon(raw)
    await running.wait_ready()
    assert (await running.get("/-/healthy"))[0] == 200

    release = asyncio.Event()
    swallowed = 0

    async def stuck_round() -> RoundSummary:
        # Counts any cancellation: the probe loop must send none.
        nonlocal swallowed
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                swallowed += 1
        return RoundSummary(probed=0, failed=0, skipped=0, duration=0.0, reasons={})

    loop = running.daemon.loops["probe"]
    monkeypatch.setattr(running.daemon.monitor, "probe_round", stuck_round)
    iterations = loop.iterations
    async with asyncio.timeout(5):
        # Health is only observable over HTTP: poll it.
        while (await running.get("/-/healthy"))[0] == 200:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    status, body = await running.get("/-/healthy")
    assert status == 503
    assert "probe" in body
    assert swallowed == 0  # the round was not cancelled wholesale
    assert loop.iterations in {iterations, iterations + 1}

    release.set()
    await wait_until(lambda: loop.iterations > iterations + 1)
    assert (await running.get("/-/healthy"))[0] == 200

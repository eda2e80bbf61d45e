"""The whole daemon as a subprocess: serves, scrapes parse, SIGTERM exits cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from devtools.ldsim import Scenario, Simulator, SimulatorServer
from devtools.servers.ports import free_port
from monitor.config import parse_config
from monitor.daemon import Daemon
from monitor.log import Redactor
from tests.support.daemon import (
    DaemonProcess,
    InProcessDaemon,
    daemon_process,
    log_events,
)
from tests.support.polling import wait_until
from tests.support.scrape import Scrape

TOKEN = "api-0b1e2c3d-daemon-test-token"
SCENARIO: dict[str, Any] = {
    "token": TOKEN,
    "projects": [
        {"key": "web", "environments": [{"key": "prod", "client_side_id": "cid1"}]}
    ],
    "integrations": [
        {
            "id": "aaaaaaaaaaaaaaaaaaaaaaaa",
            "project": "web",
            "environment": "prod",
            "kind": "redis",
            "name": "r",
            "config": {"host": "127.0.0.1", "port": "1"},
            "status": {"available": True, "lastSync": "-5s"},
        }
    ],
}


@pytest.fixture
async def simulator_url() -> AsyncIterator[str]:
    """The simulator, on loopback."""
    async with SimulatorServer(Simulator(Scenario.from_dict(SCENARIO))) as server:
        yield server.url


@pytest.fixture
async def daemon(simulator_url: str, tmp_path: Path) -> AsyncIterator[DaemonProcess]:
    """`ld-store-monitor run` against the simulator; killed at teardown if still alive."""
    port = free_port()
    config = {
        "api": {"base_url": simulator_url, "interval": "2s", "timeout": "1s"},
        "probe": {"interval": "2s", "timeout": "1s"},
        "server": {"listen": f"127.0.0.1:{port}"},
        "logging": {"format": "json", "level": "debug"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    async with (
        daemon_process(path, {"LD_API_TOKEN": TOKEN}) as process,
        aiohttp.ClientSession() as session,
    ):
        yield DaemonProcess(f"http://127.0.0.1:{port}", session, process)


async def test_daemon_serves_metrics_and_exits_cleanly_on_sigterm(
    daemon: DaemonProcess,
) -> None:
    """Ready, healthy, parseable metrics in both formats, /status JSON; SIGTERM exits 0 within 5 s."""
    session = daemon.session
    await daemon.wait_ready()
    async with session.get(f"{daemon.base}/-/healthy") as resp:
        assert resp.status == 200
    async with session.get(f"{daemon.base}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    families = {f.name: f for f in parse_text(text)}
    assert families["ld_store_api_up"].samples[0].value == 1.0
    info = families["ld_store_integration_info"].samples
    assert [s.labels["integration_id"] for s in info] == ["aaaaaaaaaaaaaaaaaaaaaaaa"]
    openmetrics_accept = (
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    )
    async with session.get(
        f"{daemon.base}/metrics", headers={"Accept": openmetrics_accept}
    ) as resp:
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        om_names = {f.name for f in parse_openmetrics(await resp.text())}  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
    assert {
        "ld_store_api_up",
        "ld_store_integration_info",
        "ld_store_api_requests",
    } <= om_names
    async with session.get(f"{daemon.base}/status") as resp:
        status = json.loads(await resp.text())
    assert [t["id"] for t in status["targets"]] == ["aaaaaaaaaaaaaaaaaaaaaaaa"]
    assert status["api"]["up"] is True
    daemon.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(5):
        stdout, stderr = await daemon.process.communicate()
    assert daemon.process.returncode == 0
    log = stderr.decode()
    events = log_events(log)
    assert "discovery.round" in events
    assert events[-1] == "daemon.stopped"
    assert "Traceback" not in log
    assert TOKEN not in log + stdout.decode()


async def test_sigint_also_stops_the_daemon(daemon: DaemonProcess) -> None:
    """Ctrl-C (SIGINT) stops it the same way, exit 0."""
    await daemon.wait_ready()
    daemon.process.send_signal(signal.SIGINT)
    async with asyncio.timeout(5):
        await daemon.process.communicate()
    assert daemon.process.returncode == 0


async def test_in_process_daemon_leaves_no_task_or_connection(
    simulator_url: str,
) -> None:
    """start() then stop(): every task the daemon made is gone and its HTTP session closed."""
    before = asyncio.all_tasks()
    config = parse_config(
        {
            "api": {"base_url": simulator_url, "interval": 2, "timeout": 1},
            "server": {"listen": "127.0.0.1:0"},
        },
        {"LD_API_TOKEN": TOKEN},
    )
    daemon = Daemon(config, Redactor())
    await daemon.start()
    async with aiohttp.ClientSession() as session:
        await InProcessDaemon.of(daemon, session).wait_ready()
    assert len(asyncio.all_tasks() - before) >= 1  # the discovery loop runs
    await daemon.stop()
    # The simulator's side of the closed keep-alive connection ends a moment later.
    await wait_until(lambda: not (asyncio.all_tasks() - before), timeout=2)
    assert daemon.monitor.client is not None
    assert daemon.monitor.client._session.closed


async def test_daemon_exports_its_saturation_and_event_loop_lag(
    simulator_url: str,
) -> None:
    """Rounds, slots, the refused host, discovery time and the lag sampler reach /metrics."""
    config = parse_config(
        {
            "api": {"base_url": simulator_url, "interval": 2, "timeout": 1},
            "probe": {"interval": 0.3, "timeout": 0.2},
            "server": {"listen": "127.0.0.1:0"},
        },
        {"LD_API_TOKEN": TOKEN},
    )
    async with Daemon(config, Redactor()) as daemon, aiohttp.ClientSession() as session:
        running = InProcessDaemon.of(daemon, session)
        await running.wait_ready()

        def saturation_seen(scrape: Scrape) -> bool:
            rounds = scrape.find("ld_store_probe_rounds_total")
            return bool(rounds and rounds[0].value >= 2) and bool(
                scrape.find("ld_store_event_loop_lag_seconds")
            )

        scrape = await running.wait_metric(saturation_seen)
    (host,) = scrape.find("ld_store_probe_host_up")
    assert host.labels == {"host": "redis:127.0.0.1:1"}  # nothing listens there
    assert host.value == 0
    for name in (
        "ld_store_probe_round_duration_seconds",
        "ld_store_probe_round_budget_seconds",
        "ld_store_discovery_duration_seconds",
        "ld_store_event_loop_lag_seconds",
        "ld_store_event_loop_lag_p99_seconds",
    ):
        (sample,) = scrape.find(name)
        assert 0 <= sample.value < 5, name
    assert scrape.find("ld_store_probe_interval_seconds")[0].value == 0.3
    assert scrape.find("ld_store_probe_round_budget_seconds")[0].value == 0.2
    assert scrape.find("ld_store_probe_rounds_overrun_total")[0].value >= 0
    assert scrape.find("ld_store_probes_queued")[0].value >= 0

"""A storm of SIGHUPs is coalesced: one reload (at most two) and one wake of the loops."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from devtools.servers.ports import free_port
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.log import Redactor
from monitor.service.reload import MIN_RELOAD_GAP
from tests.support.polling import wait_until


def _config(stale_after: str = "5m") -> dict[str, Any]:
    return {
        "api": {"enabled": False},
        "probe": {"interval": "60s", "timeout": "1s", "stale_after": stale_after},
        "targets": [
            {
                "kind": "redis",
                "name": "store",
                "url": f"redis://127.0.0.1:{free_port()}",
            }
        ],
        "server": {"listen": "127.0.0.1:0"},
    }


async def _storm(daemon: Daemon, signals: int, seconds: float) -> None:
    """`signals` SIGHUPs evenly over `seconds` (scheduled, so no drift)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(signals):
        daemon.request_reload("SIGHUP")  # what the SIGHUP handler calls
        await asyncio.sleep(max(0.0, start + (i + 1) * seconds / signals - loop.time()))


async def test_a_sighup_storm_is_one_reload_and_one_wake(tmp_path: Path) -> None:
    """100 SIGHUPs in a second: one or two reloads, the probe loop woken once."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config()))
    async with Daemon(load_config(path), Redactor(), config_path=path) as daemon:
        probe = daemon.loops["probe"]
        await wait_until(lambda: probe.iterations >= 1)
        before = probe.iterations
        await _storm(daemon, 100, 0.9)
        await asyncio.sleep(MIN_RELOAD_GAP + 0.5)
        reloads = daemon.state.config_reloads["success"]
        assert 1 <= reloads <= 2
        assert probe.iterations - before == 1


async def test_a_change_during_the_storm_is_applied_and_wakes_once_more(
    tmp_path: Path,
) -> None:
    """The reload that joins the storm's later requests applies a change made meanwhile."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config()))
    async with Daemon(load_config(path), Redactor(), config_path=path) as daemon:
        probe = daemon.loops["probe"]
        await wait_until(lambda: probe.iterations >= 1)
        before = probe.iterations
        await _storm(daemon, 20, 0.2)
        path.write_text(yaml.safe_dump(_config(stale_after="7m")))
        await _storm(daemon, 20, 0.2)
        await wait_until(lambda: daemon.config.probe.stale_after == 420.0)
        assert daemon.state.config_reloads["success"] == 2
        await wait_until(lambda: probe.iterations - before == 2)
        await asyncio.sleep(0.3)
        assert probe.iterations - before == 2

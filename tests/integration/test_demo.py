"""`make demo` (`python -m devtools.demo`) starts everything, serves, and stops everything on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from devtools.servers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


async def scrape_when_probed(port: int) -> str:
    """Wait for readiness, then return /metrics once every local store was probed."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(30):
        while True:
            async with session.get(f"http://127.0.0.1:{port}/-/ready") as resp:
                if resp.status == 200:
                    async with session.get(
                        f"http://127.0.0.1:{port}/metrics"
                    ) as metrics:
                        text = await metrics.text()
                    if text.count("ld_store_probe_up{") >= 9:
                        return text
            await asyncio.sleep(0.05)


async def test_demo_probes_its_stores_and_stops_on_ctrl_c() -> None:
    """The demo prints its URLs, probes each local store state, exits 0 on SIGINT, leaves no process."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devtools.demo",
        "--listen",
        f"127.0.0.1:{port}",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        cwd=ROOT,  # devtools/ is not installed
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        banner = b""
        async with asyncio.timeout(30):
            while b"Press Ctrl-C" not in banner:
                line = await process.stdout.readline()
                assert line, "demo exited before printing its URLs"
                banner += line
        assert f"http://127.0.0.1:{port}/metrics".encode() in banner
        families = {
            f.name: f
            for f in text_string_to_metric_families(await scrape_when_probed(port))
        }
        info = families["ld_store_integration_info"].samples
        # The bundled scenario's eight integrations, the never-synced Redis
        # and the missing-table DynamoDB among them.
        assert len(info) == 8
        assert {s.labels["project"] for s in info} == {"web", "mobile"}
        available = {
            s.labels["integration_id"]: s.value
            for s in families["ld_store_available"].samples
        }
        stale = {
            s.labels["integration_id"]: s.value
            for s in families["ld_store_stale"].samples
        }
        assert (
            available["65a1c2d3e4f5061728394a01"],
            stale["65a1c2d3e4f5061728394a01"],
        ) == (1.0, 0.0)
        assert (
            available["65a1c2d3e4f5061728394a02"],
            stale["65a1c2d3e4f5061728394a02"],
        ) == (1.0, 1.0)
        assert (
            available["65a1c2d3e4f5061728394a04"] == 0.0
        )  # the monitor's password is wrong
        assert (
            available["65a1c2d3e4f5061728394a07"],
            stale["65a1c2d3e4f5061728394a07"],
        ) == (1.0, 1.0)
        assert (available["relay-proxy-store"], stale["relay-proxy-store"]) == (
            1.0,
            0.0,
        )
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        pgrep = await asyncio.create_subprocess_exec(
            "pgrep", "-f", "ld-store-monitor-demo-", stdout=asyncio.subprocess.PIPE
        )
        leftovers, _ = await pgrep.communicate()
        assert leftovers == b""  # every redis-server the demo started is gone
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()

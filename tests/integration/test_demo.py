"""`ld-store-monitor demo` starts everything, serves, and stops everything on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ports import free_port

pytestmark = pytest.mark.integration


async def test_demo_serves_the_bundled_scenario_and_stops_on_ctrl_c() -> None:
    """The demo prints its URLs, exports every bundled integration and exits 0 on SIGINT."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "demo",
        "--listen",
        f"127.0.0.1:{port}",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
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
        async with aiohttp.ClientSession() as session, asyncio.timeout(30):
            while True:
                async with session.get(f"http://127.0.0.1:{port}/-/ready") as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.05)
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        projects = {
            s.labels["project"] for s in families["ld_store_integration_info"].samples
        }
        assert len(families["ld_store_integration_info"].samples) == 6
        assert projects == {"web", "mobile"}
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()

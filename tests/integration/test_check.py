"""`ld-store-monitor check`: one round, a table or JSON, exit 0/1/2."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.ldsim import Scenario, Simulator, SimulatorServer
from devtools.servers.redis_server import RedisServer

TOKEN = "check-test-token"
CID = "c1d2e3f4a5b6c7d8e9f0a1b2"
KEY = f"{CID}:big_segments_synchronized_on"
INTEGRATION = "0000000000000000000000c1"


@pytest.fixture
async def api_url() -> AsyncIterator[str]:
    """The simulator with one Redis integration in web/prod."""
    scenario = {
        "token": TOKEN,
        "projects": [
            {"key": "web", "environments": [{"key": "prod", "client_side_id": CID}]}
        ],
        "integrations": [
            {
                "id": INTEGRATION,
                "project": "web",
                "environment": "prod",
                "kind": "redis",
                "name": "Web prod Redis",
                "config": {
                    "host": "redis.example.internal",
                    "port": "6379",
                    "tlsEnabled": False,
                },
                "status": {
                    "available": True,
                    "potentiallyStale": False,
                    "lastSync": "-10s",
                },
            }
        ],
    }
    async with SimulatorServer(Simulator(Scenario.from_dict(scenario))) as server:
        yield server.url


def write_config(tmp_path: Path, api_url: str, redis: RedisServer) -> Path:
    """A config whose credential reaches the integration's store on the fixture's port."""
    config: dict[str, Any] = {
        "api": {"base_url": api_url, "interval": "10s", "timeout": "2s"},
        "probe": {"interval": "10s", "timeout": "2s"},
        "credentials": [
            {
                "match": {"integration_id": INTEGRATION},
                "redis": {"address": redis.address},
            }
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def run_check(*args: str, token: str = TOKEN) -> tuple[int, str, str]:
    """Run `ld-store-monitor check` and return (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "check",
        *args,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LD_API_TOKEN": token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_healthy_store_exits_0_with_a_readable_table(
    api_url: str, redis_plain: RedisServer, tmp_path: Path
) -> None:
    """A fresh store: exit 0, a table row with the store address and `healthy`."""
    with redis_plain.admin() as client:
        client.set(KEY, str(int(time.time() * 1000)))
        client.sadd(f"{CID}:big_segment_include:someone", "segment.g1")
    code, out, err = await run_check(
        "--config", str(write_config(tmp_path, api_url, redis_plain))
    )
    assert code == 0, err
    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["PROJECT", "ENVIRONMENT", "KIND", "NAME"]
    assert "SDK" in header.split()
    assert " python " in row  # the default profile
    assert "web" in row
    assert redis_plain.address in row
    assert "healthy" in row
    assert "1 targets, 0 unhealthy" in out


async def test_stale_store_exits_1(
    api_url: str, redis_plain: RedisServer, tmp_path: Path
) -> None:
    """A stale store makes check exit 1 and says stale."""
    with redis_plain.admin() as client:
        client.set(KEY, str(int((time.time() - 3600) * 1000)))
    code, out, _ = await run_check(
        "--config", str(write_config(tmp_path, api_url, redis_plain))
    )
    assert code == 1
    assert "stale" in out.splitlines()[1]


async def test_json_format_carries_the_same_facts(
    api_url: str, redis_plain: RedisServer, tmp_path: Path
) -> None:
    """--format json: the row's probe and API facts, machine-readable."""
    code, out, _ = await run_check(
        "--config",
        str(write_config(tmp_path, api_url, redis_plain)),
        "--format",
        "json",
    )
    assert code == 1  # never synced: available but stale
    report = json.loads(out)
    [row] = report["targets"]
    assert row["id"] == INTEGRATION
    assert row["address"] == redis_plain.address
    assert row["prefix"] == CID
    assert row["probe"]["available"] is True
    assert row["probe"]["stale"] is True
    assert row["api"]["available"] is True
    assert row["verdict"] == "stale"


async def test_unreachable_store_exits_1_with_the_reason(
    api_url: str, closed_port: int, tmp_path: Path
) -> None:
    """A refused connection: exit 1, reason refused and its message under errors."""
    config = {
        "api": {"base_url": api_url},
        "credentials": [
            {
                "match": {"integration_id": INTEGRATION},
                "redis": {"address": f"127.0.0.1:{closed_port}"},
            }
        ],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    code, out, _ = await run_check("--config", str(path))
    assert code == 1
    assert "refused" in out
    assert "errors:" in out


async def test_no_api_access_exits_2(
    api_url: str, redis_plain: RedisServer, tmp_path: Path
) -> None:
    """A token LaunchDarkly refuses: exit 2, a clear message, no token in the output."""
    code, out, err = await run_check(
        "--config",
        str(write_config(tmp_path, api_url, redis_plain)),
        token="api-revoked-token-value",
    )
    assert code == 2
    assert "401" in err
    assert "api-revoked-token-value" not in out + err


async def test_bad_config_exits_2(tmp_path: Path) -> None:
    """An invalid config file: exit 2 with the problem by field path."""
    path = tmp_path / "bad.yaml"
    path.write_text("probe: {interval: never}\n")
    code, _, err = await run_check("--config", str(path))
    assert code == 2
    assert "probe.interval: invalid duration" in err

"""Secret hygiene: no token or password in logs, metrics, /status, the page or check output."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from devtools.ldsim import Scenario, Simulator, SimulatorServer
from devtools.servers.ports import free_port
from devtools.servers.redis_server import RedisServer
from monitor import cli
from tests.support.daemon import daemon_process
from tests.support.plugin import REDIS_PASSWORD

# Distinctive values: any appearance in any output is a leak.
TOKEN = "api-5ec2e7a1-0b0b-4c4c-9d9d-7f7f7f7f7f7f"
WRONG_TOKEN = "api-dead1234-beef-4567-8901-abcdefabcdef"
WRONG_REDIS_PASSWORD = "Zq-wrong-redis-pw-8472"
TLS_TARGET_PASSWORD = "Tls-target-pw-3301"
SDK_KEY = "sdk-0c0ffee0-1111-2222-3333-444444444444"
SECRETS = (
    TOKEN,
    WRONG_TOKEN,
    WRONG_REDIS_PASSWORD,
    TLS_TARGET_PASSWORD,
    REDIS_PASSWORD,
    SDK_KEY,
)
INTEGRATION = "0000000000000000000005ec"


@pytest.fixture
async def api_url(redis_password: RedisServer) -> AsyncIterator[str]:
    """The simulator: one Redis integration whose stored password is a secret too."""
    scenario = {
        "token": TOKEN,
        "projects": [
            {
                "key": "web",
                "environments": [
                    {"key": "prod", "client_side_id": "cid5ec", "api_key": SDK_KEY}
                ],
            }
        ],
        "integrations": [
            {
                "id": INTEGRATION,
                "project": "web",
                "environment": "prod",
                "kind": "redis",
                "name": "secretive",
                "config": {
                    "host": redis_password.host,
                    "port": str(redis_password.port),
                    "username": "default",
                    "password": REDIS_PASSWORD,
                },
                "status": {
                    "available": False,
                    "errors": [{"statusCode": 401, "message": "auth", "timestamp": 1}],
                },
            }
        ],
    }
    async with SimulatorServer(Simulator(Scenario.from_dict(scenario))) as server:
        yield server.url


def write_config(
    tmp_path: Path, api_url: str, redis_tls: RedisServer, port: int
) -> Path:
    """Every failure path at once: wrong Redis password, untrusted TLS with a URL password."""
    config: dict[str, Any] = {
        "api": {"base_url": api_url, "interval": "1s", "timeout": "0.5s"},
        "probe": {"interval": "1s", "timeout": "0.5s"},
        "credentials": [
            {
                "match": {"integration_id": INTEGRATION},
                "redis": {"password": "${WRONG_PW}"},
            }
        ],
        "targets": [
            {
                "kind": "redis",
                "name": "tls-untrusted",
                "url": f"rediss://mon:${{TLS_PW}}@{redis_tls.address}",
            }
        ],
        "server": {"listen": f"127.0.0.1:{port}"},
        "logging": {"level": "debug", "format": "json"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def environment(token: str) -> dict[str, str]:
    """The subprocess environment: secrets only through variables."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LD_API_TOKEN": token,
        "WRONG_PW": WRONG_REDIS_PASSWORD,
        "TLS_PW": TLS_TARGET_PASSWORD,
    }


async def run(*args: str, token: str) -> tuple[int, str]:
    """Run the CLI; return exit code and stdout+stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        *args,
        env=environment(token),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


def assert_no_secret(text: str, where: str) -> None:
    """None of SECRETS appears in `text`."""
    leaked = [secret for secret in SECRETS if secret in text]
    assert leaked == [], f"{where} leaks {leaked}"


async def test_no_secret_in_any_output(
    api_url: str, redis_tls: RedisServer, tmp_path: Path
) -> None:
    """Daemon at debug level through auth, TLS and API failures: logs, endpoints and check are clean."""
    port = free_port()
    path = write_config(tmp_path, api_url, redis_tls, port)
    bodies: dict[str, str] = {}
    async with daemon_process(path, environment(TOKEN)) as process:
        async with aiohttp.ClientSession() as session, asyncio.timeout(30):
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/status") as resp:
                        status = await resp.text()
                    if (
                        '"reason": "auth"' in status
                        and '"reason": "tls_verify"' in status
                    ):
                        break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            for endpoint in ("/metrics", "/status", "/"):
                async with session.get(f"http://127.0.0.1:{port}{endpoint}") as resp:
                    bodies[endpoint] = await resp.text()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            stdout, stderr = await process.communicate()
    logs = stdout.decode() + stderr.decode()
    assert '"level": "debug"' in logs  # debug logging really was on
    assert "probe.failed" in logs
    for where, text in {**bodies, "daemon logs": logs}.items():
        assert_no_secret(text, where)
    for fmt in ("table", "json"):
        code, out = await run(
            "check",
            "--config",
            str(path),
            "--format",
            fmt,
            "--log-level",
            "debug",
            token=TOKEN,
        )
        assert code == 1
        assert "auth" in out
        assert_no_secret(out, f"check --format {fmt}")
    code, out = await run("check", "--config", str(path), token=WRONG_TOKEN)
    assert code == 2
    assert "401" in out
    assert_no_secret(out, "check with a refused token")


def test_crash_output_is_redacted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An unexpected crash prints a traceback with secrets masked, exit 1."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"api": {"token": "${LD_API_TOKEN}"}}))
    monkeypatch.setenv("LD_API_TOKEN", TOKEN)

    def explode(*_: Any, **__: Any) -> int:
        raise RuntimeError(
            f"boom while using {TOKEN} and redis://u:{WRONG_REDIS_PASSWORD}@h"
        )

    monkeypatch.setattr("monitor.daemon.run_daemon", explode)
    code = cli.main(["run", "--config", str(config), "--log-format", "json"])
    captured = capsys.readouterr()
    assert code == 1
    assert "RuntimeError" in captured.err
    assert_no_secret(captured.out + captured.err, "crash output")

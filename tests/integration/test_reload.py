"""Configuration reload: SIGHUP and changed secret files; invalid configs are rejected."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from devtools.servers.ports import free_port
from devtools.servers.redis_server import RedisServer
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.log import Redactor
from tests.support.clock import now_ms
from tests.support.daemon import daemon_process, log_events
from tests.support.plugin import REDIS_PASSWORD
from tests.support.polling import wait_until

KEY = "launchdarkly:big_segments_synchronized_on"


def static_config(
    redis: RedisServer, password_file: Path, **probe: Any
) -> dict[str, Any]:
    """A static-target-only config reading the password from `password_file`."""
    return {
        "api": {"enabled": False},
        "probe": {"interval": "10s", "timeout": "1s", **probe},
        "targets": [
            {
                "kind": "redis",
                "name": "store",
                "url": f"redis://{redis.address}",
                "password_file": str(password_file),
            }
        ],
        "server": {"listen": "127.0.0.1:0"},
    }


@pytest.fixture
async def daemon(
    redis_password: RedisServer, tmp_path: Path
) -> AsyncIterator[tuple[Daemon, Path, Path]]:
    """An in-process daemon over a config file and a password file (initially wrong)."""
    with redis_password.admin() as client:
        client.set(KEY, str(now_ms()))
    secret = tmp_path / "redis-password"
    secret.write_text("wrong-password\n")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(static_config(redis_password, secret)))
    async with Daemon(load_config(path), Redactor(), config_path=path) as instance:
        yield instance, path, secret


def reason_of(daemon: Daemon) -> str | None:
    """The static target's last failure reason (None when healthy or not probed)."""
    record = daemon.state.records.get("store")
    if record is None or record.result is None:
        return "unprobed"
    return None if record.result.reason is None else str(record.result.reason)


async def test_rotated_password_file_is_picked_up_without_restart(
    daemon: tuple[Daemon, Path, Path],
) -> None:
    """Writing the right password into password_file fixes auth on the next round."""
    instance, _, secret = daemon
    await wait_until(lambda: reason_of(instance) == "auth")
    secret.write_text(REDIS_PASSWORD + "\n")
    await instance._watch_step()  # what the config-watch loop does every few seconds
    assert instance.state.config_reload_ok
    await wait_until(lambda: reason_of(instance) is None)


async def test_valid_change_is_swapped_in(
    daemon: tuple[Daemon, Path, Path], redis_password: RedisServer
) -> None:
    """A valid edit (stale_after) takes effect on reload and is reported as successful."""
    instance, path, secret = daemon
    path.write_text(
        yaml.safe_dump(static_config(redis_password, secret, stale_after="7m"))
    )
    assert instance.reload("test")
    assert instance.config.probe.stale_after == 420.0
    assert instance.state.stale_after == 420.0
    assert instance.state.config_reload_ok


async def test_a_reloaded_interval_moves_the_probe_loop_deadline(
    redis_password: RedisServer, daemon: tuple[Daemon, Path, Path]
) -> None:
    """After a reload to a longer interval the probe loop's deadline and health promise follow it."""
    instance, path, secret = daemon
    loop = instance.loops["probe"]
    # One target: the round's worst case is one timeout; then an interval
    # and a timeout more before the loop counts as stuck.
    assert loop.deadline() == 1.0 + 10.0 + 1.0
    path.write_text(
        yaml.safe_dump(
            static_config(redis_password, secret, interval="60s", timeout="3s")
        )
    )
    assert instance.reload("test")
    assert loop.deadline() == 3.0 + 60.0 + 3.0
    # The loop ran again at once (a reload wakes it) and promised its next
    # tick by the new deadline, not the start-time one.
    health = instance.state.loops["probe"]
    await wait_until(lambda: health.expected_by - time.monotonic() > 60.0, timeout=5)
    assert instance.state.healthy()


async def test_invalid_change_is_rejected_and_the_old_config_stays(
    daemon: tuple[Daemon, Path, Path],
) -> None:
    """An invalid file: every problem logged, old config kept, reload metric 0."""
    instance, path, _ = daemon
    before = instance.config
    path.write_text(
        yaml.safe_dump(
            {"api": {"enabled": False}, "probe": {"interval": "soon", "concurrency": 0}}
        )
    )
    with capture_logs() as logs:
        assert not instance.reload("test")
    assert instance.config is before
    [failure] = [entry for entry in logs if entry["event"] == "config.reload_failed"]
    assert failure["problems"] == [
        "probe.interval: invalid duration 'soon': use e.g. 30s, 5m, 1h, 250ms",
        "probe.concurrency: Input should be greater than or equal to 1",
    ]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{instance.port}/metrics") as resp,
    ):
        text = await resp.text()
    values = {
        s.name: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if not s.labels
    }
    assert values["ld_store_config_last_reload_successful"] == 0.0


async def test_sighup_reloads_a_running_daemon(
    redis_plain: RedisServer, tmp_path: Path
) -> None:
    """SIGHUP to the process: a new static target appears; a broken file keeps the daemon up."""
    port = free_port()
    path = tmp_path / "config.yaml"

    def config(targets: list[str]) -> dict[str, Any]:
        return {
            "api": {"enabled": False},
            "probe": {"interval": "1s", "timeout": "0.5s"},
            "targets": [
                {"kind": "redis", "name": name, "url": f"redis://{redis_plain.address}"}
                for name in targets
            ],
            "server": {"listen": f"127.0.0.1:{port}"},
            "logging": {"format": "json"},
        }

    path.write_text(yaml.safe_dump(config(["first"])))
    async with daemon_process(path, stdout=asyncio.subprocess.DEVNULL) as process:
        async with aiohttp.ClientSession() as session:

            async def target_ids() -> set[str]:
                async with session.get(f"http://127.0.0.1:{port}/status") as resp:
                    return {t["id"] for t in json.loads(await resp.text())["targets"]}

            async with asyncio.timeout(20):
                while True:
                    try:
                        if await target_ids() == {"first"}:
                            break
                    except aiohttp.ClientConnectionError:
                        pass
                    await asyncio.sleep(0.05)
            path.write_text(yaml.safe_dump(config(["first", "second"])))
            process.send_signal(signal.SIGHUP)
            async with asyncio.timeout(10):
                while await target_ids() != {"first", "second"}:  # noqa: ASYNC110 -- polls another process
                    await asyncio.sleep(0.05)
            path.write_text("targets: [oops\n")
            process.send_signal(signal.SIGHUP)
            async with asyncio.timeout(10):
                while True:
                    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                        if (
                            "ld_store_config_last_reload_successful 0.0"
                            in await resp.text()
                        ):
                            break
                    await asyncio.sleep(0.05)
            assert await target_ids() == {"first", "second"}
        still_running = process.returncode is None  # a broken config must not stop it
        assert still_running
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            _, stderr = await process.communicate()
        assert process.returncode == 0
        events = log_events(stderr.decode())
        assert "config.reloaded" in events
        assert "config.reload_failed" in events

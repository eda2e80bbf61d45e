"""The daemon's memory against hostile stores and API replies (issue 15).

For each case, the real `ld-store-monitor run` (a subprocess, JSON logs to a
file) watches one hostile endpoint of `devtools/servers/hostile.py` beside a
healthy fake Redis, with `probe.interval` 3 s and `probe.timeout` 2 s, for
--seconds (default 12, four rounds). VmRSS is sampled every 0.1 s; the
figures are the largest VmRSS, VmHWM at the end, the hostile probe's last
duration and reason from `/metrics`, whether the healthy store stayed up,
the slowest `/metrics` answer (one scrape every 0.5 s), and how many bytes
the hostile server managed to send. The `baseline` case has the healthy
store alone; `dynamodb:healthy` adds a healthy DynamoDB endpoint (the AWS
client's own cost, the floor of every DynamoDB case); `redis:fat*64` has 64
targets on one `fat` server (16 probes in flight:
`probe.per_host_concurrency`), each reply at the per-connection budget, the
most memory a hostile Redis can make a round hold.

    .venv/bin/python -m bench.hostile [--seconds 12] [--case huge_bulk ...]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.footprint import rss_mb
from devtools.servers.hostile import (
    BIG,
    DYNAMODB_MODES,
    REDIS_MODES,
    HostileApi,
    HostileDynamoDB,
    HostileRedis,
)
from devtools.servers.ports import free_port

PASSWORD = "Bench-Hostile-Password-0123456789abcdefghijklmnopqrstuvwxyz-ABCD"
HOSTILE_ID = "0000000000000000000000b1"
CASES = (
    "baseline",
    "dynamodb:healthy",
    *(f"redis:{m}" for m in REDIS_MODES if m != "healthy"),
    *(f"dynamodb:{m}" for m in DYNAMODB_MODES if m != "healthy"),
    "api:bigint+surrogates",
    "redis:fat*64",
)


def _api_item(port: int) -> dict[str, Any]:
    return {
        "_id": HOSTILE_ID,
        "integrationKey": "redis",
        "projectKey": "web",
        "environmentKey": "prod",
        "name": "bad \ud800 name",
        "version": math.nan,
        "config": {"host": "127.0.0.1", "port": str(port)},
        "_status": {"available": True, "lastSync": int(BIG), "lastError": math.nan},
    }


async def _case(case: str, seconds: float, directory: Path) -> dict[str, Any]:
    kind, _, mode = case.partition(":")
    async with AsyncExitStack() as stack:
        healthy = await stack.enter_async_context(HostileRedis("healthy"))
        targets: list[dict[str, Any]] = [
            {
                "kind": "redis",
                "name": "healthy",
                "url": healthy.url("${REDIS_PASSWORD}"),
            }
        ]
        raw: dict[str, Any] = {
            "probe": {"interval": "3s", "timeout": "2s"},
            "server": {"listen": f"127.0.0.1:{free_port()}"},
            "targets": targets,
        }
        hostile: Any = None
        if kind == "redis":
            mode, _, copies = mode.partition("*")
            hostile = await stack.enter_async_context(HostileRedis(mode))
            targets.extend(
                {
                    "kind": "redis",
                    "name": "hostile" if i == 0 else f"hostile-{i}",
                    "url": hostile.url("${REDIS_PASSWORD}", db=i % 16),
                }
                for i in range(int(copies or 1))
            )
        elif kind == "dynamodb":
            hostile = await stack.enter_async_context(HostileDynamoDB(mode))
            targets.append(
                {
                    "kind": "dynamodb",
                    "name": "hostile",
                    "table": "big-segments",
                    "region": "us-east-1",
                    "endpoint_url": hostile.url,
                }
            )
        elif kind == "api":
            api = await stack.enter_async_context(
                HostileApi([_api_item(healthy.port)], "cid-bench")
            )
            raw["api"] = {"base_url": api.url, "interval": "30s", "timeout": "2s"}
            raw["credentials"] = [
                {
                    "match": {"integration_id": HOSTILE_ID},
                    "redis": {"address": f"127.0.0.1:{healthy.port}"},
                }
            ]
        config = directory / "config.yaml"
        config.write_text(yaml.safe_dump(raw))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "REDIS_PASSWORD": PASSWORD,
            "LD_API_TOKEN": "bench-hostile-token",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(directory / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(directory / "none"),
        }
        with (directory / "daemon.log").open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "monitor",
                "run",
                "--config",
                str(config),
                "--log-format",
                "json",
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            return await _watch(process, raw, hostile, seconds)
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 15)


async def _watch(
    process: asyncio.subprocess.Process,
    raw: dict[str, Any],
    hostile: Any,
    seconds: float,
) -> dict[str, Any]:
    base = f"http://{raw['server']['listen']}"
    peak_rss = 0.0
    slowest = 0.0
    text = ""
    async with aiohttp.ClientSession() as session:
        end = time.monotonic() + seconds
        next_scrape = time.monotonic() + 1.0
        while time.monotonic() < end:
            peak_rss = max(peak_rss, rss_mb(process.pid)[0])
            if time.monotonic() >= next_scrape:
                next_scrape += 0.5
                started = time.monotonic()
                try:
                    async with session.get(f"{base}/metrics") as resp:
                        text = await resp.text() if resp.status == 200 else text
                    slowest = max(slowest, time.monotonic() - started)
                except aiohttp.ClientError:
                    pass
            await asyncio.sleep(0.1)
        hwm = rss_mb(process.pid)[1]
    samples = {
        (s.name, s.labels.get("integration_id"), s.labels.get("reason")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    reasons = sorted(
        r
        for (n, i, r), _ in samples.items()
        if n == "ld_store_probe_failures_total" and i == "hostile" and r is not None
    )
    return {
        "peak_rss_mb": round(peak_rss, 1),
        "vmhwm_mb": round(hwm, 1),
        "hostile_duration_s": samples.get(
            ("ld_store_probe_duration_seconds", "hostile", None)
        ),
        "hostile_reasons": reasons,
        "healthy_up": samples.get(("ld_store_probe_up", "healthy", None)),
        "slowest_metrics_s": round(slowest, 3),
        "server_sent_mb": round(getattr(hostile, "sent", 0) / 2**20, 1),
    }


async def main(argv: list[str] | None = None) -> None:
    """Run every case (or those named) and print one table row each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--case", action="append", choices=CASES)
    args = parser.parse_args(argv)
    print(
        "| case | peak VmRSS MB | VmHWM MB | hostile probe s | reason | "
        "healthy up | slowest /metrics s | sent by the server MB |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.case or CASES:
            r = await _case(case, args.seconds, Path(tmp))
            duration = r["hostile_duration_s"]
            print(
                f"| {case} | {r['peak_rss_mb']} | {r['vmhwm_mb']} | "
                f"{'' if duration is None else round(duration, 3)} | "
                f"{', '.join(r['hostile_reasons']) or '-'} | {r['healthy_up']} | "
                f"{r['slowest_metrics_s']} | {r['server_sent_mb']} |",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())

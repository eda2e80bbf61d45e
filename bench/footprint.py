"""The daemon's footprint: memory at 5,000 integrations, CPU at 1,000, startup time.

Each figure runs the real `ld-store-monitor run` as a subprocess against the
API simulator (served by this process) and four password-protected
redis-servers, with the default settings (probe every 30 s, discovery every
60 s), logging JSON lines to a file as it would to a container's stdout.

- memory: VmRSS from /proc/<pid>/status once `/-/ready` answers 200 (the
  first discovery and a probe round after it are done), and again after one
  scrape of `/metrics`, plus VmHWM (the peak) by then;
- CPU: utime + stime from /proc/<pid>/stat as a share of one core, over a
  window after ready (2 minutes; 60 s with --quick) without scrapes, then
  over a second window with a Prometheus-style scrape every 15 s; the spread
  is over each window's 30 s intervals. The windows hold no health refresh
  (INFO and the membership sample, every 5 minutes per target);
- startup: from process start to the first 200 from `/-/ready`.

    .venv/bin/python -m bench.footprint [--quick] [--repeat 5] [--json]
        [--cpu-window 120]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from bench.fleet import (
    Store,
    config_document,
    config_env,
    redis_fleet,
    served_simulator,
)
from bench.harness import Options, Report, parse_options, progress
from bench.stores import RedisStores
from devtools.servers.ports import free_port

RSS_TARGET_MB = 150.0
CPU_TARGET_PERCENT = 5.0
PROBE_INTERVAL = 30.0
SCRAPE_EVERY = 15.0
READY_TIMEOUT = 300.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _command() -> list[str]:
    script = Path(sys.executable).parent / "ld-store-monitor"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "monitor"]


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of `pid` in MB (MiB, as /proc counts kB)."""
    values: dict[str, float] = {}
    with Path(f"/proc/{pid}/status").open(encoding="utf-8") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in {"VmRSS", "VmHWM"}:
                values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    fields = text.rpartition(")")[2].split()
    # After the command name: state is field 3, utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Daemon:
    """A running `ld-store-monitor run` and where it serves."""

    process: asyncio.subprocess.Process
    base: str
    started: float  # monotonic, just before the process was created

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    async def wait_ready(self, session: aiohttp.ClientSession) -> float:
        """Seconds from process start to the first 200 from /-/ready."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"daemon exited with {self.process.returncode}")
            try:
                async with session.get(f"{self.base}/-/ready") as reply:
                    if reply.status == 200:
                        return time.monotonic() - self.started
            except aiohttp.ClientConnectionError:
                pass  # not listening yet
            await asyncio.sleep(0.02)
        raise RuntimeError("daemon not ready in time")

    async def scrape(self, session: aiohttp.ClientSession) -> int:
        """GET /metrics as Prometheus does; the body's size."""
        async with session.get(
            f"{self.base}/metrics",
            headers={"Accept": "application/openmetrics-text;version=1.0.0"},
        ) as reply:
            body = await reply.read()
            if reply.status != 200:
                raise RuntimeError(f"/metrics answered {reply.status}")
            return len(body)


@asynccontextmanager
async def running_daemon(api_url: str, directory: Path) -> AsyncIterator[Daemon]:
    """Start the daemon with the default probe settings; SIGTERM it on exit."""
    port = free_port()
    config = directory / "config.yaml"
    config.write_text(
        yaml.safe_dump(config_document(api_url, listen=f"127.0.0.1:{port}"))
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **config_env()}
    with (directory / "daemon.log").open("ab") as log:
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *_command(),
            "run",
            "--config",
            str(config),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        yield Daemon(process, f"http://127.0.0.1:{port}", started)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def memory(
    stores: Sequence[Store], directory: Path, options: Options, report: Report
) -> None:
    """RSS after ready and after one scrape, at len(stores) integrations."""
    after_ready: list[float] = []
    after_scrape: list[float] = []
    peak: list[float] = []
    body = 0
    async with served_simulator(stores) as api, aiohttp.ClientSession() as session:
        for i in range(options.repeat):
            async with running_daemon(api.url, directory) as daemon:
                await daemon.wait_ready(session)
                after_ready.append(rss_mb(daemon.pid)[0])
                body = await daemon.scrape(session)
                rss, hwm = rss_mb(daemon.pid)
                after_scrape.append(rss)
                peak.append(hwm)
            progress(
                f"memory {i + 1}: {after_ready[-1]:.1f} MB ready, "
                f"{after_scrape[-1]:.1f} MB after a scrape, peak {peak[-1]:.1f} MB"
            )
    n = len(stores)
    figure = report.add(
        f"RSS after discovery + probe round, N={n}",
        after_ready,
        "MB",
        target=f"<= {RSS_TARGET_MB:g} MB",
    )
    figure.met = figure.median <= RSS_TARGET_MB
    report.add(f"RSS after one /metrics scrape, N={n}", after_scrape, "MB")
    report.add(f"peak RSS (VmHWM) by then, N={n}", peak, "MB")
    report.note(f"/metrics body at N={n}: {body / 1e6:.1f} MB (OpenMetrics)")


async def startup(
    stores: Sequence[Store], directory: Path, options: Options, report: Report
) -> None:
    """Process start to ready at len(stores) integrations."""
    seconds: list[float] = []
    async with served_simulator(stores) as api, aiohttp.ClientSession() as session:
        for i in range(options.repeat):
            async with running_daemon(api.url, directory) as daemon:
                seconds.append(await daemon.wait_ready(session))
            progress(f"startup {i + 1}: ready after {seconds[-1]:.2f} s")
    report.add(f"start to ready, N={len(stores)}", seconds, "s")


async def cpu_window(
    daemon: Daemon,
    session: aiohttp.ClientSession,
    window: float,
    scrape_every: float | None,
) -> tuple[float, list[float]]:
    """CPU share over `window` s, and per probe interval within it (percent)."""
    step = min(PROBE_INTERVAL, window)
    shares: list[float] = []
    begin = time.monotonic()
    total_start = cpu_seconds(daemon.pid)
    mark, used = begin, total_start
    next_scrape = begin
    while (now := time.monotonic()) < begin + window:
        if scrape_every is not None and now >= next_scrape:
            await daemon.scrape(session)
            next_scrape += scrape_every
        if now >= mark + step:
            current = cpu_seconds(daemon.pid)
            shares.append(100 * (current - used) / (now - mark))
            mark, used = now, current
        await asyncio.sleep(min(0.25, max(0.0, begin + window - now)))
    elapsed = time.monotonic() - begin
    return 100 * (cpu_seconds(daemon.pid) - total_start) / elapsed, shares


async def cpu(
    stores: Sequence[Store], directory: Path, window: float, report: Report
) -> None:
    """CPU share of one core after ready: a window unscraped, then one scraped."""
    n = len(stores)
    async with (
        served_simulator(stores) as api,
        aiohttp.ClientSession() as session,
        running_daemon(api.url, directory) as daemon,
    ):
        await daemon.wait_ready(session)
        for scrape_every, what in ((None, "no scrapes"), (SCRAPE_EVERY, "scraped")):
            progress(f"cpu: measuring {window:g} s, {what}")
            total, shares = await cpu_window(daemon, session, window, scrape_every)
            label = (
                "no scrapes"
                if scrape_every is None
                else f"scraped every {scrape_every:g} s"
            )
            figure = report.add(
                f"CPU share, {label}, N={n}",
                [total],
                "%",
                target=f"<= {CPU_TARGET_PERCENT:g} %",
            )
            figure.met = total <= CPU_TARGET_PERCENT
            if shares:
                report.add(
                    f"  per {min(PROBE_INTERVAL, window):g} s interval", shares, "%"
                )
    report.note(
        f"CPU: probe every {PROBE_INTERVAL:g} s, discovery every 60 s; two "
        f"consecutive {window:g} s windows of one daemon, the second with a "
        f"/metrics scrape (OpenMetrics, as Prometheus asks) every {SCRAPE_EVERY:g} s"
    )


async def main(options: Options) -> Report:
    """Run the three measurements; return the report."""
    if options.smoke:
        big = small = 5
        window = 3.0
    else:
        big = 1000 if options.quick else 5000
        small = 1000
        window = options.extra.cpu_window or (60.0 if options.quick else 120.0)
    report = Report(
        "footprint",
        "the daemon's memory, CPU share and startup time",
        options,
        parameters={"N_memory": big, "N_cpu_startup": small, "cpu_window_s": window},
    )
    with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
        directory = Path(tmp)
        redis = RedisStores(directory)
        try:
            fleet = redis_fleet(max(big, small), redis.ports)
            redis.populate((s.prefix, s.port) for s in fleet)
            await memory(fleet[:big], directory, options, report)
            await startup(fleet[:small], directory, options, report)
            await cpu(fleet[:small], directory, window, report)
        finally:
            redis.stop()
    return report


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cpu-window",
        type=float,
        metavar="SECONDS",
        help="length of the CPU measurement (default 120; 60 with --quick)",
    )


if __name__ == "__main__":
    opts = parse_options(
        __doc__.splitlines()[0] if __doc__ else "footprint", extra=_extra
    )
    asyncio.run(main(opts)).emit()

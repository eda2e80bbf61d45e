"""The fault proxy in a process of its own, switched over a pipe.

Leak checks count the open file descriptors and asyncio tasks of the
process that runs the monitor. The in-process `FaultProxy` would add its
own sockets and tasks to both counts (an `accept_hang` connection is held
until the proxy closes), so those checks run it here instead: the child
owns every proxy-side socket and task, and the parent's counts are the
monitor's alone.

Protocol, one line each way: the child prints its port once, then answers
every command (`pass`, `delay SECONDS`, `blackhole`, `reset`,
`close_after BYTES`, `accept_hang`) with `ok`. EOF on its stdin stops it.

Run as `python -m devtools.servers.proxy_process UPSTREAM_HOST UPSTREAM_PORT`
from the repository root.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from devtools.servers.fault_proxy import FaultProxy
from devtools.servers.lifecycle import Lifecycle, reap

REPO_ROOT = Path(__file__).resolve().parents[2]
_START_TIMEOUT = 10.0
_COMMAND_TIMEOUT = 5.0


def apply_command(proxy: FaultProxy, line: str) -> None:
    """Switch `proxy` to the mode `line` names; ValueError for anything else."""
    name, _, argument = line.strip().partition(" ")
    if name == "pass":
        proxy.pass_through()
    elif name == "delay":
        proxy.delay(float(argument))
    elif name == "blackhole":
        proxy.blackhole()
    elif name == "reset":
        proxy.reset()
    elif name == "close_after":
        proxy.close_after(int(argument))
    elif name == "accept_hang":
        proxy.accept_hang()
    else:
        raise ValueError(f"unknown proxy command {line!r}")


async def _serve(upstream_host: str, upstream_port: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    async with FaultProxy(upstream_host, upstream_port) as proxy:
        print(proxy.port, flush=True)
        while line := (await reader.readline()).decode():
            apply_command(proxy, line)
            print("ok", flush=True)


class ProxyProcess(Lifecycle):
    """A child process running a `FaultProxy`; `await set("blackhole")` switches it."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        """Remember the upstream; `start()` (or `async with`) launches the child."""
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.host = "127.0.0.1"
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        """`host:port` clients connect to."""
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        """Launch the child and wait for its port."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "devtools.servers.proxy_process",
            self.upstream_host,
            str(self.upstream_port),
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(_START_TIMEOUT):
            self.port = int(await self._line())

    async def set(self, command: str) -> None:
        """Send one mode command and wait until the child applied it."""
        process = self._require()
        assert process.stdin is not None
        process.stdin.write(command.encode() + b"\n")
        await process.stdin.drain()
        async with asyncio.timeout(_COMMAND_TIMEOUT):
            answer = await self._line()
        if answer != "ok":
            raise RuntimeError(f"proxy child answered {answer!r} to {command!r}")

    async def aclose(self) -> None:
        """Close the child's stdin (it stops) and reap it; kill it if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        await reap(process, _COMMAND_TIMEOUT)

    async def _line(self) -> str:
        process = self._require()
        assert process.stdout is not None
        line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"proxy child exited with {await process.wait()}")
        return line.decode().strip()

    def _require(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise RuntimeError("ProxyProcess is not started")
        return self._process


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], int(sys.argv[2])))

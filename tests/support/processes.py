"""Child processes and plain HTTP for the end-to-end tests.

Each service (daemon, simulator, Prometheus) runs as a real process with its
output in a log file (a pipe nobody reads would fill and block it), and is
stopped with SIGTERM, a wait, and SIGKILL only when it ignores the signal.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

STOP_TIMEOUT = 10.0
POLL_STEP = 0.05
_LOG_TAIL_LINES = 40

T = TypeVar("T")


class Service:
    """A child process whose stdout and stderr go to a log file."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log_file: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        """Start `args` now."""
        self.name = name
        self.log_file = log_file
        with log_file.open("wb") as log:
            self.process = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                cwd=cwd,
            )

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process.poll() is None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of the process's output."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    def check_running(self) -> None:
        """Raise with the output's tail when the process has exited."""
        if not self.running:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait, SIGKILL on timeout; return the exit code."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wait_for(
    probe: Callable[[], T | None],
    what: str,
    *,
    timeout: float = 30.0,
    alive: Sequence[Service] = (),
) -> T:
    """Poll `probe` until it returns something other than None (or False).

    Fails early, with the output's tail, when one of `alive` exits meanwhile.
    """
    deadline = time.monotonic() + timeout
    while True:
        for service in alive:
            service.check_running()
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {s.name}:\n{s.log_tail()}" for s in alive)
            raise TimeoutError(
                f"timed out after {timeout:g}s waiting for {what}\n{tails}"
            )
        time.sleep(POLL_STEP)


def http_request(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """One HTTP request on a fresh connection: (status, body); OSError if none."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=timeout
    )
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def http_get_ok(url: str) -> bytes | None:
    """The body when `url` answers 200; None when it answers otherwise or not at all."""
    try:
        status, body = http_request(url, timeout=2.0)
    except OSError:
        return None
    return body if status == 200 else None


def samples(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition."""
    return [s for f in text_string_to_metric_families(text) for s in f.samples]

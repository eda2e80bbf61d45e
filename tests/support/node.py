"""The Node server SDK as an oracle: installed pinned into `.cache/node-sdk`, run per check.

`tests/support/node_sdk/` holds the pinned `package.json`, its lock file and
the script that asks the SDK for a store's status. `make test` installs the
packages (`make node-deps`); a test run outside make installs them on first
use. Only a registry that cannot be reached skips the Node checks, with the
reason; any other install failure fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PINNED = ROOT / "tests/support/node_sdk"
INSTALL = ROOT / ".cache/node-sdk"
SCRIPT = PINNED / "store_status.js"
# npm's own words for "the registry is out of reach".
_UNREACHABLE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH")


def _installed() -> bool:
    """True when `.cache/node-sdk` holds exactly the pinned lock's packages."""
    lock = INSTALL / "package-lock.json"
    return (
        (INSTALL / "node_modules/@launchdarkly/node-server-sdk-redis").is_dir()
        and lock.is_file()
        and lock.read_bytes() == (PINNED / "package-lock.json").read_bytes()
    )


def ensure_node_sdk() -> Path:
    """The `node_modules` folder of the pinned SDK, installed if needed (or skip)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail(
            "node and npm are needed for the Node SDK cross-check (make system-deps)"
        )
    if not _installed():
        INSTALL.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(PINNED / name, INSTALL / name)
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(INSTALL)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            output = done.stdout + done.stderr
            if any(code in output for code in _UNREACHABLE):
                pytest.skip(f"npm cannot reach its registry: {output.strip()[-300:]}")
            pytest.fail(f"npm ci failed: {output.strip()[-2000:]}")
    return INSTALL / "node_modules"


def node_store_status(
    host: str, port: int, prefix: str, stale_after: float, password: str | None = None
) -> tuple[bool, bool]:
    """(available, stale) as the Node SDK's bigSegmentStoreStatusProvider reports it."""
    modules = ensure_node_sdk()
    args = {
        "host": host,
        "port": port,
        "password": password,
        "prefix": prefix,
        "staleAfter": stale_after,
    }
    done = subprocess.run(
        ["node", str(SCRIPT), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NODE_PATH": str(modules),
        },
    )
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    return bool(status["available"]), bool(status["stale"])

"""The container image's install: pinned, validates the ConfigMap's config, runs the daemon.

`build_image_venv` replays the Dockerfile's builder stage into a fresh venv
(no Docker engine runs here); the venv must hold nothing the constraints do
not pin, and the daemon starts from that venv's own entry point, serves
/metrics about a real redis-server, and stops cleanly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from devtools.servers.ports import LOOPBACK, free_port
from devtools.servers.redis_server import RedisServer
from monitor import __version__
from monitor.store_keys import redis_synchronized_on_key
from tests.support.clock import now_ms
from tests.support.commands import run
from tests.support.image import build_image_venv
from tests.support.processes import Service, http_get_ok, samples, wait_for

ROOT = Path(__file__).resolve().parents[2]
CONFIGMAP = ROOT / "deploy/kubernetes/configmap.yaml"
CONSTRAINTS = ROOT / "requirements/constraints.txt"
# What the ConfigMap's config references through ${VAR}.
CONFIG_ENV = {"LD_API_TOKEN": "test-token", "REDIS_PASSWORD": "test-password"}
TARGET = "relay-store"
PREFIX = "launchdarkly"


@pytest.mark.timeout(900)
def test_image_venv_installs_and_validates_the_configmap_config(tmp_path: Path) -> None:
    """The image's install steps give a working CLI, fully pinned by the constraints."""
    venv = build_image_venv(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_load(CONFIGMAP.read_text())["data"]["config.yaml"])
    env = {"PATH": os.environ.get("PATH", ""), **CONFIG_ENV}
    out = run(
        str(venv / "bin/ld-store-monitor"),
        "validate-config",
        "--config",
        str(config),
        env=env,
    )
    assert "OK" in out
    # Nothing in the image escaped the pins.
    pinned = {
        line.strip().lower().replace("_", "-")
        for line in CONSTRAINTS.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    frozen = run(str(venv / "bin/python"), "-m", "pip", "freeze", "--exclude-editable")
    installed = {
        line.strip().lower().replace("_", "-")
        for line in frozen.splitlines()
        if line.strip() and not line.lower().startswith("ld-store-monitor")
    }
    assert installed - pinned == set()


@pytest.mark.timeout(900)
def test_image_venv_runs_the_daemon_and_serves_metrics(
    tmp_path: Path, redis_plain: RedisServer
) -> None:
    """The image's venv starts `ld-store-monitor run`, probes Redis, serves /metrics, exits 0 on SIGTERM."""
    venv = build_image_venv(tmp_path)
    with redis_plain.admin() as admin:
        admin.set(redis_synchronized_on_key(PREFIX), str(now_ms()))
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "api": {"enabled": False},
                "probe": {"interval": "1s", "timeout": "900ms"},
                "targets": [
                    {
                        "kind": "redis",
                        "name": TARGET,
                        "url": redis_plain.url,
                        "prefix": PREFIX,
                        "project": "default",
                        "environment": "production",
                    }
                ],
            }
        )
    )
    port = free_port()
    daemon = Service(
        "ld-store-monitor (image venv)",
        [
            str(venv / "bin/ld-store-monitor"),
            "run",
            "--config",
            str(config),
            "--listen",
            f"{LOOPBACK}:{port}",
            "--log-format",
            "json",
        ],
        tmp_path / "daemon.log",
        # Only the venv: nothing from the test environment's packages.
        env={"PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
        cwd=tmp_path,
    )
    try:
        url = f"http://{LOOPBACK}:{port}"
        wait_for(lambda: http_get_ok(f"{url}/-/ready"), "/-/ready", alive=[daemon])
        body = http_get_ok(f"{url}/metrics")
        assert body is not None
        parsed = samples(body.decode())
        values = {(s.name, s.labels.get("integration_id", "")): s.value for s in parsed}
        (build,) = [s for s in parsed if s.name == "ld_store_build_info"]
        assert build.labels["version"] == __version__
        assert values[("ld_store_probe_up", TARGET)] == 1.0
        assert values[("ld_store_available", TARGET)] == 1.0
        assert values[("ld_store_stale", TARGET)] == 0.0
        assert values[("ld_store_probe_schema_ok", TARGET)] == 1.0
        assert values[("ld_store_build_info", "")] == 1.0
        assert values[("ld_store_stale_after_seconds", "")] == 120.0
        assert daemon.stop() == 0, daemon.log_tail()
        assert "daemon.stopped" in daemon.log_tail()
    finally:
        daemon.stop()

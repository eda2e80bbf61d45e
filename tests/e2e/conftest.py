"""The rich scenario, started once for the end-to-end tests that share it.

Package-scoped: the stores, the simulated LaunchDarkly API and the daemon
start on first use and stop when the tests of `tests/e2e` are done.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from devtools.servers.moto_server import REGION
from devtools.servers.ports import LOOPBACK, free_port
from devtools.servers.tls import TlsCertSet
from tests.support import scenario
from tests.support.processes import Service, http_get_ok, samples, wait_for
from tests.support.scenario import RichScenario

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0


def _settled(url: str) -> bool:
    """Ready, and every target probed with its health, canaries and tables known."""
    if http_get_ok(f"{url}/-/ready") is None:
        return False
    body = http_get_ok(f"{url}/metrics")
    if body is None:
        return False
    seen: dict[str, set[str]] = {}
    hosts: dict[str, str] = {}  # integration_id -> host, from ld_store_target_info
    for sample in samples(body.decode()):
        labels = sample.labels
        key = (
            labels.get("canary")
            or labels.get("integration_id")
            or labels.get("host", "")
        )
        seen.setdefault(sample.name, set()).add(key)
        if sample.name == "ld_store_target_info" and "host" in labels:
            hosts[labels["integration_id"]] = labels["host"]
    redis_up = scenario.REDIS_TARGETS - {scenario.WRONG_PASSWORD}
    # The Redis health is per server (host): every server of a reachable store.
    redis_hosts = {hosts.get(target, "") for target in redis_up}
    return (
        seen.get("ld_store_probe_up", set()) >= scenario.TARGETS
        and seen.get("ld_store_canary_ok", set()) >= scenario.CANARIES
        and seen.get("ld_store_redis_info", set()) >= redis_hosts
        and seen.get("ld_store_dynamodb_table_info", set())
        >= {scenario.DDB_HEALTHY, scenario.DDB_WRONG_SCHEMA, scenario.DDB_UPDATING}
        and scenario.WRONG_PASSWORD in seen.get("ld_store_api_errors_total", set())
    )


def _simulator_url(simulator: Service) -> str | None:
    for line in simulator.log_tail().splitlines():
        if "listening on " in line:
            return line.split("listening on ", 1)[1].strip()
    return None


@pytest.fixture(scope="package")
def rich_scenario(
    tmp_path_factory: pytest.TempPathFactory, tls_certs: TlsCertSet
) -> Iterator[RichScenario]:
    """Stores in every state, the API simulator and `ld-store-monitor run`, settled."""
    directory = tmp_path_factory.mktemp("rich-scenario")
    with ExitStack() as stack:
        stores = scenario.start_stores(directory, tls_certs)
        stack.callback(scenario.stop_stores, stores)
        refresher = scenario.Refresher(stores)
        refresher.start()
        stack.callback(refresher.stop)

        scenario_file = directory / "scenario.json"
        scenario_file.write_text(json.dumps(scenario.simulator_scenario()))
        simulator = Service(
            "simulator",
            [
                sys.executable,
                "-m",
                "devtools.ldsim",
                "--scenario",
                str(scenario_file),
                "--port",
                "0",
                "--quiet",
            ],
            directory / "simulator.log",
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            cwd=ROOT,
        )
        stack.callback(simulator.stop)
        api_url = wait_for(
            lambda: _simulator_url(simulator),
            "the simulator's banner",
            alive=[simulator],
        )

        port = free_port()
        config_file = directory / "ld-store-monitor.yaml"
        config_file.write_text(
            yaml.safe_dump(
                scenario.daemon_config(api_url, f"{LOOPBACK}:{port}", stores)
            )
        )
        daemon = Service(
            "ld-store-monitor",
            [sys.executable, "-m", "monitor", "run", "--config", str(config_file)],
            directory / "daemon.log",
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LD_API_TOKEN": scenario.TOKEN,
                scenario.WRONG_PASSWORD_ENV: "not-the-store-password",
                # Fake credentials for moto; no real AWS configuration is read.
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_CONFIG_FILE": str(directory / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(directory / "no-aws-credentials"),
                "AWS_EC2_METADATA_DISABLED": "true",
            },
            cwd=ROOT,
        )

        stack.callback(daemon.stop)
        url = f"http://{LOOPBACK}:{port}"
        wait_for(
            lambda: _settled(url),
            "the daemon to probe every target of the scenario",
            timeout=STARTUP_TIMEOUT,
            alive=[daemon, simulator],
        )
        yield RichScenario(daemon_url=url, simulator_url=api_url, daemon=daemon)
        code = daemon.stop()
        assert code == 0, f"the daemon exited {code} on SIGTERM:\n{daemon.log_tail()}"
        assert refresher.errors == []

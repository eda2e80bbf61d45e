"""Alerts end to end: monitors, the real Prometheus, the real Alertmanager, a webhook.

Two monitor processes (`python -m monitor run`) watch the same stores, as an
HA pair or as two shards; Debian's Prometheus scrapes them every second
(file service discovery, so a restarted replica comes back under another
`instance`) and evaluates the shipped rules, with only `for:` shortened;
Debian's Alertmanager receives the alerts, with the shipped example
inhibition rules, and notifies a webhook served here (aiohttp), grouped by
alertname and store as docs/deployment.md advises.

- HA pair: one stale store (synchronizedOn an hour old) and one unreachable
  store (a closed port). Each store problem is exactly one alert in
  Alertmanager (/api/v2/alerts) and one notification group at the receiver,
  with no replica label; the unreachable store's LDStoreProbeDown is
  inhibited by its LDStoreUnavailable. Restarting a replica (new port, new
  `instance`) never resolves anything.
- Two shards: every store's series come from exactly one shard, the one its
  hash names; stopping a shard raises LDStoreMonitorShardsMissing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
import yaml
from aiohttp import web

from devtools.servers.ports import LOOPBACK, free_port
from devtools.servers.redis_server import RedisServer, start_redis
from monitor.launchdarkly.sharding import Shard
from monitor.store_keys import redis_synchronized_on_key
from tests.support.clock import now_ms
from tests.support.processes import Service, http_get_ok, http_request, wait_for

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
RULES = ROOT / "deploy/prometheus/ld-store-monitor.rules.yaml"
INHIBIT_RULES = ROOT / "deploy/alertmanager/inhibit-rules.example.yaml"
JOB = "ld-store-monitor"
PREFIX = "e2e"
STALE = "store-stale"
DOWN = "store-down"
# Labels that name a replica: no alert about a store may carry them.
TOPOLOGY = frozenset({"instance", "pod", "container", "endpoint", "shard"})
# The store problems of the HA run that must reach Alertmanager: (alertname,
# integration_id). Others may fire as well (LDStoreMembershipDataMissing for
# the empty stale store); every one is checked to be a single alert.
REQUIRED = {
    ("LDStoreStale", STALE),
    ("LDStoreUnavailable", DOWN),
    ("LDStoreMembershipReadFailing", DOWN),
    ("LDStoreProbeDown", DOWN),
}
# Inhibited by LDStoreUnavailable of the same store (the example rules).
INHIBITED = {("LDStoreProbeDown", DOWN)}
TIMEOUT = 40.0
STEP = 0.2


def _skip_without_binaries() -> None:
    for binary in (PROMETHEUS, ALERTMANAGER):
        if not Path(binary).exists():
            pytest.fail(f"{binary} missing: `make test` installs it")


# --- the webhook receiver ---------------------------------------------------------


class Receiver:
    """An aiohttp server on its own thread, recording Alertmanager's webhook posts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.payloads: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/hook"

    def start(self) -> None:
        self._thread.start()
        assert self._started.wait(10), "the webhook receiver did not start"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.payloads)

    async def _hook(self, request: web.Request) -> web.Response:
        payload = await request.json()
        with self._lock:
            self.payloads.append(payload)
        return web.Response(text="ok")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, LOOPBACK, self.port)
        self._loop.run_until_complete(site.start())
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()


# --- the stack --------------------------------------------------------------------


@dataclass
class Stack:
    """Monitors, Prometheus, Alertmanager and the receiver, on loopback."""

    directory: Path
    stores: list[dict[str, Any]]
    receiver: Receiver
    prometheus_url: str = ""
    alertmanager_url: str = ""
    monitors: dict[str, tuple[Service, int]] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)

    # monitors ---------------------------------------------------------------

    def start_monitor(
        self, name: str, shard: str | None = None, *, register: bool = True
    ) -> int:
        """Start (or restart, on a new port) monitor `name`; its port.

        `register`: add it to Prometheus' targets now (else: `write_targets`).
        """
        port = free_port()
        config = self.directory / f"{name}-{port}.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "api": {"enabled": False},
                    "probe": {
                        "interval": "1s",
                        "timeout": "900ms",
                        "health_interval": "1s",
                    },
                    "targets": self.stores,
                    "server": {"listen": f"{LOOPBACK}:{port}"},
                    "logging": {"format": "json", "level": "info"},
                }
            )
        )
        args = [sys.executable, "-m", "monitor", "run", "--config", str(config)]
        if shard is not None:
            args += ["--shard", shard]
        service = Service(
            name,
            args,
            self.directory / f"{name}-{port}.log",
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            cwd=ROOT,
        )
        self.services.append(service)
        self.monitors[name] = (service, port)
        wait_for(
            lambda: http_get_ok(f"http://{LOOPBACK}:{port}/-/ready"),
            f"monitor {name} to be ready",
            alive=[service],
        )
        if register:
            self.write_targets()
        return port

    def stop_monitor(self, name: str) -> None:
        service, _ = self.monitors.pop(name)
        assert service.stop() == 0, service.log_tail()
        self.write_targets()

    def write_targets(self) -> None:
        """The file service discovery list: every running monitor (atomic rename)."""
        targets = [
            {"targets": [f"{LOOPBACK}:{port}"]}
            for _, port in sorted(self.monitors.values(), key=lambda m: m[1])
        ]
        tmp = self.directory / "targets.json.tmp"
        tmp.write_text(json.dumps(targets))
        tmp.replace(self.directory / "targets.json")

    # Prometheus and Alertmanager ---------------------------------------------

    def prometheus(self, path: str, **params: str) -> Any:
        status, body = http_request(f"{self.prometheus_url}{path}?{urlencode(params)}")
        assert status == 200, body[:500]
        return json.loads(body)["data"]

    def vector(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.prometheus("/api/v1/query", query=expr)[
            "result"
        ]
        return result

    def am_alerts(self) -> list[dict[str, Any]]:
        status, body = http_request(f"{self.alertmanager_url}/api/v2/alerts")
        assert status == 200, body[:500]
        alerts: list[dict[str, Any]] = json.loads(body)
        return alerts


# Hold times other than 1s: the first scrapes of two shards land up to a
# scrape interval apart, which must not count as a missing shard.
HOLDS = {"LDStoreMonitorShardsMissing": "5s"}


def _rules_with_short_holds() -> dict[str, Any]:
    """The shipped rules, only `for:` shortened (expressions unchanged)."""
    rules: dict[str, Any] = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = HOLDS.get(rule["alert"], "1s")
    return rules


@contextmanager
def stack(tmp_path: Path, stores: list[dict[str, Any]]) -> Iterator[Stack]:
    """Receiver, Alertmanager and Prometheus; the test starts the monitors."""
    _skip_without_binaries()
    receiver = Receiver()
    receiver.start()
    result = Stack(directory=tmp_path, stores=stores, receiver=receiver)
    with ExitStack() as cleanup:
        cleanup.callback(receiver.stop)
        cleanup.callback(lambda: [s.stop() for s in reversed(result.services)])
        inhibit = yaml.safe_load(INHIBIT_RULES.read_text(encoding="utf-8"))
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(
            yaml.safe_dump(
                {
                    "route": {
                        "receiver": "hook",
                        "group_by": ["alertname", "integration_id"],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {
                            "name": "hook",
                            "webhook_configs": [
                                {"url": receiver.url, "send_resolved": True}
                            ],
                        }
                    ],
                    **inhibit,
                }
            )
        )
        am_port = free_port()
        alertmanager = Service(
            "alertmanager",
            [
                ALERTMANAGER,
                f"--config.file={am_config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address={LOOPBACK}:{am_port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            tmp_path / "alertmanager.log",
        )
        result.services.append(alertmanager)
        result.alertmanager_url = f"http://{LOOPBACK}:{am_port}"
        wait_for(
            lambda: http_get_ok(f"{result.alertmanager_url}/-/ready"),
            "Alertmanager to be ready",
            alive=[alertmanager],
        )

        result.write_targets()
        rules_file = tmp_path / "rules.yaml"
        rules_file.write_text(
            yaml.safe_dump(_rules_with_short_holds(), sort_keys=False)
        )
        config_file = tmp_path / "prometheus.yml"
        config_file.write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": "1s",
                        "scrape_timeout": "1s",
                        "evaluation_interval": "1s",
                    },
                    "rule_files": [str(rules_file)],
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"{LOOPBACK}:{am_port}"]}]}
                        ]
                    },
                    "scrape_configs": [
                        {
                            "job_name": JOB,
                            "file_sd_configs": [
                                {
                                    "files": [str(tmp_path / "targets.json")],
                                    "refresh_interval": "1s",
                                }
                            ],
                        }
                    ],
                }
            )
        )
        prom_port = free_port()
        prometheus = Service(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address={LOOPBACK}:{prom_port}",
                "--rules.alert.resend-delay=1s",
                "--log.level=warn",
            ],
            tmp_path / "prometheus.log",
        )
        result.services.append(prometheus)
        result.prometheus_url = f"http://{LOOPBACK}:{prom_port}"
        wait_for(
            lambda: http_get_ok(f"{result.prometheus_url}/-/ready"),
            "Prometheus to be ready",
            alive=[prometheus],
        )
        yield result


def _until(check: Any, what: str, timeout: float = TIMEOUT) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(STEP)
    pytest.fail(f"timed out waiting for {what}")


def _identity(labels: dict[str, str]) -> tuple[str, str]:
    return labels["alertname"], labels.get("integration_id", "")


@pytest.fixture
def redis_store(tmp_path: Path) -> Iterator[RedisServer]:
    """One redis-server for the stores (each store is a prefix in it)."""
    server = start_redis(tmp_path)
    yield server
    server.stop()


def _write_sync(server: RedisServer, prefix: str, at_ms: int) -> None:
    client = redis.Redis(**server.client_kwargs())
    try:
        client.set(redis_synchronized_on_key(prefix), str(at_ms))
    finally:
        client.close()


# --- HA pair ------------------------------------------------------------------------


def test_ha_pair_one_alert_per_store_problem_and_a_restart_resolves_nothing(
    tmp_path: Path, redis_store: RedisServer
) -> None:
    """Two replicas: one Alertmanager alert and one notification group per problem; a restart keeps them firing."""
    _write_sync(redis_store, PREFIX, now_ms() - 3_600_000)
    closed = free_port()
    stores = [
        {"kind": "redis", "name": STALE, "url": redis_store.url, "prefix": PREFIX},
        {"kind": "redis", "name": DOWN, "url": f"redis://{LOOPBACK}:{closed}"},
    ]
    with stack(tmp_path, stores) as s:
        s.start_monitor("replica-a")
        s.start_monitor("replica-b")
        _until(
            lambda: len(s.vector(f'up{{job="{JOB}"}} == 1')) == 2,
            "Prometheus to scrape both replicas",
        )
        # Both replicas export every store: the duplicates the rules must fold.
        assert {
            r["metric"]["integration_id"]: r["value"][1]
            for r in s.vector("count by (integration_id) (ld_store_probe_up)")
        } == {STALE: "2", DOWN: "2"}

        def delivered() -> list[dict[str, Any]] | None:
            alerts = s.am_alerts()
            found = {_identity(a["labels"]) for a in alerts}
            groups = _notified_groups(s.receiver.received())
            if found >= REQUIRED and groups >= REQUIRED - INHIBITED:
                return alerts
            return None

        alerts = _until(
            delivered, "every store problem in Alertmanager and at the receiver"
        )
        time.sleep(3)  # any duplicate would arrive within a few evaluations
        alerts = s.am_alerts()
        _assert_one_alert_per_problem(alerts)
        by_identity = {_identity(a["labels"]): a for a in alerts}
        probe_down = by_identity[("LDStoreProbeDown", DOWN)]["status"]
        assert probe_down["state"] == "suppressed"
        assert probe_down["inhibitedBy"]
        groups = _notified_groups(s.receiver.received())
        firing_problems = {
            _identity(a["labels"])
            for a in alerts
            if a["status"]["state"] == "active"
            and a["labels"]["alertname"].startswith("LDStore")
            and not a["labels"]["alertname"].startswith("LDStoreMonitor")
        }
        assert groups == firing_problems
        assert not groups & INHIBITED
        for payload in _store_payloads(s.receiver.received()):
            assert len(payload["alerts"]) == 1, payload
            assert payload["status"] == "firing", payload
            assert not TOPOLOGY & payload["alerts"][0]["labels"].keys()

        # Restart replica b: a new process on a new port, a new `instance`.
        before = len(s.receiver.received())
        old_instance = f"{LOOPBACK}:{s.monitors['replica-b'][1]}"
        s.stop_monitor("replica-b")
        new_port = s.start_monitor("replica-b")
        new_instance = f"{LOOPBACK}:{new_port}"
        deadline = time.monotonic() + 10
        seen_new = False
        while time.monotonic() < deadline or not seen_new:
            assert time.monotonic() < deadline + TIMEOUT, "replica b never came back"
            current = {_identity(a["labels"]): a for a in s.am_alerts()}
            assert current.keys() >= REQUIRED, "an alert left Alertmanager"
            for identity in REQUIRED:
                assert current[identity]["status"]["state"] in {"active", "suppressed"}
            for payload in _store_payloads(s.receiver.received()[before:]):
                assert payload["status"] == "firing", ("resolved meanwhile", payload)
            seen_new = bool(
                s.vector(f'up{{job="{JOB}", instance="{new_instance}"}} == 1')
            )
            time.sleep(STEP)
        assert not s.vector(f'up{{instance="{old_instance}"}} == 1')
        _assert_one_alert_per_problem(s.am_alerts())
        # Nothing new to tell: the groups are the same problems, still firing.
        assert _notified_groups(s.receiver.received()) == groups


def _notified_groups(payloads: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(alertname, integration_id) of every store alert group notified as firing."""
    return {
        _identity(payload["groupLabels"])
        for payload in _store_payloads(payloads)
        if payload["status"] == "firing"
    }


def _store_payloads(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notifications about stores (the monitor's own alerts aside: a
    replica stopped on purpose may raise LDStoreMonitorReplicaDown)."""
    return [
        p
        for p in payloads
        if not p["groupLabels"]["alertname"].startswith("LDStoreMonitor")
    ]


def _assert_one_alert_per_problem(alerts: list[dict[str, Any]]) -> None:
    identities = [
        (*_identity(a["labels"]), a["labels"].get("severity", ""))
        for a in alerts
        if not a["labels"]["alertname"].startswith("LDStoreMonitor")
    ]
    assert len(identities) == len(set(identities)), sorted(identities)
    for alert in alerts:
        if not alert["labels"]["alertname"].startswith("LDStoreMonitor"):
            assert not TOPOLOGY & alert["labels"].keys(), alert["labels"]


# --- two shards ----------------------------------------------------------------------


def _store_names(count: int, shards: int) -> list[str]:
    """`count` store names spread over every shard (at least two each)."""
    names: list[str] = []
    per_shard = dict.fromkeys(range(shards), 0)
    index = 0
    while len(names) < count or min(per_shard.values()) < 2:
        name = f"store-{index}"
        index += 1
        owner = next(i for i in range(shards) if Shard(i, shards).owns(name))
        if len(names) < count or per_shard[owner] < 2:
            names.append(name)
            per_shard[owner] += 1
    return names


def test_two_shards_cover_every_store_once_and_a_missing_shard_alerts(
    tmp_path: Path, redis_store: RedisServer
) -> None:
    """Each store's series come from its one shard; stopping a shard raises LDStoreMonitorShardsMissing."""
    names = _store_names(6, 2)
    for name in names:
        _write_sync(redis_store, name, now_ms())
    stores = [
        {"kind": "redis", "name": name, "url": redis_store.url, "prefix": name}
        for name in names
    ]
    with stack(tmp_path, stores) as s:
        ports = {
            0: s.start_monitor("shard-0", shard="0/2", register=False),
            1: s.start_monitor("shard-1", shard="1/2", register=False),
        }
        s.write_targets()  # both shards at once, as a StatefulSet starts them
        _until(
            lambda: len(s.vector("ld_store_probe_up")) == len(names),
            "every store probed by its shard",
        )
        series = s.vector("ld_store_probe_up")
        owners: dict[str, list[str]] = {}
        for sample in series:
            metric = sample["metric"]
            owners.setdefault(metric["integration_id"], []).append(metric["instance"])
        assert sorted(owners) == sorted(names)
        for name, instances in owners.items():
            expected = next(i for i in range(2) if Shard(i, 2).owns(name))
            assert instances == [f"{LOOPBACK}:{ports[expected]}"], name
        assert {r["value"][1] for r in s.vector("ld_store_shards")} == {"2"}
        assert (
            s.vector('ALERTS{alertname=~"LDStoreMonitorShard.*", alertstate="firing"}')
            == []
        )

        s.stop_monitor("shard-1")

        def missing() -> dict[str, Any] | None:
            for alert in s.am_alerts():
                if alert["labels"]["alertname"] == "LDStoreMonitorShardsMissing":
                    return alert
            return None

        alert = _until(missing, "LDStoreMonitorShardsMissing in Alertmanager")
        assert alert["labels"]["job"] == JOB
        assert alert["labels"]["severity"] == "critical"
        assert alert["status"]["state"] == "active"

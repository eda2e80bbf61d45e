"""The real Prometheus scrapes the daemon; every shipped query runs against it.

Debian's `prometheus` scrapes the daemon watching the rich scenario (see
`tests/e2e/scenario.py`) every second and evaluates the shipped alerting
rules. Then every PromQL expression the project ships is run through
Prometheus's HTTP API: the dashboard's panel queries (Grafana variables
substituted as Grafana would), the Prometheus rules, and the Grafana-managed
rules' queries. Each must parse, and must return data exactly where the
scenario says it should.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import yaml

from devtools.servers.ports import LOOPBACK, free_port
from tests.support import scenario
from tests.support.clock import now_ms
from tests.support.processes import Service, http_get_ok, http_request, wait_for
from tests.support.scenario import RichScenario

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = "/usr/bin/prometheus"
DASHBOARD = ROOT / "grafana/dashboards/ld-store-monitor.json"
RULES = ROOT / "deploy/prometheus/ld-store-monitor.rules.yaml"
GRAFANA_RULES = ROOT / "grafana/provisioning/alerting/ld-store-monitor-rules.yaml"
# The job name the rules expect (LDStoreMonitorAbsent selects it).
JOB = "ld-store-monitor"
SETTLE_TIMEOUT = 30.0
POLL_STEP = 0.1

# Grafana's values for the dashboard's variables: "All" of a multi-value
# variable is its allValue `.*` (the queries use `=~"$project"`), and the
# interval macros take what Grafana would give a 15 s scrape interval.
GRAFANA_VALUES = {
    "cluster": ".*",
    "job": ".*",
    "project": ".*",
    "environment": ".*",
    "integration": ".*",
    "__rate_interval": "1m",
    "__interval": "30s",
    "__interval_ms": "30000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
_GRAFANA_VARIABLE = re.compile(
    r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)"
)

# Dashboard queries that legitimately return nothing in this scenario, with
# the reason: (panel title, refId) -> why. Every other query must show data.
DASHBOARD_QUERIES_WITHOUT_DATA: dict[tuple[str, str], str] = {}


def grafana_promql(expr: str) -> str:
    """The query Grafana sends for `expr`: every variable replaced by its value."""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in GRAFANA_VALUES:
            raise ValueError(f"no test value for Grafana variable {name!r} in {expr!r}")
        return GRAFANA_VALUES[name]

    return _GRAFANA_VARIABLE.sub(value, expr)


def test_grafana_variables_are_substituted_in_every_form() -> None:
    """$var, ${var}, ${var:format} and [[var]] all become the test value."""
    expr = 'rate(x{a=~"$project", b=~"${environment}", c=~"${integration:regex}", d=~"[[project]]"}[$__rate_interval])'
    assert grafana_promql(expr) == ('rate(x{a=~".*", b=~".*", c=~".*", d=~".*"}[1m])')


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus and its HTTP API."""

    url: str
    service: Service

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET an API path; the JSON document, also for 4xx answers."""
        status, body = http_request(f"{self.url}{path}?{urlencode(params)}")
        assert status in {200, 400, 422}, (path, params, status, body[:500])
        document: dict[str, Any] = json.loads(body)
        return document

    def query(self, expr: str) -> dict[str, Any]:
        """An instant query now: the whole answer (status, data or error)."""
        return self.api("/api/v1/query", query=expr)

    def vector(self, expr: str) -> list[dict[str, Any]]:
        """An instant query that must succeed: its result list."""
        document = self.query(expr)
        assert document["status"] == "success", (expr, document)
        result: list[dict[str, Any]] = document["data"]["result"]
        return result


def rules_with_short_holds(source: Path) -> dict[str, Any]:
    """The shipped rules with every `for:` shortened to 1s.

    The expressions, labels and annotations are the shipped ones, unchanged;
    only the hold time is shortened (the shipped minutes keep one bad probe
    from notifying anyone), so that alerts can fire within the test.
    """
    rules: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    return rules


def _until(
    check: Callable[[], tuple[bool, Any]], timeout: float = SETTLE_TIMEOUT
) -> Any:
    """Poll `check` (done, value) until done or the deadline; the last value."""
    deadline = time.monotonic() + timeout
    while True:
        done, value = check()
        if done or time.monotonic() > deadline:
            return value
        time.sleep(POLL_STEP)


@pytest.fixture(scope="module")
def prometheus(
    rich_scenario: RichScenario, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    """Debian's Prometheus scraping the daemon every second, with the shipped rules."""
    directory = tmp_path_factory.mktemp("prometheus")
    rules_file = directory / "rules.yaml"
    rules_file.write_text(
        yaml.safe_dump(rules_with_short_holds(RULES), sort_keys=False)
    )
    daemon = rich_scenario.daemon_url.removeprefix("http://")
    config = {
        "global": {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
        },
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [daemon]}]}
        ],
    }
    config_file = directory / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    service = Service(
        "prometheus",
        [
            PROMETHEUS,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--log.level=warn",
        ],
        directory / "prometheus.log",
    )
    try:
        server = Prometheus(f"http://{LOOPBACK}:{port}", service)
        wait_for(
            lambda: http_get_ok(f"{server.url}/-/ready"),
            "Prometheus to be ready",
            alive=[service],
        )

        def scraped() -> bool:
            up = server.vector(f'up{{job="{JOB}"}} == 1')
            probed = server.vector("count(ld_store_probe_up)")
            errors = server.vector("ld_store_api_errors_total")
            count = probed[0]["value"][1] if probed else "0"
            return bool(up and errors) and count == str(len(scenario.TARGETS))

        wait_for(scraped, "Prometheus to scrape the daemon", alive=[service])
        # A new error in LaunchDarkly's list while Prometheus watches: the
        # error counters grow, so "new errors" panels and rules have data.
        status, body = http_request(
            f"{rich_scenario.simulator_url}/_sim/integrations/"
            f"{quote(scenario.WRONG_PASSWORD)}/status",
            method="PATCH",
            body=json.dumps(
                {
                    "lastError": now_ms(),
                    "errors": [
                        *scenario.BY_ID[scenario.WRONG_PASSWORD].status["errors"],
                        {
                            "statusCode": 503,
                            "message": "connection reset again",
                            "timestamp": now_ms(),
                        },
                    ],
                }
            ).encode(),
        )
        assert status == 200, body
        yield server
        code = service.stop()
        assert code == 0, f"prometheus exited {code} on SIGTERM:\n{service.log_tail()}"
    finally:
        service.stop()


# --- the dashboard ----------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    """The dashboard JSON."""
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def dashboard_queries() -> list[tuple[tuple[str, str], str]]:
    """((panel title, refId), expr) of every panel query, rows' panels included."""
    panels = [p for top in dashboard()["panels"] for p in (top, *top.get("panels", []))]
    return [
        ((panel["title"], target["refId"]), target["expr"])
        for panel in panels
        for target in panel.get("targets", [])
    ]


def test_prometheus_scrapes_the_daemon_and_loads_every_shipped_rule(
    prometheus: Prometheus,
) -> None:
    """The scrape target is up and every shipped alert rule evaluates without error."""
    assert prometheus.vector(f'up{{job="{JOB}"}}')[0]["value"][1] == "1"
    shipped = [
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    ]

    def evaluated() -> tuple[bool, list[dict[str, Any]]]:
        groups = prometheus.api("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return all(
            rule.get("lastEvaluation", "").startswith("2") for rule in rules
        ) and (all(rule["health"] == "ok" for rule in rules)), rules

    rules = _until(evaluated)
    assert sorted(rule["name"] for rule in rules) == sorted(shipped)
    assert {rule["name"]: rule["health"] for rule in rules} == dict.fromkeys(
        shipped, "ok"
    ), [rule.get("lastError") for rule in rules]
    assert all(rule["duration"] == 1 for rule in rules if rule["type"] == "alerting")


def test_every_dashboard_query_is_valid_and_returns_data(
    prometheus: Prometheus,
) -> None:
    """Each panel query parses and shows data; the exceptions are listed with a reason."""
    queries = dashboard_queries()
    assert len(queries) >= 40

    def run() -> tuple[bool, tuple[dict[tuple[str, str], str], set[tuple[str, str]]]]:
        invalid: dict[tuple[str, str], str] = {}
        empty: set[tuple[str, str]] = set()
        for key, expr in queries:
            document = prometheus.query(grafana_promql(expr))
            if document["status"] != "success":
                invalid[key] = f"{document.get('error')} in {expr}"
            elif not document["data"]["result"] and key not in (
                DASHBOARD_QUERIES_WITHOUT_DATA
            ):
                empty.add(key)
        return bool(invalid) or not empty, (invalid, empty)

    invalid, empty = _until(run)
    assert invalid == {}
    assert sorted(empty) == [], "panel queries without data in the rich scenario"
    for key in DASHBOARD_QUERIES_WITHOUT_DATA:
        expr = dict(queries)[key]
        assert prometheus.vector(grafana_promql(expr)) == [], key


def test_dashboard_variables_offer_every_job_project_environment_and_integration(
    prometheus: Prometheus,
) -> None:
    """The variables' label_values() queries list the scenario's label values."""
    variables = {
        v["name"]: v for v in dashboard()["templating"]["list"] if v["type"] == "query"
    }
    expected = {
        # No cluster label in a single Prometheus: "All" (.*) matches its absence.
        "cluster": set(),
        "job": {JOB},
        "project": {"web", "mobile", "ops", "relay"},
        "environment": {e for _, e in scenario.PREFIXES} | {"production", "staging"},
        "integration": {"redis", "dynamodb"},
    }
    assert variables.keys() == expected.keys()
    for name, variable in variables.items():
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"])
        assert match is not None, variable["definition"]
        selector, label = grafana_promql(match.group(1)), match.group(2)
        document = prometheus.api(
            f"/api/v1/label/{label}/values", **{"match[]": selector}
        )
        assert document["status"] == "success", document
        assert set(document["data"]) == expected[name], name


# --- the alert rules --------------------------------------------------------------


def _target(labels: dict[str, str], prometheus: Prometheus) -> str:
    """The integration a series is about (the whole label set for monitor series).

    A Redis server's series (label `host`) are about the integrations stored on
    it, listed as the alerts tell people to: ld_store_target_info{host=...}.
    """
    if "integration_id" in labels:
        return labels["integration_id"]
    if "host" in labels:
        on_host = prometheus.vector(f'ld_store_target_info{{host="{labels["host"]}"}}')
        return ",".join(sorted({r["metric"]["integration_id"] for r in on_host}))
    return json.dumps(labels, sort_keys=True)


def test_prometheus_rule_expressions_return_data_exactly_for_the_scenario_problems(
    prometheus: Prometheus,
) -> None:
    """Each shipped rule expression is valid and selects exactly the targets it is about."""
    rules = {
        rule["alert"]: rule["expr"]
        for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    }
    assert rules.keys() == scenario.EXPECTED_ALERTS.keys()

    def run() -> tuple[bool, dict[str, frozenset[str]]]:
        found = {
            name: frozenset(
                _target(r["metric"], prometheus) for r in prometheus.vector(expr)
            )
            for name, expr in rules.items()
        }
        return found == scenario.EXPECTED_ALERTS, found

    assert _until(run) == scenario.EXPECTED_ALERTS


def _grafana_threshold(rule: dict[str, Any]) -> Callable[[float], bool]:
    """The rule's threshold expression (refId C) as a predicate on B = last(A)."""
    (condition,) = next(d for d in rule["data"] if d["refId"] == "C")["model"][
        "conditions"
    ]
    evaluator = condition["evaluator"]
    limit = float(evaluator["params"][0])
    if evaluator["type"] == "gt":
        return lambda value: value > limit
    if evaluator["type"] == "lt":
        return lambda value: value < limit
    raise AssertionError(f"{rule['title']}: unexpected evaluator {evaluator}")


def test_grafana_rule_queries_cross_their_thresholds_exactly_for_the_scenario_problems(
    prometheus: Prometheus,
) -> None:
    """Each Grafana rule's query is valid and its threshold holds exactly for the expected targets."""
    document = yaml.safe_load(GRAFANA_RULES.read_text(encoding="utf-8"))
    rules = {
        rule["title"]: (
            next(d for d in rule["data"] if d["refId"] == "A")["model"]["expr"],
            _grafana_threshold(rule),
        )
        for group in document["groups"]
        for rule in group["rules"]
    }
    assert rules.keys() == scenario.EXPECTED_ALERTS.keys()

    def run() -> tuple[bool, dict[str, frozenset[str]]]:
        found = {
            name: frozenset(
                _target(r["metric"], prometheus)
                for r in prometheus.vector(expr)
                if threshold(float(r["value"][1]))
            )
            for name, (expr, threshold) in rules.items()
        }
        return found == scenario.EXPECTED_ALERTS, found

    assert _until(run) == scenario.EXPECTED_ALERTS


def test_stale_store_alert_and_every_expected_alert_fire_in_prometheus(
    prometheus: Prometheus,
) -> None:
    """LDStoreStale fires for the stale stores, and every alert fires for exactly its targets."""
    expected = {
        name: targets for name, targets in scenario.EXPECTED_ALERTS.items() if targets
    }

    def firing() -> tuple[bool, dict[str, frozenset[str]]]:
        alerts = prometheus.api("/api/v1/alerts")["data"]["alerts"]
        found: dict[str, set[str]] = {}
        for alert in alerts:
            if alert["state"] == "firing":
                labels = alert["labels"]
                found.setdefault(labels["alertname"], set()).add(
                    _target(labels, prometheus)
                )
        frozen = {name: frozenset(targets) for name, targets in found.items()}
        return frozen == expected, frozen

    found = _until(firing)
    assert found.get("LDStoreStale") == {scenario.STALE, scenario.NEVER_SYNCED}
    assert found == expected

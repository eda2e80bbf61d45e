"""Alert identity: one alert per store problem, whatever the scrape topology.

The store alerts aggregate away the labels that name a replica or shard and
keep firing across a restart; the Grafana rules run the very same queries;
the example Alertmanager inhibition rules are valid and name real alerts.
The promtool cases in deploy/prometheus/ld-store-monitor.rules.test.yaml
(two replicas, a restart that changes `instance`, a reshard) and
tests/e2e/test_alert_delivery.py show the behaviour.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.commands import run, tool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/ld-store-monitor.rules.yaml"
RULE_TESTS = ROOT / "deploy/prometheus/ld-store-monitor.rules.test.yaml"
GRAFANA_RULES = ROOT / "grafana/provisioning/alerting/ld-store-monitor-rules.yaml"
INHIBIT_RULES = ROOT / "deploy/alertmanager/inhibit-rules.example.yaml"
MAKEFILE = ROOT / "Makefile"
# The labels that say which replica or shard a series came from.
TOPOLOGY = "without (instance, pod, container, endpoint, shard)"


def _groups() -> dict[str, list[dict[str, Any]]]:
    document = yaml.safe_load(RULES.read_text("utf-8"))
    return {group["name"]: group["rules"] for group in document["groups"]}


STORE_ALERTS = _groups()["ld-store-monitor.stores"]


def _names(rules: list[dict[str, Any]]) -> list[str]:
    return [str(rule["alert"]) for rule in rules]


@pytest.mark.parametrize("rule", STORE_ALERTS, ids=_names(STORE_ALERTS))
def test_store_alerts_aggregate_the_topology_away_and_survive_a_restart(
    rule: dict[str, Any],
) -> None:
    """`max|min without (instance, pod, container, endpoint, shard)` and keep_firing_for."""
    assert re.search(rf"\b(max|min) {re.escape(TOPOLOGY)} \(", rule["expr"]), rule[
        "expr"
    ]
    assert "instance" not in rule["annotations"]["description"]
    assert rule["keep_firing_for"] == "5m"


def test_monitor_alerts_select_the_job_with_one_selector() -> None:
    """Every job selector in the rules is the same documented knob."""
    selectors = set(re.findall(r"job\s*=~?\s*\"[^\"]*\"", RULES.read_text("utf-8")))
    assert selectors == {'job="ld-store-monitor"'}


def test_prometheus_supports_keep_firing_for() -> None:
    """keep_firing_for needs Prometheus 2.42 or newer: the Debian promtool is one."""
    version = run(tool("promtool"), "--version")
    match = re.search(r"version (\d+)\.(\d+)", version)
    assert match is not None, version
    assert (int(match.group(1)), int(match.group(2))) >= (2, 42)


def test_rule_tests_cover_two_replicas_a_restart_and_a_reshard() -> None:
    """The promtool suite feeds the same store from several instances and pods."""
    text = RULE_TESTS.read_text("utf-8")
    restart = re.findall(
        r'ld_store_stale\{[^}]*instance="([^"]+)"[^}]*integration_id="int-restart"',
        text,
    )
    assert len(set(restart)) == 2
    moved = re.findall(
        r'ld_store_probe_up\{[^}]*pod="([^"]+)"[^}]*integration_id="int-moved"', text
    )
    assert len(set(moved)) == 2
    both = re.findall(
        r'ld_store_available\{[^}]*pod="([^"]+)"[^}]*integration_id="int-both"', text
    )
    assert len(set(both)) == 2


def test_grafana_rules_query_the_prometheus_expressions() -> None:
    """Each Grafana query is its Prometheus rule's expression, comparison included.

    So Grafana creates alert instances for problems only; a name shipped at
    two severities uses its first (lowest threshold) rule's expression.
    """
    first: dict[str, str] = {}
    for rules in _groups().values():
        for rule in rules:
            first.setdefault(rule["alert"], rule["expr"].strip())
    document = yaml.safe_load(GRAFANA_RULES.read_text("utf-8"))
    queries = {
        rule["title"]: next(d for d in rule["data"] if d["refId"] == "A")["model"][
            "expr"
        ].strip()
        for group in document["groups"]
        for rule in group["rules"]
    }
    assert queries == first


def test_alertmanager_inhibition_example_is_valid_and_names_real_alerts(
    tmp_path: Path,
) -> None:
    """amtool accepts it inside a config; every alertname it matches exists."""
    inhibit = yaml.safe_load(INHIBIT_RULES.read_text("utf-8"))
    config = {
        "route": {"receiver": "null", "group_by": ["alertname", "integration_id"]},
        "receivers": [{"name": "null"}],
        **inhibit,
    }
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    out = run(tool("amtool"), "check-config", str(path))
    assert "SUCCESS" in out
    names = {rule["alert"] for rules in _groups().values() for rule in rules}
    for rule in inhibit["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            exact = re.fullmatch(r'alertname = "(\w+)"', matcher)
            if exact:
                assert exact.group(1) in names, matcher


def test_make_installs_alertmanager() -> None:
    """`make test` installs Debian's Alertmanager like the other test services."""
    text = MAKEFILE.read_text("utf-8")
    assert "prometheus-alertmanager:prometheus-alertmanager" in text


DASHBOARD = ROOT / "grafana/dashboards/ld-store-monitor.json"
# What names a replica in a query's result: a per-store panel must fold it.
PER_STORE = "project, environment, integration, integration_id"


def _dashboard_targets() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    document = json.loads(DASHBOARD.read_text("utf-8"))
    panels = [p for top in document["panels"] for p in (top, *top.get("panels", []))]
    return [(panel, target) for panel in panels for target in panel.get("targets", [])]


def test_dashboard_has_job_and_cluster_variables_on_every_query() -> None:
    """`cluster` and `job` variables, and every metric selector scoped by both."""
    document = json.loads(DASHBOARD.read_text("utf-8"))
    variables = {v["name"]: v for v in document["templating"]["list"]}
    for name in ("cluster", "job"):
        assert variables[name]["type"] == "query"
        assert variables[name]["includeAll"] is True
        assert variables[name]["allValue"] == ".*"
    for _, target in _dashboard_targets():
        for match in re.finditer(
            r"\b(?:ld_store|process)_\w+(\{[^}]*\})?", target["expr"]
        ):
            assert match.group(1), (target["expr"], match.group(0))
            assert 'job=~"$job", cluster=~"$cluster"' in match.group(1), target["expr"]


def test_per_store_time_series_fold_the_replicas_and_stay_readable() -> None:
    """A line per store, never per replica; at most a top 20, or problems only."""
    for panel, target in _dashboard_targets():
        if panel["type"] not in {"timeseries", "state-timeline", "bargauge"}:
            continue
        if "integration_id" not in target.get("legendFormat", ""):
            continue
        expr = target["expr"]
        assert f"by ({PER_STORE}" in expr, (panel["title"], expr)
        top = re.search(r"\b(?:topk|bottomk)\((\d+),", expr)
        problems_only = re.search(r"(==|!=|>) ?\d+\)?$", expr)
        assert (top and int(top.group(1)) <= 20) or problems_only, (
            panel["title"],
            expr,
        )

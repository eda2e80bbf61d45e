"""Metric names in the dashboard, rules and manifests against a real /metrics output.

A dashboard panel or an alert that names a metric the daemon never exports
shows nothing and fires never, without any error. Here every `ld_store_*`
name anywhere under `grafana/` and `deploy/` must be in the /metrics output
of the daemon watching the rich scenario (which has a target in every state,
so every conditional series exists).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from monitor.export.metrics import FAMILIES
from tests.support.processes import samples
from tests.support.promql import promql_series
from tests.support.scenario import RichScenario

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "grafana", ROOT / "deploy")
DASHBOARD = ROOT / "grafana/dashboards/ld-store-monitor.json"
NAME = re.compile(r"(?<![\w:])ld_store_[A-Za-z0-9_:]*")

# Every exported family, as queries name its samples.
METRICS = frozenset(spec.sample_name for spec in FAMILIES)


def names_in_sources() -> dict[str, set[str]]:
    """Every `ld_store_*` word in grafana/ and deploy/, with the files naming it."""
    found: dict[str, set[str]] = {}
    for source in SOURCES:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            for match in NAME.findall(path.read_text(encoding="utf-8")):
                name = match.rstrip(":")  # "ld_store_x: ..." in a description
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def dashboard_metric_names() -> set[str]:
    """The metric names the dashboard's panel queries select."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
    return {
        name
        for panel in panels
        for target in panel.get("targets", [])
        for name in promql_series(target["expr"])
    }


def exported_names(rich_scenario: RichScenario) -> set[str]:
    """Every sample name in the daemon's /metrics."""
    return {sample.name for sample in samples(rich_scenario.scrape())}


def test_every_metric_name_in_grafana_and_deploy_is_exported_by_the_daemon(
    rich_scenario: RichScenario,
) -> None:
    """Dashboard, both rule files, the PrometheusRule and the rule tests name only exported metrics."""
    used = names_in_sources()
    # Sanity: the dashboard, rules, manifest and rule tests are all read.
    files = set().union(*used.values())
    assert {
        "grafana/dashboards/ld-store-monitor.json",
        "grafana/provisioning/alerting/ld-store-monitor-rules.yaml",
        "deploy/prometheus/ld-store-monitor.rules.yaml",
        "deploy/prometheus/ld-store-monitor.rules.test.yaml",
        "deploy/kubernetes/prometheusrule.yaml",
    } <= files
    exported = exported_names(rich_scenario)
    # A name ending in "_" is a family mentioned in prose, e.g. `ld_store_api_*`.
    missing = {
        name: sorted(where)
        for name, where in used.items()
        if not name.endswith("_") and name not in exported
    }
    unknown_families = {
        name: sorted(where)
        for name, where in used.items()
        if name.endswith("_") and not any(e.startswith(name) for e in exported)
    }
    assert missing == {}, "named in grafana/ or deploy/ but never exported"
    assert unknown_families == {}


def test_every_metric_family_is_exported_and_on_the_dashboard(
    rich_scenario: RichScenario,
) -> None:
    """Each family of the table has samples in the daemon's /metrics and a panel."""
    exported = {
        n
        for n in exported_names(rich_scenario)
        if n.startswith(("ld_store_", "process_"))
    }
    assert sorted(METRICS - exported) == [], "families the rich scenario never exports"
    assert sorted(exported - METRICS) == [], "exported but not in FAMILIES"
    assert sorted(METRICS - dashboard_metric_names()) == [], "families no panel shows"

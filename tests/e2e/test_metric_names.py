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

import pytest

from tests.e2e.processes import samples
from tests.e2e.scenario import RichScenario
from tests.unit.test_deploy_artifacts import promql_series

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "grafana", ROOT / "deploy")
DASHBOARD = ROOT / "grafana/dashboards/ld-store-monitor.json"
NAME = re.compile(r"(?<![\w:])ld_store_[A-Za-z0-9_:]*")

# The metric contract: the table of DESIGN.md ("Names, types and meanings below
# are a contract"). DESIGN.md is not part of the repository, hence the copy.
CONTRACT = frozenset(
    {
        "ld_store_integration_info",
        "ld_store_api_available",
        "ld_store_api_potentially_stale",
        "ld_store_api_last_sync_timestamp_seconds",
        "ld_store_api_last_sync_age_seconds",
        "ld_store_api_last_error_timestamp_seconds",
        "ld_store_api_recent_errors",
        "ld_store_api_errors_total",
        "ld_store_probe_up",
        "ld_store_probe_duration_seconds",
        "ld_store_probe_schema_ok",
        "ld_store_probe_failures_total",
        "ld_store_probe_phase_duration_seconds",
        "ld_store_tls_cert_expiry_timestamp_seconds",
        "ld_store_probe_last_success_timestamp_seconds",
        "ld_store_synchronized_on_timestamp_seconds",
        "ld_store_sync_age_seconds",
        "ld_store_available",
        "ld_store_stale",
        "ld_store_sync_disagreement",
        "ld_store_api_up",
        "ld_store_discovery_last_success_timestamp_seconds",
        "ld_store_api_requests_total",
        "ld_store_build_info",
    }
)


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


def test_every_contract_metric_is_exported_and_on_the_dashboard(
    rich_scenario: RichScenario,
) -> None:
    """DESIGN.md's contract metrics are all exported and all shown by some panel."""
    exported = exported_names(rich_scenario)
    on_dashboard = dashboard_metric_names()
    unused = sorted(n for n in exported - on_dashboard if n.startswith("ld_store_"))
    print("exported but used by no dashboard panel:", *unused, sep="\n  ")
    assert sorted(CONTRACT - exported) == []
    assert sorted(CONTRACT - on_dashboard) == [], "contract metrics no panel shows"

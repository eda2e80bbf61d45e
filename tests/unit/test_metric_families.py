"""The metric families: one table (`FAMILIES`), the exposition built from it.

`CONTRACT` below is the one pinned copy of the public metric names and
types: dashboards and alerts outside this repository query them, so a
rename must fail here, on purpose. Every other test that needs the names
(deploy artefacts, the e2e name check) reads them from `FAMILIES`, and
docs/metrics.md must list exactly them.

A fixed state with every kind of series renders to the pinned text in
tests/data/ byte for byte, in both formats: the table, the help texts, the
family order and the value formatting are all in it. A deliberate change
to the exposition regenerates those files (see `write_golden`).
"""

from __future__ import annotations

import asyncio
import functools
import platform
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)

from monitor import __version__
from monitor.config import Config, ProbeConfig, Sdk
from monitor.export.metrics import (
    FAMILIES,
    REVISION_ENV,
    ScrapeCache,
    build_labels,
    render_metrics,
)
from monitor.launchdarkly.counters import ApiCounters
from monitor.launchdarkly.discovery import DiscoveredIntegration, DiscoveryView
from monitor.launchdarkly.models import ApiStatus, Integration, StoreError
from monitor.probes.result import (
    CanaryResult,
    ProbeResult,
    Reason,
    RedisHealth,
    TableInfo,
)
from monitor.probes.runner import HostGate, RunnerLoad, TargetRecord
from monitor.service.lag import LagWindow
from monitor.service.process import read_process
from monitor.service.state import MonitorState
from monitor.targets import DynamoDBEndpoint, Labels, RedisEndpoint, Target
from tests.support.scrape import Scrape

NOW = 1_800_000_000.0
ROOT = Path(__file__).resolve().parents[2]
METRICS_DOC = ROOT / "docs/metrics.md"
DATA = Path(__file__).resolve().parents[1] / "data"
# (state, OpenMetrics?) -> the pinned exposition
GOLDEN = {
    ("rich", False): DATA / "metrics-golden.txt",
    ("rich", True): DATA / "metrics-golden.openmetrics.txt",
    ("bare", False): DATA / "metrics-golden-bare.txt",
}
# The public metric contract: every name a query may use, with its type.
# Pinned by hand, deliberately: renaming a metric breaks dashboards and
# alerts that this repository does not see.
CONTRACT = {
    "ld_store_integration_info": "gauge",
    "ld_store_api_available": "gauge",
    "ld_store_api_potentially_stale": "gauge",
    "ld_store_api_last_sync_timestamp_seconds": "gauge",
    "ld_store_api_last_sync_age_seconds": "gauge",
    "ld_store_api_last_error_timestamp_seconds": "gauge",
    "ld_store_api_recent_errors": "gauge",
    "ld_store_api_errors_total": "counter",
    "ld_store_probe_up": "gauge",
    "ld_store_probe_success": "gauge",
    "ld_store_membership_read_ok": "gauge",
    "ld_store_probe_duration_seconds": "gauge",
    "ld_store_probe_phase_duration_seconds": "gauge",
    "ld_store_probe_schema_ok": "gauge",
    "ld_store_probe_failures_total": "counter",
    "ld_store_probe_last_success_timestamp_seconds": "gauge",
    "ld_store_probe_consecutive_failures": "gauge",
    "ld_store_probe_backoff_seconds": "gauge",
    "ld_store_synchronized_on_timestamp_seconds": "gauge",
    "ld_store_sync_age_seconds": "gauge",
    "ld_store_sync_in_future": "gauge",
    "ld_store_available": "gauge",
    "ld_store_stale": "gauge",
    "ld_store_tls_cert_expiry_timestamp_seconds": "gauge",
    "ld_store_redis_eviction_unsafe": "gauge",
    "ld_store_redis_memory_used_bytes": "gauge",
    "ld_store_redis_maxmemory_bytes": "gauge",
    "ld_store_redis_persistence_enabled": "gauge",
    "ld_store_redis_info": "gauge",
    "ld_store_dynamodb_table_info": "gauge",
    "ld_store_dynamodb_table_readable": "gauge",
    "ld_store_dynamodb_table_items": "gauge",
    "ld_store_membership_data_present": "gauge",
    "ld_store_canary_ok": "gauge",
    "ld_store_target_info": "gauge",
    "ld_store_credential_withheld": "gauge",
    "ld_store_sync_disagreement": "gauge",
    "ld_store_stale_after_seconds": "gauge",
    "ld_store_build_info": "gauge",
    "ld_store_shard_ordinal": "gauge",
    "ld_store_shards": "gauge",
    "ld_store_api_up": "gauge",
    "ld_store_discovery_last_success_timestamp_seconds": "gauge",
    "ld_store_api_parse_errors_total": "counter",
    "ld_store_api_requests_total": "counter",
    "ld_store_api_rate_limit_remaining": "gauge",
    "ld_store_config_last_reload_successful": "gauge",
    "ld_store_config_last_reload_success_timestamp_seconds": "gauge",
    "ld_store_probe_interval_seconds": "gauge",
    "ld_store_discovery_duration_seconds": "gauge",
    "ld_store_probe_round_duration_seconds": "gauge",
    "ld_store_probe_round_budget_seconds": "gauge",
    "ld_store_probe_rounds_total": "counter",
    "ld_store_probe_rounds_overrun_total": "counter",
    "ld_store_probes_fd_exhausted_total": "counter",
    "ld_store_probes_in_flight": "gauge",
    "ld_store_probes_queued": "gauge",
    "ld_store_probe_host_up": "gauge",
    "ld_store_event_loop_lag_seconds": "gauge",
    "ld_store_event_loop_lag_p99_seconds": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
}
# build_info carries the package version, the revision and the Python
# version; the pinned text says VERSION, REVISION and PYTHON.
BUILD_LABELS = build_labels()
PINNED_BUILD_LABELS = 'version="VERSION",revision="REVISION",python_version="PYTHON"'
# The process_* figures of the rich state (a real process's vary).
PROCESS = {
    "process_cpu_seconds_total": 12.5,
    "process_resident_memory_bytes": 130_000_000.0,
    "process_virtual_memory_bytes": 400_000_000.0,
    "process_start_time_seconds": NOW - 3600,
    "process_open_fds": 42.0,
    "process_max_fds": 1_048_576.0,
}


def ms(ago: float) -> int:
    """Epoch milliseconds `ago` seconds before NOW."""
    return int((NOW - ago) * 1000)


def integration(
    integration_id: str, kind: str, status: ApiStatus, name: str = "Store"
) -> DiscoveredIntegration:
    """A discovered integration in project web, environment prod."""
    assert kind in {"redis", "dynamodb"}
    return DiscoveredIntegration(
        Integration(
            integration_id,
            "redis" if kind == "redis" else "dynamodb",
            "web",
            "prod",
            name,
            integration_id != "off",
            1,
            status,
        ),
        "cid",
    )


def target(integration_id: str, kind: str, source: str = "api") -> Target:
    """A target with the labels of `integration_id`."""
    endpoint = (
        RedisEndpoint("redis.local", 6379)
        if kind == "redis"
        else DynamoDBEndpoint("table", "us-east-1")
    )
    project = "web" if source == "api" else "static"
    return Target(
        integration_id,
        "api" if source == "api" else "static",
        Labels(
            project, project if source == "static" else "prod", kind, integration_id
        ),
        integration_id,
        "pfx",
        endpoint,
    )


def rich_state() -> MonitorState:
    """A state with a series in every family: API view, stores of both kinds, failures."""
    view = DiscoveryView(
        integrations=(
            integration(
                "healthy",
                "redis",
                ApiStatus(available=True, potentially_stale=False, last_sync_ms=ms(20)),
                name='Team "A" \\ main',
            ),
            integration(
                "broken",
                "dynamodb",
                ApiStatus(
                    available=False,
                    last_error_ms=ms(60),
                    errors=(
                        StoreError(403, "denied", ms(60)),
                        StoreError(500, "boom", ms(120)),
                    ),
                    errors_total=2,
                ),
            ),
            integration("off", "redis", ApiStatus()),
        ),
        api_up=True,
        completed=True,
        last_success=NOW - 5,
    )
    api = ApiCounters(
        requests=Counter(
            {("list_integrations", "200"): 7, ("get_environment", "timeout"): 1}
        ),
        rate_limit_remaining={"global": 99, "route:list_integrations": 12},
        errors_total={"broken": Counter({"403": 1, "500": 1})},
        parse_errors_total=3,
    )
    healthy = ProbeResult(
        NOW - 1,
        0.0025,
        True,
        True,
        True,
        ms(30),
        phases=(
            ("connect", 0.001),
            ("tls", 0.0005),
            ("auth", 0.0004),
            ("read", 0.0006),
        ),
        tls_not_after=NOW + 86_400 * 30,
        membership_present=True,
        redis=RedisHealth("7.0.15", "allkeys-lru", 1_000_000, 123_456, False),
        canaries=(
            CanaryResult("vip", True, "included as expected"),
            CanaryResult("gone", False, "expected included, found nothing"),
            CanaryResult("unknown", None, "no generation"),
        ),
        membership_read_ok=True,
    )
    broken = ProbeResult(
        NOW - 2,
        1.5,
        False,
        False,
        None,
        None,
        reason=Reason.AUTH,
        error="denied",
        phases=(("connect", 0.25),),
        membership_read_ok=False,
        membership_error="denied",
    )
    future = ProbeResult(
        NOW - 1,
        0.01,
        True,
        True,
        True,
        ms(-45),  # synchronizedOn in the future: a negative age
        table=TableInfo("ACTIVE", "PAY_PER_REQUEST", 1234),
        membership_present=False,
    )
    records = {
        "healthy": TargetRecord(result=healthy, last_success=NOW - 1),
        "broken": TargetRecord(
            result=broken,
            failures=Counter({Reason.AUTH: 3, Reason.TIMEOUT: 1}),
            consecutive_failures=3,
            backoff=60.0,
            last_success=NOW - 3600,
        ),
        "relay": TargetRecord(result=future, last_success=NOW - 1),
        "unprobed": TargetRecord(),
    }
    targets = (
        target("healthy", "redis"),
        target("broken", "dynamodb"),
        target("relay", "dynamodb", source="static"),
        target("unprobed", "redis", source="static"),
    )
    probe = ProbeConfig(interval=12.5, timeout=5, health_interval=600)
    return MonitorState(
        config=Config().model_copy(update={"probe": probe}),
        view=view,
        api=api,
        records=records,
        targets=targets,
        config_reload_ok=False,
        config_reload_time=NOW - 600,
        process=lambda: PROCESS,
        **saturation(down=broken),
    )


def saturation(down: ProbeResult) -> dict[str, Any]:
    """A busy runner: a round in progress, an overrun, one host of two down, loop lag."""
    lag = LagWindow()
    now = time.monotonic()
    for lagged in [0.002] * 98 + [0.004, 0.25]:
        lag.record(lagged, now)
    slots = asyncio.Semaphore  # never awaited here
    return {
        "load": RunnerLoad(
            in_flight=3,
            pending=10,
            rounds=7,
            rounds_overrun=2,
            last_round_duration=9.75,
            last_round_budget=15.0,
        ),
        "hosts": {
            "redis:redis.local:6379": HostGate(slots(4)),
            "dynamodb:us-east-1": HostGate(slots(4), down=down, down_round=7),
        },
        "discovery_duration": 1.25,
        "lag": lag,
    }


def bare_state() -> MonitorState:
    """The API off, no targets, the configuration never loaded: monitor families only."""
    return MonitorState(config=Config())


STATES = {"rich": rich_state, "bare": bare_state}


def pinned(text: str) -> str:
    """The exposition with the build labels replaced by VERSION, REVISION, PYTHON."""
    return text.replace(BUILD_LABELS, PINNED_BUILD_LABELS)


def rendered(state: MonitorState, *, openmetrics: bool) -> str:
    """The exposition of `state` at NOW, version pinned."""
    return pinned(
        render_metrics(state, openmetrics=openmetrics, clock=lambda: NOW).decode()
    )


def write_golden() -> None:
    """Regenerate the pinned files: `python -c 'from tests.unit.test_metric_families import write_golden; write_golden()'`."""
    for (state, openmetrics), path in GOLDEN.items():
        path.write_text(rendered(STATES[state](), openmetrics=openmetrics), "utf-8")


@pytest.mark.parametrize(
    ("state", "openmetrics"), list(GOLDEN), ids=[p.name for p in GOLDEN.values()]
)
def test_exposition_of_a_fixed_state_is_unchanged(
    state: str, openmetrics: bool
) -> None:
    """Byte for byte the pinned exposition: names, help, types, order and values."""
    expected = GOLDEN[state, openmetrics].read_text("utf-8")
    assert rendered(STATES[state](), openmetrics=openmetrics) == expected


def test_the_families_are_the_pinned_public_contract() -> None:
    """Names (as queries spell them) and types: a rename or a new family shows up here."""
    assert {spec.sample_name: spec.kind for spec in FAMILIES} == CONTRACT
    assert len({spec.name for spec in FAMILIES}) == len(FAMILIES)


def test_every_family_is_exported_in_table_order() -> None:
    """The exposition of a full state has exactly the table's families, in its order."""
    text = render_metrics(rich_state(), openmetrics=True, clock=lambda: NOW).decode()
    exported = [(f.name, f.type) for f in parse_openmetrics(text)]  # type: ignore[no-untyped-call]  # untyped upstream
    assert exported == [(spec.name, spec.kind) for spec in FAMILIES]


def test_monitor_families_are_exported_only_with_their_source() -> None:
    """Without the API, the api_* and discovery families of the monitor are absent."""
    text = render_metrics(bare_state(), clock=lambda: NOW).decode()
    typed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    absent = {spec.sample_name for spec in FAMILIES} - typed
    assert absent == {
        "ld_store_api_up",
        "ld_store_discovery_last_success_timestamp_seconds",
        "ld_store_api_parse_errors_total",
        "ld_store_api_requests_total",
        "ld_store_api_rate_limit_remaining",
        "ld_store_config_last_reload_success_timestamp_seconds",
        "ld_store_discovery_duration_seconds",
        "ld_store_probe_round_duration_seconds",
        "ld_store_probe_round_budget_seconds",
        "ld_store_event_loop_lag_seconds",
        "ld_store_event_loop_lag_p99_seconds",
        *PROCESS,
    }


def family_texts(text: str) -> dict[str, str]:
    """Text-format exposition -> each family's block, by its name."""
    return {block.split(" ", 1)[0]: block for block in text.split("# HELP ")[1:]}


def test_per_result_families_do_not_depend_on_the_scrape_time() -> None:
    """Only per_scrape families change with the clock alone.

    A per_result family is rendered once per result and its text kept; one
    whose value moves with the scrape time (an age, the SDK's stale flag)
    would freeze in the cache.
    """
    state = rich_state()
    early = family_texts(render_metrics(state, clock=lambda: NOW).decode())
    late = family_texts(render_metrics(state, clock=lambda: NOW + 10_000).decode())
    moved = {name for name, block in early.items() if late[name] != block}
    cadence = {spec.sample_name: spec.cadence for spec in FAMILIES}
    assert moved, "the state should have ages that move"
    assert {cadence[name] for name in moved} == {"per_scrape"}


def test_every_per_result_family_is_served_from_the_kept_text() -> None:
    """A later scrape from the cache equals a fresh render then.

    A family filled with the per-result text but marked per_scrape would be
    written once, outside the kept text, and vanish from cached scrapes.
    """
    state = rich_state()
    cache = ScrapeCache()
    render_metrics(state, clock=lambda: NOW, cache=cache)
    for later in (NOW + 100, NOW + 10_000):
        clock = functools.partial(float, later)
        assert render_metrics(state, clock=clock, cache=cache) == (
            render_metrics(state, clock=clock)
        )


def documented_families(text: str) -> dict[str, str]:
    """metric -> type from every markdown table whose first columns are `metric | type`."""
    found: dict[str, str] = {}
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif header[:2] == ["metric", "type"] and not set(cells[0]) <= set("-: "):
            name = cells[0].strip("`")
            assert name not in found, f"{name} is documented twice"
            found[name] = cells[1]
    return found


def test_docs_list_exactly_the_families() -> None:
    """docs/metrics.md's tables name every family, with its type, and nothing else."""
    documented = documented_families(METRICS_DOC.read_text("utf-8"))
    assert documented == {spec.sample_name: spec.kind for spec in FAMILIES}


def test_target_info_names_each_targets_sdk_and_status_follows_it() -> None:
    """ld_store_target_info carries `sdk`; available/stale follow that profile."""
    state = rich_state()
    state.targets = tuple(
        replace(t, sdk=Sdk.PHP) if t.id == "broken" else t for t in state.targets
    )
    text = rendered(state, openmetrics=False)
    head = 'project="web",environment="prod",integration="dynamodb",integration_id="broken"'
    assert (
        f'ld_store_target_info{{{head},sdk="php",host="dynamodb:us-east-1"}} 1.0'
        in (text)
    )
    assert 'integration_id="healthy",sdk="python",host="redis:' in text
    assert "sdk=" not in family_texts(text)["ld_store_available"]
    # The broken table's read failed: Python says unavailable, PHP swallows it.
    assert f"ld_store_available{{{head}}} 1.0" in text
    assert f"ld_store_stale{{{head}}} 1.0" in text


def test_saturation_families_follow_the_runner_and_the_loop() -> None:
    """Round figures, slots, hosts and lag come from the state's live objects."""
    state = rich_state()
    scrape = Scrape(rendered(state, openmetrics=False))

    def value(name: str, **labels: str) -> float:
        (sample,) = scrape.find(name, **labels)
        return sample.value

    assert value("ld_store_probe_interval_seconds") == 12.5
    assert value("ld_store_probe_round_duration_seconds") == 9.75
    assert value("ld_store_probe_round_budget_seconds") == 15.0
    assert value("ld_store_probe_rounds_total") == 7
    assert value("ld_store_probe_rounds_overrun_total") == 2
    assert value("ld_store_probes_in_flight") == 3
    assert value("ld_store_probes_queued") == 7  # pending 10, 3 of them running
    assert value("ld_store_discovery_duration_seconds") == 1.25
    assert value("ld_store_probe_host_up", host="redis:redis.local:6379") == 1
    assert value("ld_store_probe_host_up", host="dynamodb:us-east-1") == 0
    assert value("ld_store_event_loop_lag_seconds") == 0.25
    assert value("ld_store_event_loop_lag_p99_seconds") == 0.004
    # The live objects: a later scrape sees the runner's new figures.
    state.load.in_flight = 0
    state.load.pending = 0
    state.hosts["dynamodb:us-east-1"].down = None
    scrape = Scrape(rendered(state, openmetrics=False))
    assert value("ld_store_probes_queued") == 0
    assert value("ld_store_probe_host_up", host="dynamodb:us-east-1") == 1


def test_build_info_carries_version_revision_and_python_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """revision from LD_STORE_MONITOR_REVISION (baked into the image), else "unknown"."""
    monkeypatch.delenv(REVISION_ENV, raising=False)
    (sample,) = Scrape.of(bare_state()).find("ld_store_build_info")
    assert sample.labels == {
        "version": __version__,
        "revision": "unknown",
        "python_version": platform.python_version(),
    }
    monkeypatch.setenv(REVISION_ENV, "0123abc")
    (sample,) = Scrape.of(bare_state()).find("ld_store_build_info")
    assert sample.labels["revision"] == "0123abc"


def test_process_families_come_from_this_process() -> None:
    """The Monitor's state reads the real process_* figures at each scrape."""
    state = MonitorState(config=Config(), process=read_process)
    scrape = Scrape.of(state)
    values = {name: scrape.find(name)[0].value for name in PROCESS}
    assert values["process_resident_memory_bytes"] > 1_000_000
    assert (
        values["process_virtual_memory_bytes"]
        >= (values["process_resident_memory_bytes"])
    )
    assert 0 < values["process_open_fds"] <= values["process_max_fds"]
    assert values["process_cpu_seconds_total"] > 0
    assert abs(values["process_start_time_seconds"] - time.time()) < 86_400


REDIS_SERVER_FAMILIES = (
    "ld_store_redis_eviction_unsafe",
    "ld_store_redis_memory_used_bytes",
    "ld_store_redis_maxmemory_bytes",
    "ld_store_redis_persistence_enabled",
    "ld_store_redis_info",
)


def test_redis_health_is_one_series_per_server_joinable_by_host() -> None:
    """Two targets on one redis-server: one series per family, labelled host,
    from the newer result; both targets' ld_store_target_info carry that host."""
    state = rich_state()
    older = RedisHealth("7.0.14", "noeviction", 0, 99, True)
    newer = RedisHealth("7.0.15", "allkeys-lru", 1_000_000, 123_456, False)
    base = ProbeResult(NOW - 1, 0.01, True, True, True, ms(30))
    state.records = {
        **state.records,
        "healthy": TargetRecord(result=replace(base, redis=newer)),
        "unprobed": TargetRecord(
            result=replace(base, finished_at=NOW - 9, redis=older)
        ),
    }
    families = family_texts(rendered(state, openmetrics=False))
    host = 'host="redis:redis.local:6379"'
    expected = {
        "ld_store_redis_eviction_unsafe": f"{{{host}}} 1.0",
        "ld_store_redis_memory_used_bytes": f"{{{host}}} 123456.0",
        "ld_store_redis_maxmemory_bytes": f"{{{host}}} 1000000.0",
        "ld_store_redis_persistence_enabled": f"{{{host}}} 0.0",
        "ld_store_redis_info": (
            f'{{{host},version="7.0.15",maxmemory_policy="allkeys-lru"}} 1.0'
        ),
    }
    for name in REDIS_SERVER_FAMILIES:
        samples = families[name].splitlines()[2:]  # after HELP and TYPE
        assert samples == [name + expected[name]], name
    info = families["ld_store_target_info"]
    for integration_id in ("healthy", "unprobed"):
        assert f'integration_id="{integration_id}",sdk="python",{host}}} 1.0' in info
    # The newest result wins, whichever target it belongs to.
    state.records["unprobed"] = TargetRecord(
        result=replace(base, finished_at=NOW, redis=older)
    )
    families = family_texts(rendered(state, openmetrics=False))
    assert (
        f"ld_store_redis_memory_used_bytes{{{host}}} 99.0"
        in families["ld_store_redis_memory_used_bytes"]
    )


def test_redis_servers_are_apart_and_a_target_without_endpoint_has_no_host() -> None:
    """Each server its own series; a target that cannot be located has no host label."""
    state = rich_state()
    other = replace(
        target("unprobed", "redis", source="static"),
        endpoint=RedisEndpoint("10.0.0.1", 6380),
    )
    nowhere = replace(target("lost", "redis", source="static"), endpoint=None)
    state.targets = (*state.targets[:3], other, nowhere)
    health = RedisHealth("6.2.0", "noeviction", 0, 7, True)
    state.records = {
        **state.records,
        "unprobed": TargetRecord(
            result=ProbeResult(NOW - 1, 0.01, True, True, True, ms(30), redis=health)
        ),
    }
    families = family_texts(rendered(state, openmetrics=False))
    used = families["ld_store_redis_memory_used_bytes"]
    assert 'ld_store_redis_memory_used_bytes{host="redis:10.0.0.1:6380"} 7.0' in used
    assert (
        'ld_store_redis_memory_used_bytes{host="redis:redis.local:6379"} 123456.0'
        in used
    )
    assert (
        'ld_store_target_info{project="static",environment="static",'
        'integration="redis",integration_id="lost",sdk="python"} 1.0'
    ) in families["ld_store_target_info"]

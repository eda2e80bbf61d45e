"""Every metric the monitor exports, built at scrape time from the state.

`FAMILIES` is the one declaration of the exported families: name, type,
help text, which side fills them and how often their samples change. The
code below only fills families by name. `render_metrics` turns the latest
state into the exposition: series of deleted integrations disappear by
themselves, ages are computed at scrape time so they never freeze, and a
scrape never waits for the API or a store.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from monitor import __version__
from monitor.config import ProbeConfig, Sdk
from monitor.export.exposition import (
    Chunks,
    Family,
    KeptLines,
    Kind,
    capture,
    escape,
    head_of,
    label_string,
    render,
)
from monitor.export.verdict import sync_disagreement
from monitor.launchdarkly.discovery import DiscoveredIntegration
from monitor.probes.profiles import Parsed, profile_of, status_of
from monitor.probes.result import ProbeResult, RedisHealth, sync_in_future
from monitor.probes.runner import TargetRecord
from monitor.service.state import MonitorState
from monitor.targets import LABEL_NAMES, DynamoDBEndpoint, RedisEndpoint, Target

# api: one series set per discovered integration (LaunchDarkly's view);
# probe: one per probed target; monitor: the monitor itself, no target labels.
Side = Literal["api", "probe", "monitor"]
# per_result: rendered once per discovery listing or probe result and kept
# (`ScrapeCache`); per_scrape: computed at every scrape (ages, SDK status).
Cadence = Literal["per_result", "per_scrape"]


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """One exported metric family, declared as data.

    `name` is the family's full name (`ld_store_...`), as OpenMetrics names
    it: counters' samples carry `_total` on top (`sample_name`). `help` may
    hold `{probe_interval:g}` and `{health_interval:g}`, filled from the
    configuration at scrape time.
    """

    name: str
    kind: Kind
    help: str
    side: Side
    cadence: Cadence

    @property
    def sample_name(self) -> str:
        """The name its samples carry (and the text format's family name)."""
        return f"{self.name}_total" if self.kind == "counter" else self.name


_API = "Refreshed every API interval."
_PROBE = "Refreshed every probe interval ({probe_interval:g}s)."
_HEALTH = "Refreshed every {health_interval:g}s."

# In exposition order. A scrape exports every api and probe family (empty
# ones too); a monitor family only when its source exists (`_monitor_side`).
FAMILIES: tuple[FamilySpec, ...] = (
    FamilySpec("ld_store_integration_info", "gauge",
               f"One series per discovered integration. {_API}",
               "api", "per_result"),
    FamilySpec("ld_store_api_available", "gauge",
               f"LaunchDarkly's _status.available (absent if omitted). {_API}",
               "api", "per_result"),
    FamilySpec("ld_store_api_potentially_stale", "gauge",
               f"LaunchDarkly's _status.potentiallyStale. {_API}",
               "api", "per_result"),
    FamilySpec("ld_store_api_last_sync_timestamp_seconds", "gauge",
               f"LaunchDarkly's _status.lastSync. {_API}",
               "api", "per_result"),
    FamilySpec("ld_store_api_last_sync_age_seconds", "gauge",
               "Seconds since LaunchDarkly's lastSync, computed at scrape time.",
               "api", "per_scrape"),
    FamilySpec("ld_store_api_last_error_timestamp_seconds", "gauge",
               f"LaunchDarkly's _status.lastError. {_API}",
               "api", "per_result"),
    FamilySpec("ld_store_api_recent_errors", "gauge",
               f"Entries in LaunchDarkly's _status.errors now. {_API}",
               "api", "per_result"),
    FamilySpec("ld_store_api_errors", "counter",
               "Distinct _status.errors entries seen (deduplicated across polls).",
               "api", "per_result"),
    FamilySpec("ld_store_probe_up", "gauge",
               f"1 if the store was reachable and authenticated. {_PROBE}",
               "probe", "per_result"),
    FamilySpec("ld_store_probe_success", "gauge",
               "1 if the whole read the target's SDK makes (metadata and "
               "membership) succeeded, under its profile.",
               "probe", "per_scrape"),
    FamilySpec("ld_store_membership_read_ok", "gauge",
               "1 if the membership read the SDKs make for an evaluation "
               f"succeeded (0 also when the store could not be read). {_PROBE}",
               "probe", "per_result"),
    FamilySpec("ld_store_probe_duration_seconds", "gauge",
               f"Duration of the last probe. {_PROBE}",
               "probe", "per_result"),
    FamilySpec("ld_store_probe_phase_duration_seconds", "gauge",
               f"Each phase of the last probe. {_PROBE}",
               "probe", "per_result"),
    FamilySpec("ld_store_probe_schema_ok", "gauge",
               f"1 if the layout is as the SDKs expect. {_PROBE}",
               "probe", "per_result"),
    FamilySpec("ld_store_probe_failures", "counter",
               "Failed probes by reason.",
               "probe", "per_result"),
    FamilySpec("ld_store_probe_last_success_timestamp_seconds", "gauge",
               "When a probe last succeeded.",
               "probe", "per_result"),
    FamilySpec("ld_store_probe_consecutive_failures", "gauge",
               "Probes failed in a row.",
               "probe", "per_result"),
    FamilySpec("ld_store_probe_backoff_seconds", "gauge",
               "Extra wait before the next probe of a failing target.",
               "probe", "per_result"),
    FamilySpec("ld_store_synchronized_on_timestamp_seconds", "gauge",
               f"synchronizedOn read from the store. {_PROBE}",
               "probe", "per_result"),
    FamilySpec("ld_store_sync_age_seconds", "gauge",
               "Seconds since the store's synchronizedOn, at scrape time.",
               "probe", "per_scrape"),
    FamilySpec("ld_store_sync_in_future", "gauge",
               "1 if the store's synchronizedOn lies more than a day ahead of the "
               "monitor's clock: impossible, and the SDKs then never see the store "
               "as stale.",
               "probe", "per_scrape"),
    FamilySpec("ld_store_available", "gauge",
               "What an SDK's BigSegmentStoreStatus.available would be now.",
               "probe", "per_scrape"),
    FamilySpec("ld_store_stale", "gauge",
               "What an SDK's BigSegmentStoreStatus.stale would be now.",
               "probe", "per_scrape"),
    FamilySpec("ld_store_tls_cert_expiry_timestamp_seconds", "gauge",
               "Earliest notAfter in the certificate chain.",
               "probe", "per_result"),
    # One series per Redis server (label host, as ld_store_probe_host_up and
    # ld_store_target_info name it), from the newest INFO among its targets.
    FamilySpec("ld_store_redis_eviction_unsafe", "gauge",
               "1 if an allkeys-* policy with maxmemory may evict keys; one series "
               f"per Redis server (host). {_HEALTH}",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_redis_memory_used_bytes", "gauge",
               f"INFO used_memory, per Redis server (host). {_HEALTH}",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_redis_maxmemory_bytes", "gauge",
               f"INFO maxmemory (0: no limit), per Redis server (host). {_HEALTH}",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_redis_persistence_enabled", "gauge",
               "1 if AOF is on or an RDB snapshot was taken since start, per Redis "
               f"server (host). {_HEALTH}",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_redis_info", "gauge",
               f"Redis version and eviction policy, per Redis server (host). {_HEALTH}",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_dynamodb_table_info", "gauge",
               "DynamoDB table billing mode (DescribeTable, cached).",
               "probe", "per_result"),
    FamilySpec("ld_store_dynamodb_table_readable", "gauge",
               "1 if the DynamoDB table's status (label table_status, from "
               "DescribeTable) serves reads (ACTIVE, UPDATING), 0 if reads fail "
               "(CREATING, DELETING, ...).",
               "probe", "per_result"),
    FamilySpec("ld_store_dynamodb_table_items", "gauge",
               "DescribeTable's approximate item count (~6 h old).",
               "probe", "per_result"),
    FamilySpec("ld_store_membership_data_present", "gauge",
               f"1 if include/exclude data exists (capped sample). {_HEALTH}",
               "probe", "per_result"),
    FamilySpec("ld_store_canary_ok", "gauge",
               f"1 if the canary context evaluates as expected. {_PROBE}",
               "probe", "per_result"),
    FamilySpec("ld_store_target_info", "gauge",
               "One series per target; sdk: the SDK whose rules ld_store_available "
               "and ld_store_stale follow; host: the server it lives on (join key "
               "of ld_store_redis_* and ld_store_probe_host_up).",
               "probe", "per_scrape"),
    FamilySpec("ld_store_credential_withheld", "gauge",
               "1 if the matching credential was withheld (the API names a host "
               "outside its hosts patterns) and the store is not probed.",
               "probe", "per_scrape"),
    FamilySpec("ld_store_sync_disagreement", "gauge",
               "1 if LaunchDarkly's status and the store's synchronizedOn contradict.",
               "probe", "per_scrape"),
    FamilySpec("ld_store_stale_after_seconds", "gauge",
               "The stale threshold in use (probe.stale_after).",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_probe_interval_seconds", "gauge",
               "The probe interval in use (probe.interval): a round should end "
               "well within it.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_build_info", "gauge",
               "Build information: version, git revision, Python version.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_shard_ordinal", "gauge",
               "This replica's shard ordinal (--shard I/N: I; 0 unsharded), "
               "also as the shard_ordinal label.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_shards", "gauge",
               "The number of shards this replica was started with (--shard "
               "I/N: N; 1 unsharded).",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_api_up", "gauge",
               "1 if the last integration list call succeeded.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_discovery_last_success_timestamp_seconds", "gauge",
               "When discovery last listed the integrations.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_discovery_duration_seconds", "gauge",
               "How long the last discovery round took.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_api_parse_errors", "counter",
               "Fields or items of API replies that could not be used.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_api_requests", "counter",
               "LaunchDarkly REST calls by endpoint and HTTP code.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_api_rate_limit_remaining", "gauge",
               "Calls left in LaunchDarkly's rate-limit window, from the last reply.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_config_last_reload_successful", "gauge",
               "1 if the last configuration (re)load succeeded.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_config_last_reload_success_timestamp_seconds", "gauge",
               "When the configuration was last loaded.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_probe_round_duration_seconds", "gauge",
               "How long the last completed probe round took.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_probe_round_budget_seconds", "gauge",
               "The worst case the last round was sized for: every probe to its "
               "timeout, in waves behind probe.concurrency and "
               "probe.per_host_concurrency.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_probe_rounds", "counter",
               "Probe rounds completed.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_probe_rounds_overrun", "counter",
               "Probe rounds that took longer than the probe interval.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_probes_fd_exhausted", "counter",
               "Probes not run because the monitor itself was out of file "
               "descriptors (EMFILE/ENFILE); the store kept its previous verdict.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_probes_in_flight", "gauge",
               "Probes running now (each holding a probe.concurrency slot).",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_probes_queued", "gauge",
               "Probes of the current round waiting for a slot.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_probe_host_up", "gauge",
               "0 while the host failed at the connection level (its stores "
               "then share that result), 1 once it answers; one series per "
               "probed host with targets.",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_event_loop_lag_seconds", "gauge",
               "The longest the event loop was late in the last minute (how "
               "late it woke from a 0.1s sleep).",
               "monitor", "per_scrape"),
    FamilySpec("ld_store_event_loop_lag_p99_seconds", "gauge",
               "The 99th percentile of the event loop's lag over the last minute.",
               "monitor", "per_scrape"),
    # The standard process families, as prometheus_client's ProcessCollector
    # names them (monitor/service/process.py).
    FamilySpec("process_cpu_seconds", "counter",
               "Total user and system CPU time spent in seconds.",
               "monitor", "per_scrape"),
    FamilySpec("process_resident_memory_bytes", "gauge",
               "Resident memory size in bytes.",
               "monitor", "per_scrape"),
    FamilySpec("process_virtual_memory_bytes", "gauge",
               "Virtual memory size in bytes.",
               "monitor", "per_scrape"),
    FamilySpec("process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.",
               "monitor", "per_scrape"),
    FamilySpec("process_open_fds", "gauge",
               "Number of open file descriptors.",
               "monitor", "per_scrape"),
    FamilySpec("process_max_fds", "gauge",
               "Maximum number of open file descriptors.",
               "monitor", "per_scrape"),
)  # fmt: skip

_SPECS: dict[str, FamilySpec] = {spec.name: spec for spec in FAMILIES}
_BY_SAMPLE: dict[str, FamilySpec] = {spec.sample_name: spec for spec in FAMILIES}


def _names(side: Side, cadence: Cadence | None = None) -> tuple[str, ...]:
    """The families of one side (of one cadence), in table order."""
    return tuple(
        spec.name
        for spec in FAMILIES
        if spec.side == side and cadence in (None, spec.cadence)
    )


_API_FAMILIES = _names("api")
_API_PER_RESULT = _names("api", "per_result")
_PROBE_FAMILIES = _names("probe")
_PROBE_PER_RESULT = _names("probe", "per_result")
# Per Redis server, in `_redis_servers`'s order.
_REDIS_SERVER = (
    "ld_store_redis_eviction_unsafe",
    "ld_store_redis_memory_used_bytes",
    "ld_store_redis_maxmemory_bytes",
    "ld_store_redis_persistence_enabled",
    "ld_store_redis_info",
)


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


class _ScrapeFamilies:
    """The families of one scrape, built from `FAMILIES` as the code asks for them."""

    def __init__(self, probe: ProbeConfig) -> None:
        self._help_values = {
            "probe_interval": probe.interval,
            "health_interval": probe.health_interval,
        }
        self._built: dict[str, Family] = {}

    def __getitem__(self, name: str) -> Family:
        family = self._built.get(name)
        if family is None:
            spec = _SPECS[name]
            family = Family(
                spec.name, spec.kind, spec.help.format_map(self._help_values)
            )
            self._built[name] = family
        return family

    def select(self, names: tuple[str, ...]) -> tuple[Family, ...]:
        """These families, in this order."""
        return tuple(self[name] for name in names)

    def in_order(self) -> list[Family]:
        """Every family asked for, in table order."""
        built = self._built
        return [built[spec.name] for spec in FAMILIES if spec.name in built]


class ScrapeCache:
    """Each target's static sample text, kept from one scrape to the next.

    Most of a target's series change only when its next probe result lands;
    their text is rendered once per result (keyed by the result object, which
    is replaced, never mutated) instead of once per scrape. Ages and the SDK
    status are computed at every scrape.
    """

    def __init__(self) -> None:
        self.probe: dict[str, KeptResult] = {}
        self.api: dict[str, tuple[DiscoveredIntegration, str, Chunks]] = {}
        # target id -> (labels, sdk, endpoint, host, the ld_store_target_info
        # sample line); host: the endpoint's host_key, "" without an endpoint
        self.info: dict[str, _TargetInfo] = {}
        self.api_lines = KeptLines()
        self.probe_lines = KeptLines()


_Endpoint = RedisEndpoint | DynamoDBEndpoint | None
_TargetInfo = tuple[str, Sdk, _Endpoint, str, str]


@dataclass(frozen=True, slots=True)
class KeptResult:
    """What a scrape keeps of one target's result: its text, and its judgement
    under the target's profile as far as it does not depend on the time."""

    result: ProbeResult
    labels: str
    sdk: Sdk
    chunks: Chunks
    parsed: Parsed  # what the SDK made of the metadata read
    python_parsed: Parsed  # ... and the python rules, which the disagreement uses
    success: bool  # ld_store_probe_success


def prerender(state: MonitorState, cache: ScrapeCache) -> None:
    """Render the kept text of everything that changed (after a probe or discovery
    round), so that the next scrape only joins text and computes ages."""
    collect(state, time.time(), cache)


def collect(
    state: MonitorState, now: float, cache: ScrapeCache | None = None
) -> list[Family]:
    """Every family, from the current state."""
    families = _ScrapeFamilies(state.config.probe)
    cache = ScrapeCache() if cache is None else cache
    _api_side(families, state, now, cache)
    servers = _probe_side(families, state, now, cache)
    _monitor_side(families, state, servers)
    return families.in_order()


def render_metrics(
    state: MonitorState,
    *,
    openmetrics: bool = False,
    clock: Callable[[], float] = time.time,
    cache: ScrapeCache | None = None,
) -> bytes:
    """The exposition of the current state, as text format or OpenMetrics."""
    return render(collect(state, clock(), cache), openmetrics=openmetrics)


class _ApiFamilies:
    """The per-integration families of LaunchDarkly's view, for one scrape."""

    def __init__(self, families: _ScrapeFamilies) -> None:
        families.select(_API_FAMILIES)  # exported even when there is no integration
        self.info = families["ld_store_integration_info"]
        self.available = families["ld_store_api_available"]
        self.stale = families["ld_store_api_potentially_stale"]
        self.last_sync = families["ld_store_api_last_sync_timestamp_seconds"]
        self.sync_age = families["ld_store_api_last_sync_age_seconds"]
        self.last_error = families["ld_store_api_last_error_timestamp_seconds"]
        self.recent = families["ld_store_api_recent_errors"]
        self.errors_total = families["ld_store_api_errors"]
        # Everything but the age: it changes only when discovery lists again.
        self.per_result = families.select(_API_PER_RESULT)

    def per_result_text(
        self, labels: str, item: DiscoveredIntegration, counts: Mapping[str, int]
    ) -> Chunks:
        """One integration's text for each per-result family."""
        return capture(
            self.per_result, lambda: self._add_per_result(labels, item, counts)
        )

    def _add_per_result(
        self, labels: str, item: DiscoveredIntegration, counts: Mapping[str, int]
    ) -> None:
        integration = item.integration
        status = integration.status
        head = head_of(labels)
        self.info.add(
            labels,
            1.0,
            f'name="{escape(integration.name)}",on="{str(integration.on).lower()}"',
        )
        if status.available is not None:
            self.available.put_flag(head, status.available)
        if status.potentially_stale is not None:
            self.stale.put_flag(head, status.potentially_stale)
        if status.last_sync_ms is not None:
            self.last_sync.put(head, status.last_sync_ms / 1000.0)
        if status.last_error_ms is not None:
            self.last_error.put(head, status.last_error_ms / 1000.0)
        self.recent.put(head, float(status.errors_total))
        for code, count in sorted(counts.items()):
            self.errors_total.add(labels, float(count), f'status_code="{escape(code)}"')


def _integration_labels(item: DiscoveredIntegration) -> str:
    integration = item.integration
    return label_string(
        LABEL_NAMES,
        (
            integration.project,
            integration.environment,
            integration.kind,
            integration.id,
        ),
    )


def _api_side(
    scrape: _ScrapeFamilies, state: MonitorState, now: float, cache: ScrapeCache
) -> None:
    families = _ApiFamilies(scrape)
    counters = state.api.errors_total if state.api is not None else {}
    kept = cache.api
    sources: list[Chunks] = []
    for item in state.view.integrations:
        labels = _integration_labels(item)
        entry = kept.get(item.integration.id)
        if entry is None or entry[0] is not item or entry[1] is not labels:
            counts: Mapping[str, int] = counters.get(item.integration.id, {})
            entry = (item, labels, families.per_result_text(labels, item, counts))
            kept[item.integration.id] = entry
        sources.append(entry[2])
        last_sync_ms = item.integration.status.last_sync_ms
        if last_sync_ms is not None:
            families.sync_age.put(
                head_of(labels), max(0.0, now - last_sync_ms / 1000.0)
            )
    cache.api_lines.extend(families.per_result, sources)
    if len(kept) > len(state.view.integrations):
        present = {item.integration.id for item in state.view.integrations}
        for integration_id in list(kept.keys() - present):
            del kept[integration_id]


def _probe_side(
    scrape: _ScrapeFamilies, state: MonitorState, now: float, cache: ScrapeCache
) -> dict[str, RedisHealth]:
    """The per-target families; returns each Redis server's health (by host),
    from the newest result among its targets that carries one."""
    families = _ProbeFamilies(scrape)
    servers: dict[str, tuple[float, RedisHealth]] = {}
    items = {item.integration.id: item for item in state.view.integrations}
    kept = cache.probe
    infos = cache.info
    sources: list[Chunks] = []
    for target in state.targets:
        labels = label_string(LABEL_NAMES, target.labels.values())
        info = infos.get(target.id)
        if (
            info is None
            or info[0] is not labels
            or info[1] is not target.sdk
            or info[2] is not target.endpoint
        ):
            info = infos[target.id] = _target_info(families, labels, target)
        families.target_info.lines.append(info[4])
        families.withheld.add(labels, _flag(target.credential_withheld))
        record = state.records.get(target.id)
        if record is None or record.result is None:
            continue
        result = record.result
        if result.redis is not None:
            newest = servers.get(info[3])
            if newest is None or result.finished_at > newest[0]:
                servers[info[3]] = (result.finished_at, result.redis)
        head = head_of(labels)
        entry = kept.get(target.id)
        if (
            entry is None
            or entry.result is not result
            or entry.labels is not labels
            or entry.sdk is not target.sdk
        ):
            entry = KeptResult(
                result,
                labels,
                target.sdk,
                families.per_result_text(labels, head, record),
                result.parsed(target.sdk),
                result.parsed(Sdk.PYTHON),
                result.success(target.sdk),
            )
            kept[target.id] = entry
        sources.append(entry.chunks)
        stale_after = state.stale_after_of(target)
        families.add_dynamic(
            head,
            result,
            now,
            stale_after,
            entry,
            last_stale=record.last_stale(stale_after, target.sdk),
        )
        item = items.get(target.id)
        disagreement = (
            None
            if item is None
            else sync_disagreement(
                item,
                result,
                now,
                stale_after,
                status_of(
                    PYTHON_PROFILE,
                    entry.python_parsed,
                    now=now,
                    stale_after=stale_after,
                ),
            )
        )
        if disagreement is not None:
            families.disagreement.put_flag(head, bool(disagreement))
    cache.probe_lines.extend(families.per_result, sources)
    if len(kept) > len(state.targets) or len(infos) > len(state.targets):
        present = {t.id for t in state.targets}
        for target_id in kept.keys() - present:
            del kept[target_id]
        for target_id in infos.keys() - present:
            del infos[target_id]
    return {host: health for host, (_, health) in servers.items()}


def _target_info(families: _ProbeFamilies, labels: str, target: Target) -> _TargetInfo:
    """A target's ld_store_target_info line, with what it was rendered from."""
    endpoint = target.endpoint
    host = "" if endpoint is None else endpoint.host_key
    extra = f'sdk="{target.sdk}"'
    if host:
        extra += f',host="{escape(host)}"'
    line = families.target_info.line(labels, 1.0, extra)
    return (labels, target.sdk, endpoint, host, line)


PYTHON_PROFILE = profile_of(Sdk.PYTHON)


def _monitor_side(
    scrape: _ScrapeFamilies,
    state: MonitorState,
    servers: Mapping[str, RedisHealth] | None = None,
) -> None:
    """The monitor's own families; those whose source is absent are not exported.

    `servers`: each Redis server's health by host (`_probe_side`).
    """
    scrape["ld_store_stale_after_seconds"].add("", state.stale_after)
    scrape["ld_store_probe_interval_seconds"].add("", state.config.probe.interval)
    scrape["ld_store_build_info"].add(build_labels(), 1.0)
    shard = state.shard
    ordinal, count = (0, 1) if shard is None else (shard.index, shard.count)
    scrape["ld_store_shard_ordinal"].add(f'shard_ordinal="{ordinal}"', float(ordinal))
    scrape["ld_store_shards"].add("", float(count))
    api = state.api
    if api is not None:  # the API is enabled
        view = state.view
        scrape["ld_store_api_up"].add("", _flag(view.api_up))
        last = scrape["ld_store_discovery_last_success_timestamp_seconds"]
        if view.last_success is not None:
            last.add("", view.last_success)
        if state.discovery_duration is not None:
            scrape["ld_store_discovery_duration_seconds"].add(
                "", state.discovery_duration
            )
        scrape["ld_store_api_parse_errors"].add("", float(api.parse_errors_total))
        requests = scrape["ld_store_api_requests"]
        for (endpoint, code), count in sorted(api.requests.items()):
            requests.add(
                f'endpoint="{escape(endpoint)}",code="{escape(code)}"', float(count)
            )
        remaining = scrape["ld_store_api_rate_limit_remaining"]
        for scope, value in sorted(api.rate_limit_remaining.items()):
            remaining.add(f'scope="{escape(scope)}"', float(value))
    scrape["ld_store_config_last_reload_successful"].add(
        "", _flag(state.config_reload_ok)
    )
    if state.config_reload_time is not None:
        scrape["ld_store_config_last_reload_success_timestamp_seconds"].add(
            "", state.config_reload_time
        )
    _redis_servers(scrape, {} if servers is None else servers)
    _saturation(scrape, state)
    if state.process is not None:
        for sample, figure in state.process().items():
            spec = _BY_SAMPLE.get(sample)
            if spec is not None:
                scrape[spec.name].add("", figure)


# Baked into the image at build time (Dockerfile ARG); "unknown" elsewhere.
REVISION_ENV = "LD_STORE_MONITOR_REVISION"


def build_labels() -> str:
    """The labels of ld_store_build_info: version, revision, python_version."""
    revision = os.environ.get(REVISION_ENV, "").strip() or "unknown"
    return label_string(
        ("version", "revision", "python_version"),
        (__version__, revision, platform.python_version()),
    )


# The event loop's lag over the last minute: the longest stall, and a p99.
LAG_FAMILIES = (
    ("ld_store_event_loop_lag_seconds", 1.0),
    ("ld_store_event_loop_lag_p99_seconds", 0.99),
)


def _redis_servers(scrape: _ScrapeFamilies, servers: Mapping[str, RedisHealth]) -> None:
    """Each Redis server's health once, labelled host (as ld_store_target_info
    names it): many integrations may share one server, and one full server
    should raise one alert, not one per integration. Exported empty without one."""
    eviction, used, maxmemory, persistence, info = scrape.select(_REDIS_SERVER)
    for host, health in sorted(servers.items()):
        labels = f'host="{escape(host)}"'
        head = head_of(labels)
        eviction.put_flag(head, health.eviction_unsafe)
        # put drops a value no float holds (a hostile INFO's 400-digit count)
        used.put(head, health.used_memory)
        maxmemory.put(head, health.maxmemory)
        persistence.put_flag(head, health.persistence_enabled)
        info.add(
            labels,
            1.0,
            f'version="{escape(health.version)}",'
            f'maxmemory_policy="{escape(health.maxmemory_policy)}"',
        )


def _saturation(scrape: _ScrapeFamilies, state: MonitorState) -> None:
    """How busy the monitor is: its probe rounds, slots, hosts and event loop."""
    load = state.load
    if load.last_round_duration is not None:
        scrape["ld_store_probe_round_duration_seconds"].add(
            "", load.last_round_duration
        )
    if load.last_round_budget is not None:
        scrape["ld_store_probe_round_budget_seconds"].add("", load.last_round_budget)
    scrape["ld_store_probe_rounds"].add("", float(load.rounds))
    scrape["ld_store_probe_rounds_overrun"].add("", float(load.rounds_overrun))
    scrape["ld_store_probes_fd_exhausted"].add("", float(load.fd_exhausted))
    scrape["ld_store_probes_in_flight"].add("", float(load.in_flight))
    scrape["ld_store_probes_queued"].add("", float(max(0, load.queued)))
    # The runner drops the gates of hosts left without targets
    # (`forget_missing`), so these are the probed hosts that have targets.
    host_up = scrape["ld_store_probe_host_up"]
    for key, gate in sorted(state.hosts.items()):
        host_up.add(f'host="{escape(key)}"', _flag(not gate.is_down()))
    # Not one family with a `quantile` label: that label is a summary's.
    now = time.monotonic()
    for name, q in LAG_FAMILIES:
        lag = state.lag.quantile(q, now)
        if lag is not None:
            scrape[name].add("", lag)


class _ProbeFamilies:
    """The per-target probe families of one scrape."""

    def __init__(self, families: _ScrapeFamilies) -> None:
        families.select(_PROBE_FAMILIES)  # exported even when nothing was probed
        self.up = families["ld_store_probe_up"]
        self.success = families["ld_store_probe_success"]
        self.membership_read = families["ld_store_membership_read_ok"]
        self.duration = families["ld_store_probe_duration_seconds"]
        self.phases = families["ld_store_probe_phase_duration_seconds"]
        self.schema = families["ld_store_probe_schema_ok"]
        self.failures = families["ld_store_probe_failures"]
        self.last_success = families["ld_store_probe_last_success_timestamp_seconds"]
        self.consecutive = families["ld_store_probe_consecutive_failures"]
        self.backoff = families["ld_store_probe_backoff_seconds"]
        self.sync = families["ld_store_synchronized_on_timestamp_seconds"]
        self.sync_age = families["ld_store_sync_age_seconds"]
        self.in_future = families["ld_store_sync_in_future"]
        self.available = families["ld_store_available"]
        self.stale = families["ld_store_stale"]
        self.tls_expiry = families["ld_store_tls_cert_expiry_timestamp_seconds"]
        self.table_info = families["ld_store_dynamodb_table_info"]
        self.table_readable = families["ld_store_dynamodb_table_readable"]
        self.item_count = families["ld_store_dynamodb_table_items"]
        self.membership = families["ld_store_membership_data_present"]
        self.canary_ok = families["ld_store_canary_ok"]
        self.disagreement = families["ld_store_sync_disagreement"]
        self.target_info = families["ld_store_target_info"]
        self.withheld = families["ld_store_credential_withheld"]
        # The families whose samples change only when a new probe result lands.
        self.per_result = families.select(_PROBE_PER_RESULT)

    def per_result_text(self, labels: str, head: str, record: TargetRecord) -> Chunks:
        """One target's text for each per-result family, kept until its next result."""
        return capture(
            self.per_result, lambda: self._add_per_result(labels, head, record)
        )

    def add_dynamic(
        self,
        head: str,
        result: ProbeResult,
        now: float,
        stale_after: float,
        kept: KeptResult,
        *,
        last_stale: bool = False,
    ) -> None:
        """The series computed at scrape time: the store's age and the SDK's status."""
        synchronized_on_ms = result.synchronized_on_ms
        if synchronized_on_ms is not None:
            self.sync_age.put(head, now - synchronized_on_ms / 1000.0)
            self.in_future.put_flag(head, sync_in_future(synchronized_on_ms, now))
        available, stale = status_of(
            profile_of(kept.sdk),
            kept.parsed,
            now=now,
            stale_after=stale_after,
            last_stale=last_stale,
        )
        self.available.put_flag(head, available)
        self.stale.put_flag(head, stale)
        self.success.put_flag(head, kept.success)

    def _add_per_result(self, labels: str, head: str, record: TargetRecord) -> None:
        result = record.result
        assert result is not None  # noqa: S101 -- the caller skips unprobed targets
        self.up.put_flag(head, result.up)
        if result.membership_read_ok is not None:
            self.membership_read.put_flag(head, result.membership_read_ok)
        self.duration.put(head, result.duration)
        for phase, seconds in result.phases:
            self.phases.add(labels, seconds, f'phase="{phase}"')
        if result.schema_ok is not None:
            self.schema.put_flag(head, result.schema_ok)
        for reason, count in sorted(record.failures.items()):
            self.failures.add(labels, float(count), f'reason="{reason}"')
        if record.last_success is not None:
            self.last_success.put(head, record.last_success)
        self.consecutive.put(head, float(record.consecutive_failures))
        self.backoff.put(head, record.backoff)
        if result.synchronized_on_ms is not None:
            self.sync.put(head, result.synchronized_on_ms / 1000.0)
        if result.tls_not_after is not None:
            self.tls_expiry.put(head, result.tls_not_after)
        self._add_store_health(labels, head, result)

    def _add_store_health(self, labels: str, head: str, result: ProbeResult) -> None:
        if result.table is not None:
            table = result.table
            self.table_info.add(
                labels,
                1.0,
                f'billing_mode="{escape(table.billing_mode)}"',
            )
            self.table_readable.add(
                labels,
                _flag(table.readable),
                f'table_status="{escape(table.table_status)}"',
            )
            if table.item_count is not None:
                self.item_count.put(head, table.item_count)
        if result.membership_present is not None:
            self.membership.put_flag(head, result.membership_present)
        for canary in result.canaries:
            if canary.ok is not None:
                self.canary_ok.add(
                    labels, _flag(canary.ok), f'canary="{escape(canary.name)}"'
                )

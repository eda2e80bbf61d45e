"""Every metric the monitor exports, built at scrape time from the state.

`render_metrics` turns the latest state into the exposition: series of
deleted integrations disappear by themselves, ages are computed at scrape
time so they never freeze, and a scrape never waits for the API or a store.
`make_registry` offers the same families to prometheus_client (tests,
embedding) through a Collector on an explicit registry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.export.exposition import (
    Family,
    Kind,
    capture,
    escape,
    extend,
    head_of,
    label_string,
    render,
)
from monitor.export.verdict import sync_disagreement
from monitor.launchdarkly.discovery import DiscoveredIntegration
from monitor.probes.result import ProbeResult
from monitor.probes.runner import TargetRecord
from monitor.service.state import MonitorState
from monitor.targets import LABEL_NAMES

PREFIX = "ld_store_"


def _b(value: bool) -> float:
    return 1.0 if value else 0.0


class _Families:
    """Metric families of one scrape, declared once with their help text."""

    def __init__(self) -> None:
        self.items: list[Family] = []

    def add(self, name: str, kind: Kind, documentation: str) -> Family:
        family = Family(PREFIX + name, kind, documentation)
        self.items.append(family)
        return family

    def gauge(self, name: str, documentation: str) -> Family:
        return self.add(name, "gauge", documentation)

    def counter(self, name: str, documentation: str) -> Family:
        return self.add(name, "counter", documentation)


class ScrapeCache:
    """Each target's static sample text, kept from one scrape to the next.

    Most of a target's series change only when its next probe result lands;
    their text is rendered once per result (keyed by the result object, which
    is replaced, never mutated) instead of once per scrape. Ages and the SDK
    status are computed at every scrape.
    """

    def __init__(self) -> None:
        self.probe: dict[str, tuple[ProbeResult, str, tuple[str, ...]]] = {}
        self.api: dict[str, tuple[DiscoveredIntegration, str, tuple[str, ...]]] = {}


def prerender(state: MonitorState, cache: ScrapeCache) -> None:
    """Render the kept text of everything that changed (after a probe or discovery
    round), so that the next scrape only joins text and computes ages."""
    collect(state, time.time(), cache)


def collect(
    state: MonitorState, now: float, cache: ScrapeCache | None = None
) -> list[Family]:
    """Every family, from the current state."""
    families = _Families()
    cache = ScrapeCache() if cache is None else cache
    _api_side(families, state, now, cache)
    _probe_side(families, state, now, cache)
    _monitor_side(families, state)
    return families.items


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

    def __init__(self, f: _Families) -> None:
        refresh = "Refreshed every API interval."
        self.info = f.gauge(
            "integration_info", f"One series per discovered integration. {refresh}"
        )
        self.available = f.gauge(
            "api_available",
            f"LaunchDarkly's _status.available (absent if omitted). {refresh}",
        )
        self.stale = f.gauge(
            "api_potentially_stale",
            f"LaunchDarkly's _status.potentiallyStale. {refresh}",
        )
        self.last_sync = f.gauge(
            "api_last_sync_timestamp_seconds",
            f"LaunchDarkly's _status.lastSync. {refresh}",
        )
        self.sync_age = f.gauge(
            "api_last_sync_age_seconds",
            "Seconds since LaunchDarkly's lastSync, computed at scrape time.",
        )
        self.last_error = f.gauge(
            "api_last_error_timestamp_seconds",
            f"LaunchDarkly's _status.lastError. {refresh}",
        )
        self.recent = f.gauge(
            "api_recent_errors",
            f"Entries in LaunchDarkly's _status.errors now. {refresh}",
        )
        self.errors_total = f.counter(
            "api_errors",
            "Distinct _status.errors entries seen (deduplicated across polls).",
        )

    @property
    def static(self) -> tuple[Family, ...]:
        """Everything but the age: it changes only when discovery lists again."""
        return (
            self.info, self.available, self.stale, self.last_sync,
            self.last_error, self.recent, self.errors_total,
        )  # fmt: skip

    def static_chunks(
        self, labels: str, item: DiscoveredIntegration, counts: Mapping[str, int]
    ) -> tuple[str, ...]:
        """One integration's text for each static family."""
        return capture(self.static, lambda: self._add_static(labels, item, counts))

    def _add_static(
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
    f: _Families, state: MonitorState, now: float, cache: ScrapeCache
) -> None:
    families = _ApiFamilies(f)
    counters = state.api.errors_total if state.api is not None else {}
    kept = cache.api
    for item in state.view.integrations:
        labels = _integration_labels(item)
        entry = kept.get(item.integration.id)
        if entry is None or entry[0] is not item or entry[1] is not labels:
            counts: Mapping[str, int] = counters.get(item.integration.id, {})
            entry = (item, labels, families.static_chunks(labels, item, counts))
            kept[item.integration.id] = entry
        extend(families.static, entry[2])
        last_sync_ms = item.integration.status.last_sync_ms
        if last_sync_ms is not None:
            families.sync_age.put(
                head_of(labels), max(0.0, now - last_sync_ms / 1000.0)
            )
    if len(kept) > len(state.view.integrations):
        present = {item.integration.id for item in state.view.integrations}
        for integration_id in list(kept.keys() - present):
            del kept[integration_id]


def _probe_side(
    f: _Families, state: MonitorState, now: float, cache: ScrapeCache
) -> None:
    probe = state.config.probe
    families = _ProbeFamilies(f, probe.interval, probe.health_interval)
    items = {item.integration.id: item for item in state.view.integrations}
    kept = cache.probe
    for target in state.targets:
        record = state.records.get(target.id)
        if record is None or record.result is None:
            continue
        result = record.result
        labels = label_string(LABEL_NAMES, target.labels.values())
        head = head_of(labels)
        entry = kept.get(target.id)
        if entry is None or entry[0] is not result or entry[1] is not labels:
            entry = (result, labels, families.static_chunks(labels, head, record))
            kept[target.id] = entry
        extend(families.static, entry[2])
        families.add_dynamic(head, result, now, state.stale_after)
        disagreement = sync_disagreement(
            items.get(target.id), result, now, state.stale_after
        )
        if disagreement is not None:
            families.disagreement.put_flag(head, bool(disagreement))
    if len(kept) > len(state.targets):
        present = {t.id for t in state.targets}
        for target_id in list(kept.keys() - present):
            del kept[target_id]
    f.gauge(
        "stale_after_seconds", "The stale threshold in use (probe.stale_after)."
    ).add("", state.stale_after)


def _monitor_side(f: _Families, state: MonitorState) -> None:
    view = state.view
    f.gauge("build_info", "Build information.").add(
        f'version="{escape(__version__)}"', 1.0
    )
    api = state.api
    if api is not None:
        f.gauge("api_up", "1 if the last integration list call succeeded.").add(
            "", _b(view.api_up)
        )
        last = f.gauge(
            "discovery_last_success_timestamp_seconds",
            "When discovery last listed the integrations.",
        )
        if view.last_success is not None:
            last.add("", view.last_success)
        f.counter(
            "api_parse_errors", "Fields or items of API replies that could not be used."
        ).add("", float(api.parse_errors_total))
        requests = f.counter(
            "api_requests", "LaunchDarkly REST calls by endpoint and HTTP code."
        )
        for (endpoint, code), count in sorted(api.requests.items()):
            requests.add(
                f'endpoint="{escape(endpoint)}",code="{escape(code)}"', float(count)
            )
        remaining = f.gauge(
            "api_rate_limit_remaining",
            "Calls left in LaunchDarkly's rate-limit window, from the last reply.",
        )
        for scope, value in sorted(api.rate_limit_remaining.items()):
            remaining.add(f'scope="{escape(scope)}"', float(value))
    f.gauge(
        "config_last_reload_successful",
        "1 if the last configuration (re)load succeeded.",
    ).add("", _b(state.config_reload_ok))
    if state.config_reload_time is not None:
        f.gauge(
            "config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded.",
        ).add("", state.config_reload_time)


class _ProbeFamilies:
    """The per-target probe families of one scrape."""

    def __init__(self, f: _Families, interval: float, health_interval: float) -> None:
        every = f"Refreshed every probe interval ({interval:g}s)."
        slow = f"Refreshed every {health_interval:g}s."
        self.up = f.gauge(
            "probe_up", f"1 if the store was reachable and authenticated. {every}"
        )
        self.duration = f.gauge(
            "probe_duration_seconds", f"Duration of the last probe. {every}"
        )
        self.phases = f.gauge(
            "probe_phase_duration_seconds", f"Each phase of the last probe. {every}"
        )
        self.schema = f.gauge(
            "probe_schema_ok", f"1 if the layout is as the SDKs expect. {every}"
        )
        self.failures = f.counter("probe_failures", "Failed probes by reason.")
        self.last_success = f.gauge(
            "probe_last_success_timestamp_seconds", "When a probe last succeeded."
        )
        self.consecutive = f.gauge(
            "probe_consecutive_failures", "Probes failed in a row."
        )
        self.backoff = f.gauge(
            "probe_backoff_seconds",
            "Extra wait before the next probe of a failing target.",
        )
        self.sync = f.gauge(
            "synchronized_on_timestamp_seconds",
            f"synchronizedOn read from the store. {every}",
        )
        self.sync_age = f.gauge(
            "sync_age_seconds",
            "Seconds since the store's synchronizedOn, at scrape time.",
        )
        self.available = f.gauge(
            "available", "What an SDK's BigSegmentStoreStatus.available would be now."
        )
        self.stale = f.gauge(
            "stale", "What an SDK's BigSegmentStoreStatus.stale would be now."
        )
        self.tls_expiry = f.gauge(
            "tls_cert_expiry_timestamp_seconds",
            "Earliest notAfter in the certificate chain.",
        )
        self.eviction = f.gauge(
            "redis_eviction_unsafe",
            f"1 if an allkeys-* policy with maxmemory may evict keys. {slow}",
        )
        self.used = f.gauge("redis_memory_used_bytes", f"INFO used_memory. {slow}")
        self.maxmemory = f.gauge(
            "redis_maxmemory_bytes", f"INFO maxmemory (0: no limit). {slow}"
        )
        self.persistence = f.gauge(
            "redis_persistence_enabled",
            f"1 if AOF is on or an RDB snapshot was taken since start. {slow}",
        )
        self.redis_info = f.gauge(
            "redis_info", f"Redis version and eviction policy. {slow}"
        )
        self.table_info = f.gauge(
            "dynamodb_table_info",
            "DynamoDB table status and billing mode (DescribeTable, cached).",
        )
        self.item_count = f.gauge(
            "dynamodb_item_count", "DescribeTable's approximate item count (~6 h old)."
        )
        self.membership = f.gauge(
            "membership_data_present",
            f"1 if include/exclude data exists (capped sample). {slow}",
        )
        self.canary_ok = f.gauge(
            "canary_ok", f"1 if the canary context evaluates as expected. {every}"
        )
        self.disagreement = f.gauge(
            "sync_disagreement",
            "1 if LaunchDarkly's status and the store's synchronizedOn contradict.",
        )

    @property
    def static(self) -> tuple[Family, ...]:
        """The families whose samples change only when a new probe result lands."""
        return (
            self.up, self.duration, self.phases, self.schema, self.failures,
            self.last_success, self.consecutive, self.backoff, self.sync,
            self.tls_expiry, self.eviction, self.used, self.maxmemory,
            self.persistence, self.redis_info, self.table_info, self.item_count,
            self.membership, self.canary_ok,
        )  # fmt: skip

    def static_chunks(
        self, labels: str, head: str, record: TargetRecord
    ) -> tuple[str, ...]:
        """One target's text for each static family, to keep until its next result."""
        return capture(self.static, lambda: self._add_static(labels, head, record))

    def add_dynamic(
        self, head: str, result: ProbeResult, now: float, stale_after: float
    ) -> None:
        """The series computed at scrape time: the store's age and the SDK's status."""
        if result.synchronized_on_ms is not None:
            self.sync_age.put(head, now - result.synchronized_on_ms / 1000.0)
        available, stale = result.sdk_status(now, stale_after)
        self.available.put_flag(head, available)
        self.stale.put_flag(head, stale)

    def _add_static(self, labels: str, head: str, record: TargetRecord) -> None:
        result = record.result
        assert result is not None  # noqa: S101 -- the caller skips unprobed targets
        self.up.put_flag(head, result.up)
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
        if result.redis is not None:
            health = result.redis
            self.eviction.put_flag(head, health.eviction_unsafe)
            self.used.put(head, float(health.used_memory))
            self.maxmemory.put(head, float(health.maxmemory))
            self.persistence.put_flag(head, health.persistence_enabled)
            self.redis_info.add(
                labels,
                1.0,
                f'version="{escape(health.version)}",maxmemory_policy="{escape(health.maxmemory_policy)}"',
            )
        if result.table is not None:
            table = result.table
            self.table_info.add(
                labels,
                1.0,
                f'table_status="{escape(table.table_status)}",billing_mode="{escape(table.billing_mode)}"',
            )
            if table.item_count is not None:
                self.item_count.put(head, float(table.item_count))
        if result.membership_present is not None:
            self.membership.put_flag(head, result.membership_present)
        for canary in result.canaries:
            if canary.ok is not None:
                self.canary_ok.add(
                    labels, _b(canary.ok), f'canary="{escape(canary.name)}"'
                )


class MonitorCollector(Collector):
    """The same families for prometheus_client, parsed back from the exposition."""

    def __init__(
        self, state: MonitorState, clock: Callable[[], float] = time.time
    ) -> None:
        self._state = state
        self._clock = clock

    def describe(self) -> list[Metric]:
        """Nothing: registering must not run a collection."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every family, from the current state."""
        text = render_metrics(self._state, clock=self._clock).decode("utf-8")
        yield from text_string_to_metric_families(text)


def make_registry(
    state: MonitorState, clock: Callable[[], float] = time.time
) -> CollectorRegistry:
    """A fresh registry holding only the monitor's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(state, clock))
    return registry

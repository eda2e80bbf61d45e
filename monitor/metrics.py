"""Every metric the monitor exports, built at scrape time from the state.

A custom Collector on an explicit registry: series of deleted integrations
disappear by themselves, ages are computed at scrape time so they never
freeze, and a scrape never waits for the API or a store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.probes import ProbeResult
from monitor.probes.runner import TargetRecord
from monitor.report import sync_disagreement
from monitor.state import LABEL_NAMES, MonitorState, labels_of

PREFIX = "ld_store_"


def _b(value: bool) -> float:
    return 1.0 if value else 0.0


class _Families:
    """Metric families of one scrape, declared once with their help text."""

    def __init__(self) -> None:
        self.items: list[Metric] = []

    def gauge(
        self, name: str, documentation: str, labels: tuple[str, ...] = LABEL_NAMES
    ) -> GaugeMetricFamily:
        family = GaugeMetricFamily(PREFIX + name, documentation, labels=list(labels))
        self.items.append(family)
        return family

    def counter(
        self, name: str, documentation: str, labels: tuple[str, ...] = LABEL_NAMES
    ) -> CounterMetricFamily:
        family = CounterMetricFamily(PREFIX + name, documentation, labels=list(labels))
        self.items.append(family)
        return family


class MonitorCollector(Collector):
    """Yields the ld_store_* families from the latest state."""

    def __init__(
        self, state: MonitorState, clock: Callable[[], float] = time.time
    ) -> None:
        self._state = state
        self._clock = clock

    def describe(self) -> list[Metric]:
        """Nothing: registering must not run a collection."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Build every family from the current state."""
        families = _Families()
        self._api_side(families)
        self._probe_side(families)
        self._monitor_side(families)
        yield from families.items

    def _api_side(self, f: _Families) -> None:
        now = self._clock()
        state = self._state
        view = state.view
        refresh = "Refreshed every API interval."
        info = f.gauge(
            "integration_info",
            f"One series per discovered integration. {refresh}",
            (*LABEL_NAMES, "name", "on"),
        )
        available = f.gauge(
            "api_available",
            f"LaunchDarkly's _status.available (absent if omitted). {refresh}",
        )
        stale = f.gauge(
            "api_potentially_stale",
            f"LaunchDarkly's _status.potentiallyStale. {refresh}",
        )
        last_sync = f.gauge(
            "api_last_sync_timestamp_seconds",
            f"LaunchDarkly's _status.lastSync. {refresh}",
        )
        sync_age = f.gauge(
            "api_last_sync_age_seconds",
            "Seconds since LaunchDarkly's lastSync, computed at scrape time.",
        )
        last_error = f.gauge(
            "api_last_error_timestamp_seconds",
            f"LaunchDarkly's _status.lastError. {refresh}",
        )
        recent = f.gauge(
            "api_recent_errors",
            f"Entries in LaunchDarkly's _status.errors now. {refresh}",
        )
        errors_total = f.counter(
            "api_errors",
            "Distinct _status.errors entries seen (deduplicated across polls).",
            (*LABEL_NAMES, "status_code"),
        )
        counters = state.discovery.api_errors_total if state.discovery else {}
        for item in view.integrations:
            integration = item.integration
            labels = list(labels_of(item).values())
            status = integration.status
            info.add_metric(
                [*labels, integration.name, str(integration.on).lower()], 1.0
            )
            if status.available is not None:
                available.add_metric(labels, _b(status.available))
            if status.potentially_stale is not None:
                stale.add_metric(labels, _b(status.potentially_stale))
            if status.last_sync_ms is not None:
                last_sync.add_metric(labels, status.last_sync_ms / 1000.0)
                sync_age.add_metric(
                    labels, max(0.0, now - status.last_sync_ms / 1000.0)
                )
            if status.last_error_ms is not None:
                last_error.add_metric(labels, status.last_error_ms / 1000.0)
            recent.add_metric(labels, float(status.errors_total))
            for code, count in sorted(counters.get(integration.id, {}).items()):
                errors_total.add_metric([*labels, code], float(count))

    def _probe_side(self, f: _Families) -> None:
        state = self._state
        runner = state.runner
        if runner is None:
            return
        now = self._clock()
        families = _ProbeFamilies(
            f, runner.settings.interval, runner.settings.health_interval
        )
        items = {item.integration.id: item for item in state.view.integrations}
        for target in state.targets:
            record = runner.records.get(target.id)
            if record is None or record.result is None:
                continue
            labels = list(target.labels.values())
            families.add(labels, record, now, state.stale_after)
            disagreement = sync_disagreement(
                items.get(target.id), record.result, now, state.stale_after
            )
            if disagreement is not None:
                families.disagreement.add_metric(labels, _b(disagreement))
        f.gauge(
            "stale_after_seconds", "The stale threshold in use (probe.stale_after).", ()
        ).add_metric([], state.stale_after)

    def _monitor_side(self, f: _Families) -> None:
        state = self._state
        view = state.view
        f.gauge("build_info", "Build information.", ("version",)).add_metric(
            [__version__], 1.0
        )
        if state.discovery is not None:
            f.gauge(
                "api_up", "1 if the last integration list call succeeded.", ()
            ).add_metric([], _b(view.api_up))
            last = f.gauge(
                "discovery_last_success_timestamp_seconds",
                "When discovery last listed the integrations.",
                (),
            )
            if view.last_success is not None:
                last.add_metric([], view.last_success)
            f.counter(
                "api_parse_errors",
                "Fields or items of API replies that could not be used.",
                (),
            ).add_metric([], float(state.discovery.parse_errors_total))
        if state.client is not None:
            requests = f.counter(
                "api_requests",
                "LaunchDarkly REST calls by endpoint and HTTP code.",
                ("endpoint", "code"),
            )
            for (endpoint, code), count in sorted(state.client.requests.items()):
                requests.add_metric([endpoint, code], float(count))
            remaining = f.gauge(
                "api_rate_limit_remaining",
                "Calls left in LaunchDarkly's rate-limit window, from the last reply.",
                ("scope",),
            )
            for scope, value in sorted(state.client.rate_limit_remaining.items()):
                remaining.add_metric([scope], float(value))
        reload_ok = f.gauge(
            "config_last_reload_successful",
            "1 if the last configuration (re)load succeeded.",
            (),
        )
        reload_ok.add_metric([], _b(state.config_reload_ok))
        if state.config_reload_time is not None:
            f.gauge(
                "config_last_reload_success_timestamp_seconds",
                "When the configuration was last loaded.",
                (),
            ).add_metric([], state.config_reload_time)


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
            "probe_phase_duration_seconds",
            f"Each phase of the last probe. {every}",
            (*LABEL_NAMES, "phase"),
        )
        self.schema = f.gauge(
            "probe_schema_ok", f"1 if the layout is as the SDKs expect. {every}"
        )
        self.failures = f.counter(
            "probe_failures", "Failed probes by reason.", (*LABEL_NAMES, "reason")
        )
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
            "redis_info",
            f"Redis version and eviction policy. {slow}",
            (*LABEL_NAMES, "version", "maxmemory_policy"),
        )
        self.table_info = f.gauge(
            "dynamodb_table_info",
            "DynamoDB table status and billing mode (DescribeTable, cached).",
            (*LABEL_NAMES, "table_status", "billing_mode"),
        )
        self.item_count = f.gauge(
            "dynamodb_item_count", "DescribeTable's approximate item count (~6 h old)."
        )
        self.membership = f.gauge(
            "membership_data_present",
            f"1 if include/exclude data exists (capped sample). {slow}",
        )
        self.canary_ok = f.gauge(
            "canary_ok",
            f"1 if the canary context evaluates as expected. {every}",
            (*LABEL_NAMES, "canary"),
        )
        self.disagreement = f.gauge(
            "sync_disagreement",
            "1 if LaunchDarkly's status and the store's synchronizedOn contradict.",
        )

    def add(
        self, labels: list[str], record: TargetRecord, now: float, stale_after: float
    ) -> None:
        """Every series of one probed target."""
        result = record.result
        assert result is not None  # noqa: S101 -- the caller skips unprobed targets
        self.up.add_metric(labels, _b(result.up))
        self.duration.add_metric(labels, result.duration)
        for phase, seconds in result.phases:
            self.phases.add_metric([*labels, phase], seconds)
        if result.schema_ok is not None:
            self.schema.add_metric(labels, _b(result.schema_ok))
        for reason, count in sorted(record.failures.items()):
            self.failures.add_metric([*labels, str(reason)], float(count))
        if record.last_success is not None:
            self.last_success.add_metric(labels, record.last_success)
        self.consecutive.add_metric(labels, float(record.consecutive_failures))
        self.backoff.add_metric(labels, record.backoff)
        if result.synchronized_on_ms is not None:
            self.sync.add_metric(labels, result.synchronized_on_ms / 1000.0)
            self.sync_age.add_metric(labels, now - result.synchronized_on_ms / 1000.0)
        available, stale = result.sdk_status(now, stale_after)
        self.available.add_metric(labels, _b(available))
        self.stale.add_metric(labels, _b(stale))
        if result.tls_not_after is not None:
            self.tls_expiry.add_metric(labels, result.tls_not_after)
        self._add_store_health(labels, result)

    def _add_store_health(self, labels: list[str], result: ProbeResult) -> None:
        if result.redis is not None:
            health = result.redis
            self.eviction.add_metric(labels, _b(health.eviction_unsafe))
            self.used.add_metric(labels, float(health.used_memory))
            self.maxmemory.add_metric(labels, float(health.maxmemory))
            self.persistence.add_metric(labels, _b(health.persistence_enabled))
            self.redis_info.add_metric(
                [*labels, health.version, health.maxmemory_policy], 1.0
            )
        if result.table is not None:
            table = result.table
            self.table_info.add_metric(
                [*labels, table.table_status, table.billing_mode], 1.0
            )
            if table.item_count is not None:
                self.item_count.add_metric(labels, float(table.item_count))
        if result.membership_present is not None:
            self.membership.add_metric(labels, _b(result.membership_present))
        for canary in result.canaries:
            if canary.ok is not None:
                self.canary_ok.add_metric([*labels, canary.name], _b(canary.ok))


def make_registry(
    state: MonitorState, clock: Callable[[], float] = time.time
) -> CollectorRegistry:
    """A fresh registry holding only the monitor's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(state, clock))
    return registry

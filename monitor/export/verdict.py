"""Every verdict fact in one place: the words, their order, what they mean.

A verdict is the one word a report row carries (`/status`, the status page,
`check`). The words are public: they appear in the `/status` JSON, in the
page's classes (`assets/status.css` colours each one) and in `check`'s
table, so the values never change. Everything that depends on a verdict,
its sort order, its tooltip, whether it is a problem, urgent or healthy
enough for `check` to exit 0, is a property here; nobody keeps a list of
verdict words of their own.

The disagreement rule lives here too: it is one of the inputs of a row's
verdict, and `ld_store_sync_disagreement` exports it as a gauge.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from monitor.launchdarkly.discovery import DiscoveredIntegration
from monitor.probes.result import ProbeResult


class Verdict(StrEnum):
    """One word for a target, an API view or a probe; declared worst first."""

    UNAVAILABLE = "unavailable"
    FAILING = "failing"
    STALE = "stale"
    DISAGREEMENT = "disagreement"
    DEGRADED = "degraded"
    PENDING = "pending"
    HEALTHY = "healthy"
    OFF = "off"

    @property
    def severity(self) -> int:
        """Sort key, worst first (0): the order the page and `check` list rows in."""
        return _SEVERITY[self]

    @property
    def meaning(self) -> str:
        """What the verdict means, for a person (the page's badge tooltip)."""
        return _MEANING[self]

    @property
    def is_problem(self) -> bool:
        """Someone should look: kept by "only problems", counted in the headline."""
        return self in _PROBLEMS

    @property
    def is_urgent(self) -> bool:
        """SDKs are (or may be) reading wrong answers now: the headline turns red."""
        return self in _URGENT

    @property
    def counts_as_healthy(self) -> bool:
        """Fine for `check`: every row healthy or off means exit 0."""
        return self in _HEALTHY


_SEVERITY = {verdict: rank for rank, verdict in enumerate(Verdict)}
_MEANING = {
    Verdict.UNAVAILABLE: (
        "SDKs cannot read this store: connection, credentials or schema"
    ),
    Verdict.FAILING: "the store answers, but the probe found a problem",
    Verdict.STALE: "the store's last sync is older than the stale threshold",
    Verdict.DISAGREEMENT: "LaunchDarkly and the store disagree",
    Verdict.DEGRADED: (
        "the store is fine, but LaunchDarkly reports trouble writing to it"
    ),
    Verdict.PENDING: "not probed yet",
    Verdict.HEALTHY: "the store is readable and fresh",
    Verdict.OFF: "the integration is turned off in LaunchDarkly",
}
_PROBLEMS = frozenset(
    {
        Verdict.UNAVAILABLE,
        Verdict.FAILING,
        Verdict.STALE,
        Verdict.DISAGREEMENT,
        Verdict.DEGRADED,
    }
)
_URGENT = frozenset({Verdict.UNAVAILABLE, Verdict.FAILING})
_HEALTHY = frozenset({Verdict.HEALTHY, Verdict.OFF})


class Disagreement(StrEnum):
    """How LaunchDarkly's view and the store's contradict each other."""

    # LaunchDarkly synced recently, but the store is stale or holds no sync time.
    STORE_STALE = "store_stale"
    # LaunchDarkly says the store is unavailable, but it is readable and fresh.
    API_UNAVAILABLE_BUT_FRESH = "api_unavailable_but_fresh"


def sync_disagreement(
    item: DiscoveredIntegration | None,
    result: ProbeResult,
    now: float,
    stale_after: float,
    store_status: tuple[bool, bool] | None = None,
) -> Disagreement | Literal[False] | None:
    """Do LaunchDarkly and the store contradict each other, and how?

    None when they cannot be compared, False when they agree. STORE_STALE
    when LaunchDarkly reports a recent sync (lastSync within half the stale
    threshold, not unavailable) but the store's synchronizedOn is stale or
    missing (wrong prefix, a different store than LaunchDarkly writes, a
    one-sided network fault); API_UNAVAILABLE_BUT_FRESH when LaunchDarkly
    reports the store unavailable while the store is fresh (only someone else
    writes it, or LaunchDarkly cannot reach what the cluster reaches). Half
    the threshold keeps the two sides' different refresh times from flapping
    the signal.
    """
    if item is None or not result.read_ok:
        return None
    status = item.integration.status
    # `store_status`: the store's (available, stale) by the python rules, when
    # the caller has it already (the scrape keeps the parsed marker per result).
    available, stale = store_status or result.sdk_status(now, stale_after)
    store_fresh = available and not stale
    if status.available is False:
        return Disagreement.API_UNAVAILABLE_BUT_FRESH if store_fresh else False
    if status.last_sync_ms is None:
        return None
    api_recent = now - status.last_sync_ms / 1000.0 <= stale_after / 2
    return Disagreement.STORE_STALE if api_recent and not store_fresh else False

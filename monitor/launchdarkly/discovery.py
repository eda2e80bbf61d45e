"""Discovery: which integrations exist, what LaunchDarkly says of them, where they live.

One round lists every integration (one request), fetches by id only those
whose `version` changed since the last fetch, and fetches the environment
(`_id` = client-side ID = store key prefix) once per project/environment.
Steady state: one request per interval.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from monitor.config import ApiConfig, Filters
from monitor.launchdarkly.client import LaunchDarklyClient
from monitor.launchdarkly.counters import ApiCounters
from monitor.launchdarkly.errors import ApiError, ApiErrorKind
from monitor.launchdarkly.models import Environment, Integration, Problems
from monitor.launchdarkly.sharding import Shard

# Detail and environment fetches run a few at a time: enough to fill a first
# discovery of a large account quickly, few enough to stay under route limits.
DETAIL_CONCURRENCY = 4
# Errors that say the API as a whole cannot be used now: the round's other
# detail and environment fetches are not tried. Any other error (a malformed
# or missing reply for one integration or environment) concerns that one only.
SYSTEMIC = frozenset(
    {
        ApiErrorKind.RATE_LIMITED,
        ApiErrorKind.AUTH,
        ApiErrorKind.FORBIDDEN,
        ApiErrorKind.TIMEOUT,
        ApiErrorKind.CONNECTION,
    }
)


@dataclass(frozen=True, slots=True)
class DiscoveredIntegration:
    """An integration as last listed, with its settings and key prefix once known."""

    integration: Integration
    client_side_id: str | None
    # Why the integration's detail could not be used (it answers 404 while
    # the list still shows it, or it disagrees with the list), if so.
    detail_problem: str | None = None


@dataclass(frozen=True, slots=True)
class DiscoveryView:
    """What the last discovery rounds established; replaced whole, never mutated."""

    integrations: tuple[DiscoveredIntegration, ...] = ()
    api_up: bool = False
    completed: bool = False  # at least one list call has succeeded
    last_success: float | None = None
    last_error: str | None = None
    pending_details: int = 0


@dataclass(frozen=True, slots=True)
class RoundOutcome:
    """How one discovery round went, for the loop's log line and scheduling."""

    ok: bool
    integrations: int = 0
    fetched: int = 0
    deleted: int = 0
    pending: int = 0
    problems: int = 0
    error: ApiError | None = None

    @property
    def auth_failed(self) -> bool:
        """The list call failed: the token was refused (401) or lacks a role (403)."""
        return (
            not self.ok
            and self.error is not None
            and self.error.kind
            in {
                ApiErrorKind.AUTH,
                ApiErrorKind.FORBIDDEN,
            }
        )

    def next_delay(self, api: ApiConfig) -> float | None:
        """When to run the next round; None for the normal `api.interval`.

        A refused token backs off to `api.auth_failure_interval` (retrying
        sooner only floods the audit log); a rate-limited reply is honoured
        (`Retry-After`, at least a second), also when a successful list left
        detail fetches pending behind a limit.
        """
        if self.auth_failed:
            return api.auth_failure_interval
        if (
            self.error is not None
            and self.error.retry_after
            and (not self.ok or self.pending)
        ):
            return max(self.error.retry_after, 1.0)
        return None


def _error_key(
    status_code: int | None, timestamp_ms: int | None, message: str
) -> tuple[int | None, int | None, str]:
    return (status_code, timestamp_ms, message)


class Discovery:
    """Keeps the discovered integrations and the counters derived from them."""

    def __init__(
        self,
        client: LaunchDarklyClient,
        filters: Filters,
        logger: structlog.stdlib.BoundLogger,
        *,
        shard: Shard | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._filters = filters
        self._shard = shard
        self._log = logger
        self._clock = clock
        self._details: dict[str, Integration] = {}
        self._environments: dict[tuple[str, str], Environment] = {}
        self._seen_errors: dict[str, set[tuple[int | None, int | None, str]]] = {}
        # integration id -> why its detail could not be used, until it can
        self._detail_problems: dict[str, str] = {}
        self.view = DiscoveryView()

    @property
    def counters(self) -> ApiCounters:
        """The counters this discovery and its client write (kept across reloads)."""
        return self._client.counters

    @property
    def api_errors_total(self) -> dict[str, Counter[str]]:
        """Distinct `_status.errors` seen, by integration id and status code."""
        return self._client.counters.errors_total

    def set_client(self, client: LaunchDarklyClient) -> None:
        """Use another client (new API settings after a reload); caches are kept."""
        self._client = client

    def set_filters(self, filters: Filters) -> None:
        """Swap the filters after a config reload; applies from the next round."""
        self._filters = filters

    async def run_once(self) -> RoundOutcome:
        """One discovery round; never raises for API trouble, returns it instead."""
        problems = Problems()
        try:
            listed = await self._client.list_integrations(problems)
        except ApiError as err:
            if err.kind == ApiErrorKind.MALFORMED and not problems.count:
                problems.add("reply", str(err))  # the whole reply was unusable
            self._count_problems(problems)
            self.view = dataclasses.replace(
                self.view, api_up=False, last_error=str(err)
            )
            return RoundOutcome(ok=False, error=err)
        kept = [i for i in listed if self._keeps(i)]
        fetched, deleted, detail_error = await self._fetch_details(kept, problems)
        env_error = await self._fetch_environments(kept, problems)
        self._count_api_errors(kept)
        self._count_problems(problems)
        integrations = tuple(self._merge(i) for i in kept)
        pending = sum(1 for i in kept if self._needs_detail(i))
        self._forget_missing(kept)
        self.view = DiscoveryView(
            integrations=integrations,
            api_up=True,
            completed=True,
            last_success=self._clock(),
            last_error=str(detail_error or env_error)
            if (detail_error or env_error)
            else None,
            pending_details=pending,
        )
        return RoundOutcome(
            ok=True,
            integrations=len(integrations),
            fetched=fetched,
            deleted=len(deleted),
            pending=pending,
            problems=problems.count,
            error=detail_error or env_error,
        )

    def _keeps(self, integration: Integration) -> bool:
        if not self._filters.keeps(integration.project, integration.environment):
            return False
        return self._shard is None or self._shard.owns(integration.id)

    def _needs_detail(self, integration: Integration) -> bool:
        known = self._details.get(integration.id)
        return known is None or known.version != integration.version

    async def _fetch_details(
        self, integrations: Iterable[Integration], problems: Problems
    ) -> tuple[int, set[str], ApiError | None]:
        """GET by id the integrations whose version changed.

        Stops on an error of the whole API (`SYSTEMIC`); an error of one
        integration leaves the others alone. A 404 for an integration the
        list still shows, or a detail of another kind or id than listed,
        keeps the integration with a `detail_problem` (retried next round).
        Returns (fetched, ids answering 404, the stopping error).
        """
        todo = [i for i in integrations if self._needs_detail(i)]
        deleted: set[str] = set()
        fetched = 0
        stop: ApiError | None = None
        semaphore = asyncio.Semaphore(DETAIL_CONCURRENCY)

        async def fetch(item: Integration) -> None:
            nonlocal fetched, stop
            async with semaphore:
                if stop is not None:
                    return
                try:
                    detail = await self._client.get_integration(
                        item.project, item.environment, item.kind, item.id, problems
                    )
                except ApiError as err:
                    if err.kind == ApiErrorKind.MALFORMED:
                        problems.add(f"integration {item.id}", str(err))
                    if err.kind == ApiErrorKind.NOT_FOUND:
                        deleted.add(item.id)
                        self._detail_problems[item.id] = (
                            "listed by the API, but its detail answers 404"
                        )
                        self._log.warning(
                            "discovery.detail_not_found", integration_id=item.id
                        )
                        return
                    if err.kind in SYSTEMIC:
                        stop = err
                    else:
                        self._detail_problems[item.id] = f"detail unusable: {err}"
                        self._log.warning(
                            "discovery.detail_failed",
                            integration_id=item.id,
                            error=str(err),
                        )
                    return
                if detail.kind != item.kind or detail.id != item.id:
                    what = (
                        f"the list says {item.kind} {item.id}, "
                        f"the detail says {detail.kind} {detail.id}"
                    )
                    problems.add(f"integration {item.id}", what)
                    self._detail_problems[item.id] = f"detail disagrees: {what}"
                    self._details.pop(item.id, None)
                    return
                self._detail_problems.pop(item.id, None)
                self._details[item.id] = detail
                fetched += 1

        await asyncio.gather(*(fetch(i) for i in todo))
        if stop is not None:
            self._log.warning(
                "discovery.details_incomplete", error=str(stop), kind=stop.kind
            )
        return fetched, deleted, stop

    async def _fetch_environments(
        self, integrations: Iterable[Integration], problems: Problems
    ) -> ApiError | None:
        """Fetch the client-side ID of each environment not yet cached."""
        wanted = {
            (i.project, i.environment) for i in integrations
        } - self._environments.keys()
        stop: ApiError | None = None
        semaphore = asyncio.Semaphore(DETAIL_CONCURRENCY)

        async def fetch(project: str, environment: str) -> None:
            nonlocal stop
            async with semaphore:
                if stop is not None:
                    return
                try:
                    env = await self._client.get_environment(
                        project, environment, problems
                    )
                except ApiError as err:
                    if err.kind in SYSTEMIC:
                        stop = err
                    elif err.kind == ApiErrorKind.MALFORMED:
                        problems.add(f"environment {project}/{environment}", str(err))
                    self._log.warning(
                        "discovery.environment_failed",
                        project=project,
                        environment=environment,
                        error=str(err),
                    )
                    return
                self._environments[(project, environment)] = env

        await asyncio.gather(*(fetch(p, e) for p, e in sorted(wanted)))
        return stop

    def _merge(self, listed: Integration) -> DiscoveredIntegration:
        """The listed status with the fetched settings (the list's own until then)."""
        detail = self._details.get(listed.id)
        settings = (
            detail.settings
            if detail is not None
            and detail.kind == listed.kind
            and detail.settings is not None
            else listed.settings
        )
        environment = self._environments.get((listed.project, listed.environment))
        return DiscoveredIntegration(
            integration=dataclasses.replace(listed, settings=settings),
            client_side_id=environment.client_side_id if environment else None,
            detail_problem=self._detail_problems.get(listed.id),
        )

    def _count_api_errors(self, integrations: Iterable[Integration]) -> None:
        """Count each distinct `_status.errors` entry once, across polls."""
        for integration in integrations:
            current = {
                _error_key(e.status_code, e.timestamp_ms, e.message)
                for e in integration.status.errors
            }
            previous = self._seen_errors.get(integration.id, set())
            counter = self.api_errors_total.setdefault(integration.id, Counter())
            for status_code, _, _ in current - previous:
                counter[str(status_code) if status_code is not None else "unknown"] += 1
            self._seen_errors[integration.id] = current

    def _count_problems(self, problems: Problems) -> None:
        if not problems.count:
            return
        self.counters.parse_errors_total += problems.count
        # One line per round, with a bounded sample: a reply with thousands of
        # bad items must not flood the log.
        self._log.warning(
            "api.parse_problems", count=problems.count, sample=problems.items
        )

    def _forget_missing(self, kept: Iterable[Integration]) -> None:
        """Drop state of integrations that are gone, so their series disappear."""
        kept = list(kept)
        present = {i.id for i in kept}
        for store in (
            self._details,
            self._seen_errors,
            self.api_errors_total,
            self._detail_problems,
        ):
            for integration_id in list(store.keys() - present):
                del store[integration_id]
        in_use = {(i.project, i.environment) for i in kept}
        for key in list(self._environments.keys() - in_use):
            del self._environments[key]

"""What each of the demo's local stores holds, read from the bundled scenario.

The scenario (`devtools/ldsim/scenarios/demo.yaml`) owns the integrations,
the client-side IDs that prefix their keys, the segments and their
generations, and what LaunchDarkly says about every store. The demo plays
LaunchDarkly's writing side to match it (the rules are in the scenario's
header): fresh, stale or never synced as the status says, one member
context in the environment's segments, and the `demo:` tags for the faults a
status cannot express.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from devtools.ldsim.scenario import IntegrationSpec, Scenario
from monitor.store_keys import DEFAULT_REDIS_PREFIX, context_hash, segment_ref

# Seconds between the demo's own "LaunchDarkly" writes to the fresh stores.
SYNC_EVERY: Final = 5.0
# The context the demo makes a member of every segment, in every synced store.
DEMO_CONTEXT: Final = "demo-user-1"
DEMO_CONTEXT_HASH: Final = context_hash(DEMO_CONTEXT)
# What a Relay Proxy writes under when no prefix is configured.
RELAY_PREFIX: Final = DEFAULT_REDIS_PREFIX

WRONG_PASSWORD: Final = "wrong-password"
WRONG_KEY_SCHEMA: Final = "wrong-key-schema"
NO_TABLE: Final = "no-table"
_FAULTS: Final = frozenset({WRONG_PASSWORD, WRONG_KEY_SCHEMA, NO_TABLE})
_TAG: Final = "demo:"


@dataclass(frozen=True)
class Store:
    """One integration's local store: where its keys live and what is in them."""

    integration: IntegrationSpec
    prefix: str  # the environment's client-side ID
    fault: str | None  # a `demo:` tag's fault, if any
    members_of: tuple[str, ...]  # segment refs DEMO_CONTEXT is included in

    @property
    def id(self) -> str:
        """The integration's id."""
        return self.integration.id

    @property
    def kept_fresh(self) -> bool:
        """Whether the demo rewrites synchronizedOn every SYNC_EVERY seconds."""
        status = self.integration.status
        return self.synced and not status.potentially_stale

    @property
    def synced(self) -> bool:
        """Whether LaunchDarkly ever wrote this store (there is a lastSync)."""
        return self.fault is None and self.integration.status.last_sync is not None

    def synchronized_on(self) -> int | None:
        """synchronizedOn in epoch ms as of now, None if never written."""
        last_sync = self.integration.status.last_sync
        if not self.synced or last_sync is None:
            return None
        return last_sync.resolve(time.time())


def stores(scenario: Scenario, kind: str) -> list[Store]:
    """The stores of the scenario's `kind` ("redis" or "dynamodb") integrations."""
    found: list[Store] = []
    for integration in scenario.integrations:
        if integration.kind != kind:
            continue
        project = next(p for p in scenario.projects if p.key == integration.project)
        environment = project.environment(integration.environment)
        assert environment is not None  # the scenario checks its references
        refs = tuple(
            segment_ref(s.key, s.generation)
            for s in scenario.segments
            if (s.project, s.environment) == (project.key, environment.key)
        )
        found.append(
            Store(integration, environment.client_side_id, _fault(integration), refs)
        )
    return found


def relay(redis_stores: list[Store]) -> Store | None:
    """A Relay Proxy's store (default prefix) for the first fresh Redis store's
    environment: watched as a static target, kept fresh, with its members."""
    fresh = next((s for s in redis_stores if s.kept_fresh), None)
    if fresh is None:
        return None
    return Store(fresh.integration, RELAY_PREFIX, None, fresh.members_of)


def _fault(integration: IntegrationSpec) -> str | None:
    """The fault a `demo:` tag names; ValueError for a tag the demo does not know."""
    faults = [t.removeprefix(_TAG) for t in integration.tags if t.startswith(_TAG)]
    for fault in faults:
        if fault not in _FAULTS:
            raise ValueError(f"integration {integration.id}: unknown tag demo:{fault}")
    return faults[0] if faults else None

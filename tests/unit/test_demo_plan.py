"""The demo's stores follow the bundled scenario: prefixes, generations, states."""

from __future__ import annotations

import pytest

from devtools.demo import plan
from devtools.ldsim import Scenario, load_demo_scenario
from monitor.store_keys import segment_ref


def by_name(stores: list[plan.Store]) -> dict[str, plan.Store]:
    """The stores keyed by their integration's name."""
    return {s.integration.name: s for s in stores}


def test_each_store_takes_its_prefix_and_generations_from_the_scenario() -> None:
    """Client-side ID as prefix; members of the environment's segments at their generation."""
    scenario = load_demo_scenario()
    redis = by_name(plan.stores(scenario, "redis"))
    web = next(p for p in scenario.projects if p.key == "web")
    staging = web.environment("staging")
    assert staging is not None
    stale = redis["Web staging Redis"]
    assert stale.prefix == staging.client_side_id
    generation = next(
        s.generation
        for s in scenario.segments
        if (s.project, s.environment, s.key) == ("web", "staging", "beta-users")
    )
    assert stale.members_of == (segment_ref("beta-users", generation),)


def test_status_and_tags_decide_what_each_store_holds() -> None:
    """Fresh, stale, never synced from the status; faults from `demo:` tags."""
    scenario = load_demo_scenario()
    redis = by_name(plan.stores(scenario, "redis"))
    dynamodb = by_name(plan.stores(scenario, "dynamodb"))
    assert redis["Web production Redis"].kept_fresh
    stale = redis["Web staging Redis"]
    assert (stale.synced, stale.kept_fresh) == (True, False)
    assert not redis["Mobile production Redis (new, never synced)"].synced
    assert redis["Mobile production Redis (cache tier)"].fault == plan.WRONG_PASSWORD
    assert dynamodb["Web production DynamoDB"].kept_fresh
    assert dynamodb["Mobile production DynamoDB"].fault == plan.WRONG_KEY_SCHEMA
    missing = dynamodb["Mobile production DynamoDB (table missing)"]
    assert missing.fault == plan.NO_TABLE
    relay = plan.relay(list(redis.values()))
    assert relay is not None
    assert relay.prefix == plan.RELAY_PREFIX
    assert relay.integration.name == "Web production Redis"


def test_an_unknown_demo_tag_is_an_error() -> None:
    """A misspelt `demo:` tag fails loudly instead of giving a healthy store."""
    scenario = Scenario.from_dict(
        {
            "projects": [{"key": "p", "environments": [{"key": "e"}]}],
            "integrations": [
                {
                    "project": "p",
                    "environment": "e",
                    "kind": "redis",
                    "tags": ["demo:wrong-pasword"],
                }
            ],
        }
    )
    with pytest.raises(ValueError, match="unknown tag demo:wrong-pasword"):
        plan.stores(scenario, "redis")

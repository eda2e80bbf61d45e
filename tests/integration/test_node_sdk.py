"""The node profile against the Node server SDK itself, for every Redis store state.

The SDK is `@launchdarkly/node-server-sdk` with `@launchdarkly/node-server-sdk-redis`,
pinned in `tests/support/node_sdk/` and installed by `make test`. For each
state the monitor probes the store once and judges it with profile `node`;
the SDK's `bigSegmentStoreStatusProvider` polls the same store; both must
say the same, and what they said is pinned so that agreement can never be
two sides equally lost.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import structlog

from devtools.servers.redis_server import RedisServer
from monitor.config import ProbeConfig, Sdk
from monitor.probes.redis.probe import RedisProbe
from monitor.probes.runner import ProbeRunner
from monitor.targets import RedisEndpoint
from tests.support.node import node_store_status
from tests.support.store_states import REDIS_STATES
from tests.support.targets import static_target

PREFIX = "6543210fedcba98765432100"
KEY = f"{PREFIX}:big_segments_synchronized_on"
STALE_AFTER = 120.0

# (available, stale) both sides said when measured.
AGREED: dict[str, tuple[bool, bool]] = {
    "fresh": (True, False),
    "stale": (True, True),
    "never_synced": (True, True),
    "wrong_key_type": (False, False),
    "non_numeric": (True, True),  # parseInt("12abc") = 12: ancient, so stale
    "future": (True, False),
    "unreachable": (False, False),
    "empty": (True, True),  # "" reads as no metadata
    "decimal": (True, True),
    "leading_space": (True, True),
    "negative": (True, True),
    "fresh_leading_space": (True, False),
    "fresh_underscore": (True, True),  # parseInt stops at "_": a tiny number
    "fresh_decimal": (True, False),  # parseInt ignores ".5": fresh
    "fresh_trailing_text": (True, False),
}


@pytest.mark.parametrize("state", list(REDIS_STATES))
async def test_the_node_profile_agrees_with_the_node_sdk(
    state: str, redis_plain: RedisServer, closed_port: int
) -> None:
    """For each store state, the monitor's available/stale under profile `node`
    equal the Node SDK's own status of the same store."""
    writer = REDIS_STATES[state]
    if writer is None:
        host, port = "127.0.0.1", closed_port
    else:
        with redis_plain.admin() as client:
            client.delete(KEY)
            writer(client, KEY)
        host, port = redis_plain.host, redis_plain.client_port
    log = structlog.get_logger("test")
    runner = ProbeRunner(
        {"redis": RedisProbe(log)}, ProbeConfig(interval=10, timeout=2.0), log
    )
    target = replace(
        static_target(RedisEndpoint(host=host, port=port), prefix=PREFIX),
        sdk=Sdk.NODE,
    )
    await runner.run_round([target])
    result = runner.records["t1"].result
    assert result is not None
    monitor = result.sdk_status(time.time(), STALE_AFTER, Sdk.NODE)
    reported = node_store_status(host, port, PREFIX, STALE_AFTER)
    assert monitor == reported
    assert monitor == AGREED[state]

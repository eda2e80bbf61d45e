"""Checks beyond freshness against real stores: INFO health, TLS expiry, membership, canaries."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from pydantic import SecretStr
from structlog.testing import capture_logs

from devtools.ldsim import Scenario, Simulator, SimulatorServer
from devtools.servers.redis_server import RedisServer, RedisTls
from devtools.servers.tls import TlsCertSet
from monitor.config import ProbeConfig, TlsConfig, parse_config
from monitor.daemon import Daemon
from monitor.log import Redactor
from monitor.probes.redis.probe import RedisProbe
from monitor.probes.runner import ProbeRunner
from monitor.service.monitor import Monitor
from monitor.store_keys import context_hash
from monitor.targets import RedisEndpoint
from tests.support.clock import now_ms
from tests.support.plugin import AclRedis, MakeRedis
from tests.support.scrape import Scrape
from tests.support.state import state_of
from tests.support.targets import static_target

PREFIX = "0123456789abcdef01234567"
SYNC_KEY = f"{PREFIX}:big_segments_synchronized_on"


async def probe_samples(
    endpoint: RedisEndpoint, rounds: int = 1
) -> tuple[Scrape, RedisProbe]:
    """Run `rounds` rounds on one target; return its samples and the probe."""
    log = structlog.get_logger("test")
    probe = RedisProbe(log, health_interval=0.0)  # health on every probe
    runner = ProbeRunner({"redis": probe}, ProbeConfig(interval=10, timeout=2), log)
    targets = (static_target(endpoint, prefix=PREFIX),)
    for _ in range(rounds):
        for record in runner.records.values():
            record.next_due = 0.0
        await runner.run_round(targets)
    return Scrape.of(state_of(runner, targets)), probe


def endpoint_of(server: RedisServer, **kw: Any) -> RedisEndpoint:
    """The monitor's endpoint for `server`."""
    return RedisEndpoint(host=server.host, port=server.client_port, **kw)


# -- INFO health -------------------------------------------------------------------


async def test_default_server_is_eviction_safe_and_reports_memory(
    redis_plain: RedisServer,
) -> None:
    """noeviction, no maxmemory: eviction_unsafe 0, memory and version exported."""
    endpoint = endpoint_of(redis_plain)
    host = endpoint.host_key
    values, _ = await probe_samples(endpoint)
    assert values.value("ld_store_redis_eviction_unsafe", host=host) == 0.0
    assert values.value("ld_store_redis_maxmemory_bytes", host=host) == 0.0
    used = values.value("ld_store_redis_memory_used_bytes", host=host)
    assert used is not None
    assert used > 0
    with redis_plain.admin() as client:
        version = client.info("server")["redis_version"]
    assert (
        values.value(
            "ld_store_redis_info",
            host=host,
            version=version,
            maxmemory_policy="noeviction",
        )
        == 1.0
    )
    assert (
        values.value("ld_store_redis_persistence_enabled", host=host) == 0.0
    )  # started with save "" and no AOF
    # One series per server, labelled host alone (not the target's labels).
    assert [s.labels for s in values.find("ld_store_redis_memory_used_bytes")] == [
        {"host": host}
    ]


async def test_allkeys_policy_with_maxmemory_is_eviction_unsafe(
    make_redis: MakeRedis,
) -> None:
    """allkeys-lru plus a memory limit (set with CONFIG SET by the fixture's admin): unsafe."""
    server = make_redis()
    with server.admin() as client:
        client.config_set("maxmemory", "64mb")
        client.config_set("maxmemory-policy", "allkeys-lru")
    endpoint = endpoint_of(server)
    values, _ = await probe_samples(endpoint)
    host = endpoint.host_key
    assert values.value("ld_store_redis_eviction_unsafe", host=host) == 1.0
    assert values.value("ld_store_redis_maxmemory_bytes", host=host) == 64 * 1024 * 1024


async def test_volatile_policy_is_eviction_safe(make_redis: MakeRedis) -> None:
    """volatile-lru never evicts keys without a TTL, such as big segment keys."""
    server = make_redis()
    with server.admin() as client:
        client.config_set("maxmemory", "64mb")
        client.config_set("maxmemory-policy", "volatile-lru")
    endpoint = endpoint_of(server)
    values, _ = await probe_samples(endpoint)
    assert values.value("ld_store_redis_eviction_unsafe", host=endpoint.host_key) == 0.0


async def test_append_only_counts_as_persistence(make_redis: MakeRedis) -> None:
    """appendonly yes: persistence_enabled 1."""
    server = make_redis()
    with server.admin() as client:
        client.config_set("appendonly", "yes")
    endpoint = endpoint_of(server)
    values, _ = await probe_samples(endpoint)
    assert (
        values.value("ld_store_redis_persistence_enabled", host=endpoint.host_key)
        == 1.0
    )


async def test_info_denied_leaves_the_series_absent_and_logs_once(
    redis_acl: AclRedis,
) -> None:
    """A user without INFO: no redis_* series, one log line for several probes, probe still ok."""
    reader = redis_acl.reader  # +@all -@dangerous: INFO is a dangerous command
    with capture_logs() as logs:
        values, _ = await probe_samples(
            endpoint_of(
                redis_acl.server,
                username=reader.name,
                password=SecretStr(reader.password),
            ),
            rounds=3,
        )
    assert values.find("ld_store_redis_eviction_unsafe") == []
    assert values.value("ld_store_probe_up") == 1.0
    assert len([e for e in logs if e["event"] == "redis.info_denied"]) == 1


# -- TLS expiry ----------------------------------------------------------------------


async def test_certificate_expiring_soon_is_visible(
    make_redis: MakeRedis, tls_certs: TlsCertSet
) -> None:
    """A server certificate valid for 3 more days: the expiry gauge says so."""
    server = make_redis(tls=RedisTls(server=tls_certs.expiring_soon))
    endpoint = endpoint_of(
        server,
        tls=TlsConfig(ca_file=Path(tls_certs.ca.cert_file), server_name="localhost"),
    )
    values, _ = await probe_samples(endpoint)
    expiry = values.value("ld_store_tls_cert_expiry_timestamp_seconds")
    assert expiry is not None
    days_left = (expiry - time.time()) / 86400
    assert 2 < days_left <= 3


# -- membership data -------------------------------------------------------------------


async def test_fresh_metadata_without_membership_is_flagged(
    redis_plain: RedisServer,
) -> None:
    """Metadata present but no include/exclude sets: membership_data_present 0."""
    with redis_plain.admin() as client:
        client.set(SYNC_KEY, str(now_ms()))
        client.sadd(
            "otherprefix:big_segment_include:abc", "seg.g1"
        )  # another environment's data
    values, _ = await probe_samples(endpoint_of(redis_plain))
    assert values.value("ld_store_stale") == 0.0
    assert values.value("ld_store_membership_data_present") == 0.0


@pytest.mark.parametrize("kind", ["include", "exclude"])
async def test_membership_sets_are_found(redis_plain: RedisServer, kind: str) -> None:
    """An include or an exclude set under the prefix: membership_data_present 1."""
    with redis_plain.admin() as client:
        client.set(SYNC_KEY, str(now_ms()))
        client.sadd(f"{PREFIX}:big_segment_{kind}:{context_hash('someone')}", "seg.g1")
    values, _ = await probe_samples(endpoint_of(redis_plain))
    assert values.value("ld_store_membership_data_present") == 1.0


async def test_sample_is_unknown_rather_than_false_in_a_huge_keyspace(
    redis_plain: RedisServer,
) -> None:
    """Far more unrelated keys than the capped SCAN covers: unknown (absent), never a false 0."""
    with redis_plain.admin() as client:
        for batch in range(4):
            client.mset({f"unrelated:{batch}:{i}": "x" for i in range(5_000)})
    values, _ = await probe_samples(endpoint_of(redis_plain))
    assert values.value("ld_store_membership_data_present") is None


# -- canaries ------------------------------------------------------------------------------

CID = "cafe0000cafe0000cafe0000"
INTEGRATION = "0000000000000000000ca4a7"


@pytest.fixture
async def canary_api() -> AsyncIterator[str]:
    """A simulator with one Redis integration and the big segment `beta` at generation 3."""
    scenario = {
        "token": "tok",
        "projects": [
            {"key": "web", "environments": [{"key": "prod", "client_side_id": CID}]}
        ],
        "integrations": [
            {
                "id": INTEGRATION,
                "project": "web",
                "environment": "prod",
                "kind": "redis",
                "config": {"host": "redis.example", "port": "6379"},
                "status": {"available": True, "lastSync": "-5s"},
            }
        ],
        "segments": [
            {
                "project": "web",
                "environment": "prod",
                "key": "beta",
                "generation": 3,
                "unbounded": True,
            }
        ],
    }
    async with SimulatorServer(Simulator(Scenario.from_dict(scenario))) as server:
        yield server.url


async def test_canaries_included_excluded_and_missing(
    canary_api: str, redis_plain: RedisServer
) -> None:
    """Three canary contexts against real sets, generation from the API: ok, ok, failing."""
    ref = "beta.g3"
    with redis_plain.admin() as client:
        client.set(f"{CID}:big_segments_synchronized_on", str(now_ms()))
        client.sadd(
            f"{CID}:big_segment_include:{context_hash('alice')}", ref, "other.g1"
        )
        client.sadd(f"{CID}:big_segment_exclude:{context_hash('bob')}", ref)
        client.sadd(
            f"{CID}:big_segment_include:{context_hash('carol')}", "beta.g2"
        )  # an old generation
    canaries = [
        {"name": "alice-in", "context_key": "alice", "expect": "included"},
        {"name": "bob-out", "context_key": "bob", "expect": "excluded"},
        {"name": "carol-in", "context_key": "carol", "expect": "included"},
    ]
    config = parse_config(
        {
            "api": {"base_url": canary_api, "token": "${T}"},
            "credentials": [
                {
                    "match": {"integration_id": INTEGRATION},
                    "redis": {"address": redis_plain.address},
                }
            ],
            "canaries": [
                {**c, "match": {"project": "web"}, "segment_key": "beta"}
                for c in canaries
            ],
        },
        {"T": "tok"},
    )
    async with Monitor(config, structlog.get_logger("test")) as monitor:
        await monitor.discover()
        await monitor.probe_round()
    values = {
        s.labels["canary"]: s.value
        for s in Scrape.of(monitor.state).find("ld_store_canary_ok")
    }
    assert values == {"alice-in": 1.0, "bob-out": 1.0, "carol-in": 0.0}
    result = monitor.runner.records[INTEGRATION].result
    assert result is not None
    details = {c.name: c.detail for c in result.canaries}
    assert details["carol-in"] == "context is not listed for beta.g3, expected included"


async def test_static_target_canary_needs_a_generation(
    redis_plain: RedisServer,
) -> None:
    """Without the API, a canary's generation comes from config; without it the canary is unknown."""
    with redis_plain.admin() as client:
        client.sadd(
            f"launchdarkly:big_segment_include:{context_hash('dave')}", "vip.g7"
        )
    config = parse_config(
        {
            "api": {"enabled": False},
            "targets": [
                {
                    "kind": "redis",
                    "name": "relay",
                    "url": f"redis://{redis_plain.address}",
                }
            ],
            "canaries": [
                {
                    "name": "dave",
                    "match": {"integration_id": "relay"},
                    "context_key": "dave",
                    "segment_key": "vip",
                    "expect": "included",
                    "generation": 7,
                },
                {
                    "name": "no-gen",
                    "match": {"integration_id": "relay"},
                    "context_key": "dave",
                    "segment_key": "vip",
                    "expect": "included",
                },
            ],
        },
        {},
    )
    async with Monitor(config, structlog.get_logger("test")) as monitor:
        await monitor.probe_round()
    result = monitor.runner.records["relay"].result
    assert result is not None
    outcomes = {c.name: c.ok for c in result.canaries}
    assert outcomes == {"dave": True, "no-gen": None}


# -- the debug probe --------------------------------------------------------------------------


async def test_debug_probe_describes_each_step_and_is_rate_limited(
    redis_plain: RedisServer,
) -> None:
    """POST /probe runs one probe now: steps with timings; a quick repeat gets 429; unknown id 404."""
    config = parse_config(
        {
            "api": {"enabled": False},
            "targets": [
                {
                    "kind": "redis",
                    "name": "relay",
                    "url": f"redis://{redis_plain.address}",
                }
            ],
            "server": {"listen": "127.0.0.1:0"},
        },
        {},
    )
    daemon = Daemon(config, Redactor())
    await daemon.start()
    try:
        base = f"http://127.0.0.1:{daemon.port}"
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{base}/probe", params={"integration_id": "relay"}
            ) as resp:
                assert resp.status == 200
                body = await resp.json()
            async with session.post(
                f"{base}/probe", params={"integration_id": "relay"}
            ) as again:
                assert again.status == 429
                assert int(again.headers["Retry-After"]) >= 1
            async with session.post(
                f"{base}/probe", params={"integration_id": "nope"}
            ) as missing:
                assert missing.status == 404
            async with session.post(f"{base}/probe") as bare:
                assert bare.status == 400
            # A GET does no work: it is refused with a hint (cross-site safety).
            async with session.get(
                f"{base}/probe", params={"integration_id": "relay"}
            ) as got:
                assert got.status == 405
    finally:
        await daemon.stop()
    assert body["target"]["address"] == redis_plain.address
    assert [step["step"] for step in body["steps"]][:3] == ["connect", "auth", "read"]
    assert all(step["seconds"] >= 0 for step in body["steps"])
    assert body["result"]["available"] is True
    assert body["result"]["stale"] is True  # never synced

"""The Redis probe against a real Redis Cluster on loopback: MOVED and ASK per profile.

.NET (StackExchange.Redis) and Node with an ioredis Cluster client follow a
redirect; every other profile's client returns the error reply, so the SDK's
read fails. The cluster's nodes all listen on 127.0.0.1: no redirect in these
tests leaves loopback.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from devtools.servers.redis_server import (
    RedisCluster,
    RedisServer,
    RedisTls,
    start_redis_cluster,
)
from devtools.servers.tls import TlsCertSet
from monitor.config import ProbeConfig, Sdk, TlsConfig
from monitor.probes.profiles import profile_of
from monitor.probes.redis.probe import RedisProbe
from monitor.probes.result import ProbeResult
from monitor.probes.runner import ProbeRunner
from monitor.targets import RedisEndpoint
from tests.support.clock import now_ms
from tests.support.scrape import Scrape
from tests.support.state import state_of
from tests.support.targets import static_target

PREFIX = "6543210fedcba98765432100"
KEY = f"{PREFIX}:big_segments_synchronized_on"
STALE_AFTER = 120.0
FOLLOWING = tuple(sdk for sdk in Sdk if profile_of(sdk).follows_cluster_redirects)
NOT_FOLLOWING = tuple(sdk for sdk in Sdk if sdk not in FOLLOWING)


async def probe(
    node: RedisServer, sdk: Sdk, **endpoint: Any
) -> tuple[ProbeResult, Scrape]:
    """One round on a target at `node` judged by profile `sdk`."""
    assert node.host == "127.0.0.1"
    log = structlog.get_logger("test")
    runner = ProbeRunner(
        {"redis": RedisProbe(log)}, ProbeConfig(interval=10, timeout=5.0), log
    )
    target = replace(
        static_target(
            RedisEndpoint(host=node.host, port=node.client_port, **endpoint),
            prefix=PREFIX,
        ),
        sdk=sdk,
    )
    await runner.run_round([target])
    state = state_of(runner, (target,), stale_after=STALE_AFTER)
    result = runner.records["t1"].result
    assert result is not None
    return result, Scrape.of(state)


def test_the_profiles_that_follow_redirects_are_dotnet_and_node() -> None:
    """StackExchange.Redis and an ioredis Cluster follow MOVED/ASK; no other client."""
    assert set(FOLLOWING) == {Sdk.DOTNET, Sdk.NODE}


@pytest.mark.parametrize("sdk", FOLLOWING)
async def test_a_moved_key_is_read_from_the_node_named(
    sdk: Sdk, redis_cluster: RedisCluster
) -> None:
    """Probing a node that does not own the key: MOVED, followed once, real value."""
    synced = now_ms() - 5_000
    owner = redis_cluster.set(KEY, str(synced))
    elsewhere = redis_cluster.others(owner)[0]
    result, values = await probe(elsewhere, sdk)
    assert result.reason is None, result.error
    assert result.synchronized_on_ms == synced
    assert result.sdk_status(time.time(), STALE_AFTER, sdk) == (True, False)
    assert values.value("ld_store_probe_up") == 1
    redirect = next(step for step in result.steps if step.name == "redirect")
    assert redirect.detail == f"MOVED to {owner.address}"


@pytest.mark.parametrize("sdk", FOLLOWING)
async def test_an_asked_key_is_read_after_asking(
    sdk: Sdk, redis_cluster: RedisCluster
) -> None:
    """A slot in migration: the owner answers ASK, the probe sends ASKING + the read."""
    synced = now_ms() - 5_000
    owner, importing = redis_cluster.migrating(KEY, str(synced))
    result, _ = await probe(owner, sdk)
    assert result.reason is None, result.error
    assert result.synchronized_on_ms == synced
    assert result.sdk_status(time.time(), STALE_AFTER, sdk) == (True, False)
    redirect = next(step for step in result.steps if step.name == "redirect")
    assert redirect.detail == f"ASK to {importing.address}"


async def test_a_second_redirect_is_a_failure(redis_cluster: RedisCluster) -> None:
    """MOVED to the owner, which answers ASK (slot in migration): not followed again."""
    owner, importing = redis_cluster.migrating(KEY, str(now_ms()))
    third = next(n for n in redis_cluster.nodes if n not in (owner, importing))
    result, values = await probe(third, Sdk.DOTNET)
    assert result.reason == "cluster_redirect"
    assert result.error == (
        f"the Redis Cluster node {owner.address} redirected {KEY} again, to "
        f"{importing.address} (ASK); the monitor follows one redirect, so the "
        "cluster's slots are moving or its nodes disagree"
    )
    assert result.sdk_status(time.time(), STALE_AFTER, Sdk.DOTNET) == (False, False)
    assert values.value("ld_store_probe_failures_total", reason="cluster_redirect") == 1


async def test_profiles_without_cluster_support_fail_with_cluster_redirect(
    redis_cluster: RedisCluster,
) -> None:
    """Python, Go, Java, Ruby, PHP, C++, Relay: the MOVED reply is the SDK's error."""
    owner = redis_cluster.set(KEY, str(now_ms()))
    elsewhere = redis_cluster.others(owner)[0]
    result, values = await probe(elsewhere, Sdk.PYTHON)
    assert result.reason == "cluster_redirect"
    assert result.error == (
        f"the store is a Redis Cluster node that redirected {KEY} to "
        f"{owner.address} (MOVED); the python SDK does not follow cluster "
        "redirects, so its reads fail"
    )
    assert values.value("ld_store_probe_up") == 1
    assert values.value("ld_store_probe_failures_total", reason="cluster_redirect") == 1
    assert not any(step.name == "redirect" for step in result.steps)
    for sdk in NOT_FOLLOWING:
        result, _ = await probe(elsewhere, sdk)
        assert result.reason == "cluster_redirect", sdk
        assert f"the {sdk} SDK does not follow" in (result.error or "")
        # PHP swallows the error (available, stale); the others report (0, 0).
        expected = (True, True) if sdk is Sdk.PHP else (False, False)
        assert result.sdk_status(time.time(), STALE_AFTER, sdk) == expected, sdk


async def test_a_redirect_is_followed_with_the_same_credentials(
    tmp_path: Path,
) -> None:
    """Every node needs the password: the followed connection sends AUTH too."""
    cluster = start_redis_cluster(tmp_path, password="cluster-secret")
    try:
        synced = now_ms() - 5_000
        owner = cluster.set(KEY, str(synced))
        elsewhere = cluster.others(owner)[0]
        result, _ = await probe(
            elsewhere, Sdk.DOTNET, password=SecretStr("cluster-secret")
        )
        assert result.reason is None, result.error
        assert result.synchronized_on_ms == synced
    finally:
        cluster.stop()


async def test_a_redirect_is_followed_with_the_same_tls_settings(
    tmp_path: Path, tls_certs: TlsCertSet
) -> None:
    """A TLS-only cluster: the followed connection speaks TLS and verifies the
    node against the same CA and server name."""
    cluster = start_redis_cluster(
        tmp_path, tls=RedisTls(server=tls_certs.server, client=tls_certs.client)
    )
    try:
        synced = now_ms() - 5_000
        owner = cluster.set(KEY, str(synced))
        elsewhere = cluster.others(owner)[0]
        tls = TlsConfig(ca_file=Path(tls_certs.ca.cert_file), server_name="localhost")
        result, _ = await probe(elsewhere, Sdk.DOTNET, tls=tls)
        assert result.reason is None, result.error
        assert result.synchronized_on_ms == synced
        assert "tls" in dict(result.phases)
        redirect = next(step for step in result.steps if step.name == "redirect")
        assert redirect.detail == f"MOVED to {owner.address}"
    finally:
        cluster.stop()

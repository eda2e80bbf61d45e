"""Target resolution: integrations + credentials + static targets -> what to probe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.config import ConfigError, Sdk, TlsConfig, parse_config
from monitor.launchdarkly.discovery import DiscoveredIntegration
from monitor.launchdarkly.models import (
    ApiStatus,
    DynamoDBSettings,
    Integration,
)
from monitor.targets import DynamoDBEndpoint, RedisEndpoint, resolve_targets
from tests.support.targets import discovered_redis

ENV = {"LD_API_TOKEN": "t", "PW": "s3cret", "RELAY_PW": "relay-pw"}


def redis_item(
    integration_id: str = "id1",
    *,
    tls: bool = False,
    username: str | None = "ldwriter",
    cid: str | None = "cid1",
) -> DiscoveredIntegration:
    """A discovered Redis integration."""
    return discovered_redis(integration_id, tls=tls, username=username, cid=cid)


def resolve(raw: dict[str, Any], *items: DiscoveredIntegration) -> list[Any]:
    """resolve_targets over a config built from `raw`."""
    return list(resolve_targets(items, parse_config(raw, ENV)))


def test_integration_without_credentials_uses_the_api_host_and_no_auth() -> None:
    """No credential entry: LaunchDarkly's host and port, no user, no password, prefix = client-side ID."""
    [target] = resolve({}, redis_item())
    assert target.endpoint == RedisEndpoint(host="redis.public.example", port=6380)
    assert target.prefix == "cid1"
    assert target.probeable


def test_credential_supplies_password_address_and_prefix() -> None:
    """A matching credential: its password, its address override, its prefix override."""
    raw = {
        "credentials": [
            {
                "match": {"integration_id": "id1"},
                "redis": {
                    "username": "ldmon",
                    "password": "${PW}",
                    "address": "redis.internal:7000",
                    "prefix": "custom",
                },
            }
        ]
    }
    [target] = resolve(raw, redis_item())
    endpoint = target.endpoint
    assert isinstance(endpoint, RedisEndpoint)
    assert (endpoint.host, endpoint.port, endpoint.username) == (
        "redis.internal",
        7000,
        "ldmon",
    )
    assert endpoint.password is not None
    assert endpoint.password.get_secret_value() == "s3cret"
    assert target.prefix == "custom"


def test_password_without_username_reuses_launchdarklys_user() -> None:
    """A password alone authenticates as the integration's user."""
    raw = {
        "credentials": [{"match": {"project": "web"}, "redis": {"password": "${PW}"}}]
    }
    [target] = resolve(raw, redis_item())
    assert isinstance(target.endpoint, RedisEndpoint)
    assert target.endpoint.username == "ldwriter"


def test_address_without_port_keeps_the_integrations_port() -> None:
    """An address override with a host only keeps LaunchDarkly's port."""
    raw = {
        "credentials": [{"match": {"project": "web"}, "redis": {"address": "10.0.0.5"}}]
    }
    [target] = resolve(raw, redis_item())
    assert isinstance(target.endpoint, RedisEndpoint)
    assert (target.endpoint.host, target.endpoint.port) == ("10.0.0.5", 6380)


def test_tls_follows_the_integration_or_the_credential(tmp_path: Path) -> None:
    """tlsEnabled turns TLS on; a credential's tls section does too and sets CA and name."""
    (tmp_path / "ca.pem").write_text("x")
    [plain] = resolve({}, redis_item())
    [tls] = resolve({}, redis_item(tls=True))
    raw = {
        "credentials": [
            {
                "match": {"project": "web"},
                "redis": {
                    "tls": {
                        "ca_file": str(tmp_path / "ca.pem"),
                        "server_name": "redis.example",
                    }
                },
            }
        ]
    }
    [custom] = resolve(raw, redis_item())
    assert isinstance(plain.endpoint, RedisEndpoint)
    assert plain.endpoint.tls is None
    assert isinstance(tls.endpoint, RedisEndpoint)
    assert tls.endpoint.tls == TlsConfig()
    assert isinstance(custom.endpoint, RedisEndpoint)
    assert custom.endpoint.tls == TlsConfig(
        ca_file=tmp_path / "ca.pem", server_name="redis.example"
    )


def test_unknown_prefix_or_settings_is_a_problem_not_a_probe() -> None:
    """Without the client-side ID or the config, the target is listed but not probed."""
    [no_prefix] = resolve({}, redis_item(cid=None))
    assert not no_prefix.probeable
    assert no_prefix.problem is not None
    assert "client-side ID" in no_prefix.problem
    item = redis_item()
    pending = DiscoveredIntegration(
        Integration(
            **{
                **{
                    f: getattr(item.integration, f)
                    for f in Integration.__dataclass_fields__
                },
                "settings": None,
            }
        ),
        "cid1",
    )
    [waiting] = resolve({}, pending)
    assert not waiting.probeable


def test_dynamodb_integration_never_uses_launchdarklys_role() -> None:
    """The integration's table and region; the monitor's own role and endpoint from credentials."""
    item = DiscoveredIntegration(
        Integration(
            id="d1",
            kind="dynamodb",
            project="web",
            environment="prod",
            name="d",
            on=True,
            version=1,
            status=ApiStatus(),
            settings=DynamoDBSettings(table_name="ld-segments", region="us-east-1"),
        ),
        "cid1",
    )
    [bare] = resolve({}, item)
    assert bare.endpoint == DynamoDBEndpoint(table="ld-segments", region="us-east-1")
    raw = {
        "credentials": [
            {
                "match": {"integration_id": "d1"},
                "dynamodb": {
                    "region": "eu-west-1",
                    "endpoint_url": "http://ddb.local:8000",
                    "role_arn": "arn:aws:iam::1:role/mon",
                },
            }
        ]
    }
    [custom] = resolve(raw, item)
    assert custom.endpoint == DynamoDBEndpoint(
        table="ld-segments",
        region="eu-west-1",
        endpoint_url="http://ddb.local:8000",
        role_arn="arn:aws:iam::1:role/mon",
    )


def test_static_targets_from_urls() -> None:
    """A rediss:// URL with a referenced password and a db number; a DynamoDB table."""
    raw = {
        "targets": [
            {
                "kind": "redis",
                "name": "relay",
                "url": "rediss://mon:${RELAY_PW}@redis.internal:6380/2",
                "project": "p",
                "environment": "e",
            },
            {
                "kind": "dynamodb",
                "name": "relay-ddb",
                "table": "tbl",
                "region": "us-west-2",
            },
        ]
    }
    redis_target, ddb_target = resolve(raw)
    assert redis_target.id == "relay"
    assert redis_target.source == "static"
    assert redis_target.prefix == "launchdarkly"
    assert redis_target.labels.values() == ("p", "e", "redis", "relay")
    endpoint = redis_target.endpoint
    assert isinstance(endpoint, RedisEndpoint)
    assert (endpoint.host, endpoint.port, endpoint.username, endpoint.db) == (
        "redis.internal",
        6380,
        "mon",
        2,
    )
    assert endpoint.tls == TlsConfig()
    assert endpoint.password is not None
    assert endpoint.password.get_secret_value() == "relay-pw"
    assert ddb_target.prefix == ""
    assert ddb_target.endpoint == DynamoDBEndpoint(table="tbl", region="us-west-2")


# -- SDK profile and stale threshold per store ---------------------------------


def test_sdk_and_stale_after_default_to_the_probe_settings() -> None:
    """Nothing set: probe.sdk (python) and probe.stale_after, on the target."""
    [target] = resolve({"probe": {"stale_after": "90s"}}, redis_item())
    assert (target.sdk, target.stale_after) == (Sdk.PYTHON, 90.0)


def test_probe_sdk_applies_to_every_store() -> None:
    """probe.sdk is the global default."""
    [target] = resolve({"probe": {"sdk": "go"}}, redis_item())
    assert (target.sdk, target.stale_after) == (Sdk.GO, 120.0)


def test_the_first_matching_credential_entry_sets_sdk_and_stale_after() -> None:
    """First match wins, as for the other credential settings."""
    raw = {
        "probe": {"sdk": "go", "stale_after": "90s"},
        "credentials": [
            {"match": {"integration_id": "id1"}, "sdk": "node", "stale_after": "1m"},
            {"match": {"project": "*"}, "sdk": "java", "stale_after": "3m"},
        ],
    }
    first, second = resolve(raw, redis_item("id1"), redis_item("id2"))
    assert (first.sdk, first.stale_after) == (Sdk.NODE, 60.0)
    assert (second.sdk, second.stale_after) == (Sdk.JAVA, 180.0)


def test_a_credential_entry_without_sdk_leaves_the_global_one() -> None:
    """An entry that sets only stale_after keeps probe.sdk; one that sets only sdk
    keeps probe.stale_after."""
    raw = {
        "probe": {"sdk": "dotnet", "stale_after": "90s"},
        "credentials": [{"match": {"integration_id": "id1"}, "stale_after": "1m"}],
    }
    [target] = resolve(raw, redis_item("id1"))
    assert (target.sdk, target.stale_after) == (Sdk.DOTNET, 60.0)


def test_relay_brings_its_own_threshold_unless_the_store_sets_one() -> None:
    """relay: 5 minutes over probe.stale_after; a store's own stale_after wins."""
    raw = {
        "probe": {"stale_after": "90s"},
        "credentials": [
            {"match": {"integration_id": "id1"}, "sdk": "relay"},
            {"match": {"integration_id": "id2"}, "sdk": "relay", "stale_after": "1m"},
        ],
    }
    first, second = resolve(raw, redis_item("id1"), redis_item("id2"))
    assert (first.sdk, first.stale_after) == (Sdk.RELAY, 300.0)
    assert (second.sdk, second.stale_after) == (Sdk.RELAY, 60.0)
    [relay] = resolve({"probe": {"sdk": "relay", "stale_after": "90s"}}, redis_item())
    assert relay.stale_after == 300.0


def test_a_static_target_sets_its_own_then_a_credential_entry_then_probe() -> None:
    """A static target's sdk/stale_after first, then a matching entry, then probe.*."""
    raw = {
        "probe": {"sdk": "go"},
        "credentials": [
            {"match": {"integration_id": "relay"}, "sdk": "node", "stale_after": "1m"}
        ],
        "targets": [
            {"kind": "redis", "name": "relay", "url": "redis://r:6379", "sdk": "relay"},
            {"kind": "redis", "name": "other", "url": "redis://r:6379"},
            {
                "kind": "dynamodb",
                "name": "ddb",
                "table": "tbl",
                "region": "us-east-1",
                "stale_after": "4m",
            },
        ],
    }
    relay, other, ddb = resolve(raw)
    assert (relay.sdk, relay.stale_after) == (Sdk.RELAY, 60.0)
    assert (other.sdk, other.stale_after) == (Sdk.GO, 120.0)
    assert (ddb.sdk, ddb.stale_after) == (Sdk.GO, 240.0)


def test_an_unknown_sdk_is_refused() -> None:
    """The closed set of profiles: a typo is a config error, not the default."""
    with pytest.raises(ConfigError, match="sdk"):
        parse_config({"probe": {"sdk": "nodejs"}}, ENV)

"""Targets as a test writes them: static-like, one store each, no API behind them."""

from __future__ import annotations

from monitor.launchdarkly.discovery import DiscoveredIntegration
from monitor.launchdarkly.models import ApiStatus, Integration, RedisSettings
from monitor.targets import CanaryCheck, DynamoDBEndpoint, Labels, RedisEndpoint, Target


def discovered_redis(
    integration_id: str = "id1",
    *,
    host: str = "redis.public.example",
    port: int = 6380,
    tls: bool = False,
    username: str | None = "ldwriter",
    cid: str | None = "cid1",
    project: str = "web",
    environment: str = "prod",
) -> DiscoveredIntegration:
    """A discovered Redis integration at host:port, as the API names it."""
    return DiscoveredIntegration(
        Integration(
            id=integration_id,
            kind="redis",
            project=project,
            environment=environment,
            name="r",
            on=True,
            version=1,
            status=ApiStatus(),
            settings=RedisSettings(
                host=host, port=port, username=username, tls_enabled=tls
            ),
        ),
        cid,
    )


def static_target(
    endpoint: RedisEndpoint | DynamoDBEndpoint,
    name: str = "t1",
    prefix: str | None = None,
    *canaries: CanaryCheck,
) -> Target:
    """A target `name` over `endpoint` under key prefix `prefix` (default: the name).

    Its labels are project `proj`, environment `env`, the endpoint's kind and
    the name as integration id.
    """
    kind = "redis" if isinstance(endpoint, RedisEndpoint) else "dynamodb"
    return Target(
        id=name,
        source="static",
        labels=Labels("proj", "env", kind, name),
        name=name,
        prefix=name if prefix is None else prefix,
        endpoint=endpoint,
        canaries=canaries,
    )

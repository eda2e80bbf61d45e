"""Targets as a test writes them: static-like, one store each, no API behind them."""

from __future__ import annotations

from monitor.targets import CanaryCheck, DynamoDBEndpoint, Labels, RedisEndpoint, Target


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

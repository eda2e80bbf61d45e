"""LaunchDarkly's first sync into a store, simulated after an integration is created.

Off by default. When on (`Simulator.first_sync.enable(...)`, or
`POST /_sim/first_sync {"enabled": true, "delay": 2}`), every integration
created through the API is, `delay` seconds later, synchronised the way
LaunchDarkly's writer marks a store: Redis `{prefix}:big_segments_synchronized_on`
(SET with the integration's host, port, username, password and TLS), or
the DynamoDB metadata item `{prefix}:big_segments_metadata` with
`synchronizedOn` (through `dynamodb_endpoint_url`, a local moto), and then
`_status.lastSync` is set. The prefix is the environment's client-side ID.
The memberships of one context (`FIRST_SYNC_CONTEXT_KEY`) in the
environment's big segments are written first, as a sync writes them before
its marker.

Only stores on loopback are ever written to: a created integration that
names another host never gets its first sync, as if a firewall were in the
way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from monitor.store_keys import (
    context_hash,
    dynamodb_membership_namespace,
    dynamodb_metadata_key,
    redis_include_key,
    redis_synchronized_on_key,
    segment_ref,
)

if TYPE_CHECKING:
    from devtools.ldsim.app import Simulator
    from devtools.ldsim.state import Integration

_log = logging.getLogger("devtools.ldsim.firstsync")
_FIELDS = frozenset({"enabled", "delay", "dynamodb_endpoint_url"})
# The context whose memberships the simulated sync writes.
FIRST_SYNC_CONTEXT_KEY = "first-sync-user"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class FirstSync:
    """Schedules and performs the simulated first sync of created integrations."""

    def __init__(self, simulator: Simulator) -> None:
        self._sim = simulator
        self.enabled = False
        self.delay = 2.0
        self.dynamodb_endpoint_url: str | None = None
        self.done: list[str] = []  # integration ids synced
        self.failed: dict[str, str] = {}  # integration id -> why not
        self._tasks: set[asyncio.Task[None]] = set()

    def enable(
        self, delay: float = 2.0, *, dynamodb_endpoint_url: str | None = None
    ) -> None:
        """Sync every integration created from now on, `delay` seconds after."""
        self.enabled = True
        self.delay = delay
        if dynamodb_endpoint_url is not None:
            self.dynamodb_endpoint_url = dynamodb_endpoint_url

    def configure(self, data: object) -> None:
        """Apply a control-route body; ValueError (nothing applied) if bad."""
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")  # noqa: TRY004 - a 400 reply
        unknown = sorted(set(data) - _FIELDS)
        if unknown:
            raise ValueError(f"unknown fields {unknown}; known: {sorted(_FIELDS)}")
        enabled = data.get("enabled", self.enabled)
        delay = data.get("delay", self.delay)
        url = data.get("dynamodb_endpoint_url", self.dynamodb_endpoint_url)
        if not isinstance(enabled, bool):
            raise ValueError("enabled must be true or false")  # noqa: TRY004 - a 400 reply
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise ValueError("delay must be a number of seconds >= 0")
        if url is not None and not isinstance(url, str):
            raise ValueError("dynamodb_endpoint_url must be a URL")
        self.enabled, self.delay, self.dynamodb_endpoint_url = enabled, delay, url

    def snapshot(self) -> dict[str, Any]:
        """The settings and what happened, as JSON-ready data."""
        return {
            "enabled": self.enabled,
            "delay": self.delay,
            "dynamodb_endpoint_url": self.dynamodb_endpoint_url,
            "done": list(self.done),
            "failed": dict(self.failed),
        }

    def schedule(self, integration: Integration) -> None:
        """Sync `integration` after the delay, when on (needs a running loop)."""
        if not self.enabled:
            return
        task = asyncio.get_running_loop().create_task(self._later(integration))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel the syncs still waiting."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with suppress(asyncio.CancelledError):
                await task

    async def _later(self, integration: Integration) -> None:
        await asyncio.sleep(self.delay)
        try:
            await self.sync(integration)
        except Exception as err:  # noqa: BLE001 -- a simulated failure, recorded
            self.failed[integration.id] = f"{type(err).__name__}: {err}"
            _log.warning("first sync of %s failed: %s", integration.id, err)

    async def sync(self, integration: Integration) -> None:
        """Write the sync marker into the integration's store, then set lastSync."""
        environment = self._sim.environment(
            integration.project, integration.environment
        )
        if environment is None:
            raise ValueError("the integration's environment is gone")
        prefix = environment.client_side_id
        now_ms = int(self._sim.clock() * 1000)
        config = integration.config
        members = sorted(
            segment_ref(spec.key, spec.generation)
            for (project, env, _), segment in self._sim.segments.items()
            if (project, env) == (integration.project, integration.environment)
            and (spec := segment.spec).unbounded
        )
        if integration.kind == "redis":
            await _write_redis(config, prefix, now_ms, members)
        else:
            await asyncio.to_thread(
                _write_dynamodb,
                config,
                prefix,
                now_ms,
                members,
                self.dynamodb_endpoint_url,
            )
        self._sim.update_status(
            integration.id, lastSync=now_ms, available=True, potentiallyStale=False
        )
        self.done.append(integration.id)


async def _write_redis(
    config: dict[str, Any], prefix: str, now_ms: int, members: list[str]
) -> None:
    import redis.asyncio as aioredis  # noqa: PLC0415 -- only when a sync runs

    host = str(config.get("host", ""))
    if not is_loopback(host):
        raise ValueError(f"not a loopback host: {host!r} (only local stores)")
    options: dict[str, Any] = {}
    if config.get("tlsEnabled"):
        options = {"ssl": True, "ssl_cert_reqs": ssl.CERT_NONE}
    client = aioredis.Redis(
        host=host,
        port=int(config.get("port", 6379)),
        username=config.get("username") or None,
        password=config.get("password") or None,
        socket_timeout=5,
        **options,
    )
    try:
        if members:
            include = redis_include_key(prefix, context_hash(FIRST_SYNC_CONTEXT_KEY))
            await client.sadd(include, *members)
        await client.set(redis_synchronized_on_key(prefix), str(now_ms))
    finally:
        await client.aclose()


def _write_dynamodb(
    config: dict[str, Any],
    prefix: str,
    now_ms: int,
    members: list[str],
    endpoint_url: str | None,
) -> None:
    import boto3  # noqa: PLC0415 -- only when a sync runs

    if endpoint_url is None:
        raise ValueError("no dynamodb_endpoint_url: a DynamoDB first sync needs one")
    host = endpoint_url.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    if not is_loopback(host):
        raise ValueError(f"not a loopback endpoint: {endpoint_url!r}")
    key = dynamodb_metadata_key(prefix)
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=str(config.get("region") or "us-east-1"),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    table = str(config.get("tableName", ""))
    try:
        if members:
            client.put_item(
                TableName=table,
                Item={
                    "namespace": {"S": dynamodb_membership_namespace(prefix)},
                    "key": {"S": context_hash(FIRST_SYNC_CONTEXT_KEY)},
                    "included": {"SS": members},
                },
            )
        client.put_item(
            TableName=table,
            Item={
                "namespace": {"S": key},
                "key": {"S": key},
                "synchronizedOn": {"N": str(now_ms)},
            },
        )
    finally:
        client.close()

"""The demo's Redis stores: local redis-servers holding what the scenario says.

One server holds every store the monitor can read (the scenario's Redis
integrations under their prefixes, and a Relay Proxy's store under the
default prefix); a second one, password-protected, backs the integrations
tagged `demo:wrong-password`, for which the monitor is given a wrong password.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import redis.asyncio as aioredis

from devtools.demo.plan import (
    DEMO_CONTEXT_HASH,
    SYNC_EVERY,
    WRONG_PASSWORD,
    Store,
    relay,
)
from devtools.servers.redis_server import REDIS_SERVER, RedisServer, start_redis
from monitor.store_keys import redis_include_key, redis_synchronized_on_key


@dataclass
class RedisStores:
    """Where each store lives, for the daemon's configuration."""

    addresses: dict[str, str] = field(default_factory=dict)  # integration id -> addr
    wrong_password: set[str] = field(default_factory=set)  # integration ids
    relay: Store | None = None
    relay_url: str | None = None
    servers: int = 0


async def start_redis_stores(
    stack: AsyncExitStack, stores: list[Store], directory: Path, out: TextIO
) -> tuple[RedisStores, list[asyncio.Task[None]]]:
    """Start and fill the servers; nothing (and a message) without redis-server."""
    if shutil.which(REDIS_SERVER) is None:
        print(
            "redis-server is not on PATH: the demo runs without local stores "
            "(install it, e.g. `apt-get install redis-server`, to see probes).",
            file=out,
        )
        return RedisStores(), []
    result = RedisStores(relay=relay(stores))
    readable = await _server(stack, directory)
    result.servers = 1
    locked: RedisServer | None = None
    for store in stores:
        if store.fault == WRONG_PASSWORD:
            if locked is None:
                locked = await _server(stack, directory, secrets.token_hex(12))
                result.servers += 1
            result.addresses[store.id] = locked.address
            result.wrong_password.add(store.id)
        else:
            result.addresses[store.id] = readable.address
    synced = [s for s in stores if s.synced]
    if result.relay is not None:
        synced.append(result.relay)
        result.relay_url = readable.url
    client = readable.admin_client()
    try:
        for store in synced:
            await _write(client, store)
    finally:
        await client.aclose()
    fresh = [s for s in synced if s.kept_fresh]
    writer = asyncio.create_task(_keep_fresh(readable, fresh), name="demo:redis")
    return result, [writer]


async def start_empty_store(
    stack: AsyncExitStack, directory: Path
) -> RedisServer | None:
    """An empty redis-server to onboard with `ld-store-monitor create`; None
    without redis-server."""
    if shutil.which(REDIS_SERVER) is None:
        return None
    return await _server(stack, directory)


async def _server(
    stack: AsyncExitStack, directory: Path, password: str | None = None
) -> RedisServer:
    """Start a redis-server that the stack stops."""
    server = await asyncio.to_thread(start_redis, directory, password=password)
    stack.callback(server.stop)
    return server


async def _write(client: aioredis.Redis, store: Store) -> None:
    """Write synchronizedOn and the member context's segments, as LaunchDarkly does."""
    synchronized_on = store.synchronized_on()
    if synchronized_on is not None:
        await client.set(redis_synchronized_on_key(store.prefix), str(synchronized_on))
    if store.members_of:
        key = redis_include_key(store.prefix, DEMO_CONTEXT_HASH)
        await client.sadd(key, *store.members_of)


async def _keep_fresh(server: RedisServer, stores: list[Store]) -> None:
    """Play LaunchDarkly's part for the fresh stores: refresh synchronizedOn."""
    client = server.admin_client()
    try:
        while True:
            now = str(int(time.time() * 1000))
            for store in stores:
                await client.set(redis_synchronized_on_key(store.prefix), now)
            await asyncio.sleep(SYNC_EVERY)
    finally:
        await client.aclose()

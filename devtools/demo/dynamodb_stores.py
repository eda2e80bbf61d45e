"""The demo's DynamoDB stores: tables on a local moto server, when moto is installed.

Each DynamoDB integration of the scenario gets its table (named by its
`tableName`) holding what the scenario says; `demo:wrong-key-schema` makes
it keyed pk/sk, `demo:no-table` leaves it out. Every request carries
explicit endpoint and credentials: nothing here reads or changes the AWS
settings of the environment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from devtools.demo.plan import (
    DEMO_CONTEXT_HASH,
    NO_TABLE,
    SYNC_EVERY,
    WRONG_KEY_SCHEMA,
    Store,
)

if TYPE_CHECKING:
    from devtools.servers.moto_server import KeySchema


@dataclass
class DynamoDBStores:
    """Where the tables are, for the daemon's configuration."""

    endpoint_url: str | None = None
    region: str = ""
    ids: list[str] = field(default_factory=list)  # integrations with an endpoint


async def start_dynamodb_stores(
    stack: AsyncExitStack, stores: list[Store], out: TextIO
) -> tuple[DynamoDBStores, list[asyncio.Task[None]]]:
    """Start moto and the tables; nothing (and a message) without moto."""
    try:
        from devtools.servers import moto_server  # noqa: PLC0415 -- moto is a test extra
    except ImportError:
        print(
            "moto is not installed: the demo runs without DynamoDB stores "
            "(pip install 'moto[server]').",
            file=out,
        )
        return DynamoDBStores(), []
    server = await asyncio.to_thread(moto_server.start_moto_server)
    stack.callback(server.stop)
    url = server.endpoint_url

    def table(store: Store) -> str:
        return str(store.integration.config["tableName"])

    def setup() -> None:
        for store in stores:
            if store.fault == NO_TABLE:
                continue
            name = table(store)
            schema: KeySchema = (
                "wrong_names" if store.fault == WRONG_KEY_SCHEMA else "correct"
            )
            moto_server.create_bigsegment_table(url, name, key_schema=schema)
            synchronized_on = store.synchronized_on()
            if synchronized_on is not None:
                moto_server.put_metadata(url, name, store.prefix, synchronized_on)
            if store.synced and store.members_of:
                members = store.members_of
                moto_server.put_membership(
                    url, name, store.prefix, DEMO_CONTEXT_HASH, included=members
                )

    await asyncio.to_thread(setup)
    fresh = [(table(s), s.prefix) for s in stores if s.kept_fresh]

    def refresh() -> None:
        now = int(time.time() * 1000)
        for name, prefix in fresh:
            moto_server.put_metadata(url, name, prefix, now)

    writer = asyncio.create_task(_every(SYNC_EVERY, refresh), name="demo:dynamodb")
    found = DynamoDBStores(url, moto_server.REGION, [s.id for s in stores])
    return found, [writer]


async def _every(seconds: float, write: Callable[[], None]) -> None:
    """Play LaunchDarkly's part for the fresh tables: refresh synchronizedOn."""
    while True:
        await asyncio.to_thread(write)
        await asyncio.sleep(seconds)

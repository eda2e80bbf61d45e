"""The demo's DynamoDB stores: tables on a local moto server, when moto is installed.

Healthy (kept fresh), stale, wrong key schema, and a table that does not
exist, wired to DynamoDB integrations of the bundled scenario.
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import AsyncExitStack
from typing import Any, TextIO

import boto3

from devtools.ldsim import Simulator
from monitor.store_keys import (
    DYNAMODB_INCLUDED_ATTRIBUTE,
    DYNAMODB_PARTITION_KEY,
    DYNAMODB_SORT_KEY,
    DYNAMODB_SYNC_ATTRIBUTE,
    context_hash,
    dynamodb_membership_namespace,
    dynamodb_metadata_key,
    segment_ref,
)

REGION = "us-east-1"
HEALTHY = "65a1c2d3e4f5061728394a05"  # web/production: kept fresh by the demo
WRONG_SCHEMA = "65a1c2d3e4f5061728394a03"  # mobile/production: keys named pk/sk
STALE = "65a1c2d3e4f5061728394a06"  # web/staging (turned off): 2 days old
MISSING_TABLE = (
    "65a1c2d3e4f5061728394a08"  # added by the demo: the table was never created
)
SYNC_EVERY = 5.0


def _create_table(client: Any, name: str, hash_key: str, range_key: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": hash_key, "AttributeType": "S"},
            {"AttributeName": range_key, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _put_sync(client: Any, table: str, prefix: str, when_ms: int) -> None:
    key = dynamodb_metadata_key(prefix)
    client.put_item(
        TableName=table,
        Item={
            DYNAMODB_PARTITION_KEY: {"S": key},
            DYNAMODB_SORT_KEY: {"S": key},
            DYNAMODB_SYNC_ATTRIBUTE: {"N": str(when_ms)},
        },
    )


def _put_membership(client: Any, table: str, prefix: str) -> None:
    """One context in beta-users, as LaunchDarkly writes membership items."""
    client.put_item(
        TableName=table,
        Item={
            DYNAMODB_PARTITION_KEY: {"S": dynamodb_membership_namespace(prefix)},
            DYNAMODB_SORT_KEY: {"S": context_hash("demo-user-1")},
            DYNAMODB_INCLUDED_ATTRIBUTE: {"SS": [segment_ref("beta-users", 2)]},
        },
    )


async def _keep_fresh(client: Any, table: str, prefix: str) -> None:
    """Play LaunchDarkly's part for the healthy table."""
    while True:
        await asyncio.to_thread(
            _put_sync, client, table, prefix, int(time.time() * 1000)
        )
        await asyncio.sleep(SYNC_EVERY)


async def start_dynamodb(
    stack: AsyncExitStack, simulator: Simulator, out: TextIO
) -> tuple[dict[str, str], list[asyncio.Task[None]]]:
    """Start moto and the tables: {integration_id: endpoint_url} and writer tasks."""
    try:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 -- optional: a test extra
    except ImportError:
        print(
            "moto is not installed: the demo runs without DynamoDB stores "
            "(pip install 'moto[server]').",
            file=out,
        )
        return {}, []
    # The demo talks to a local moto only; fake credentials keep real ones out of it.
    os.environ.pop("AWS_PROFILE", None)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        os.environ[name] = value
    server = ThreadedMotoServer(
        ip_address="127.0.0.1",
        port=0,
        verbose=False,  # the kernel picks a free port
    )
    server.start()
    stack.callback(server.stop)
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client("dynamodb", endpoint_url=url, region_name=REGION)
    stack.callback(client.close)
    prefixes = {
        p.key: {e.key: e.client_side_id for e in p.environments}
        for p in simulator.scenario.projects
    }
    tables = {
        i.id: i.config["tableName"]
        for i in simulator.scenario.integrations
        if i.kind == "dynamodb"
    }

    def setup() -> None:
        _create_table(
            client, tables[HEALTHY], DYNAMODB_PARTITION_KEY, DYNAMODB_SORT_KEY
        )
        _create_table(client, tables[STALE], DYNAMODB_PARTITION_KEY, DYNAMODB_SORT_KEY)
        _put_sync(
            client,
            tables[STALE],
            prefixes["web"]["staging"],
            int((time.time() - 2 * 86400) * 1000),
        )
        _create_table(client, tables[WRONG_SCHEMA], "pk", "sk")
        _put_membership(client, tables[HEALTHY], prefixes["web"]["production"])

    await asyncio.to_thread(setup)
    simulator.add_integration(
        "mobile",
        "production",
        "dynamodb",
        name="Mobile production DynamoDB (table missing)",
        config={"tableName": "ld-big-segments-mobile-v2", "region": REGION},
        status={"available": False, "potentiallyStale": True},
        integration_id=MISSING_TABLE,
    )
    writer = asyncio.create_task(
        _keep_fresh(client, tables[HEALTHY], prefixes["web"]["production"]),
        name="demo:ddb",
    )
    stores = {HEALTHY: url, STALE: url, WRONG_SCHEMA: url, MISSING_TABLE: url}
    return stores, [writer]

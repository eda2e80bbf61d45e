"""DynamoDB checks beyond freshness: the membership sample and canary contexts, on moto."""

from __future__ import annotations

import pytest
import structlog

from devtools.servers.moto_server import (
    MotoServer,
    create_bigsegment_table,
    put_membership,
    put_metadata,
)
from monitor.config import ProbeConfig
from monitor.probes.dynamodb.probe import DynamoDBProbe
from monitor.probes.result import Recorder
from monitor.store_keys import context_hash
from monitor.targets import CanaryCheck, DynamoDBEndpoint, Target
from tests.support.clock import now_ms
from tests.support.targets import static_target

TABLE = "ld-deeper"
PREFIX = "cid0000000000000000deep1"


def target(moto: MotoServer, *canaries: CanaryCheck) -> Target:
    """A target on the moto table under PREFIX."""
    endpoint = DynamoDBEndpoint(
        table=TABLE, region="us-east-1", endpoint_url=moto.endpoint_url
    )
    return static_target(endpoint, "d", PREFIX, *canaries)


def canary(name: str, key: str, expect: str, generation: int | None = 4) -> CanaryCheck:
    """A canary on segment `vip`."""
    return CanaryCheck(name, context_hash(key), "vip", expect, generation)


@pytest.fixture
def moto(clean_moto: MotoServer, aws_env: None) -> MotoServer:
    """moto with the big segment table and fresh metadata."""
    create_bigsegment_table(clean_moto.endpoint_url, TABLE)
    put_metadata(clean_moto.endpoint_url, TABLE, PREFIX, now_ms())
    return clean_moto


async def probe(
    moto: MotoServer, t: Target
) -> tuple[bool | None, dict[str, bool | None]]:
    """One probe: membership_present and each canary's ok."""
    instance = DynamoDBProbe(
        structlog.get_logger("test"), ProbeConfig(interval=10, timeout=3)
    )
    try:
        result = await instance.run(t, Recorder())
    finally:
        await instance.close()
    assert result.reason is None, result.error
    return result.membership_present, {c.name: c.ok for c in result.canaries}


async def test_metadata_without_membership_items_is_flagged(moto: MotoServer) -> None:
    """Fresh metadata, empty membership partition: membership_present False."""
    present, _ = await probe(moto, target(moto))
    assert present is False


async def test_membership_items_are_found(moto: MotoServer) -> None:
    """One membership item under the prefix: membership_present True."""
    put_membership(
        moto.endpoint_url, TABLE, PREFIX, context_hash("x"), included=("vip.g4",)
    )
    present, _ = await probe(moto, target(moto))
    assert present is True


async def test_canaries_read_the_context_item(moto: MotoServer) -> None:
    """Included, excluded and missing contexts evaluate as the SDKs would."""
    put_membership(
        moto.endpoint_url, TABLE, PREFIX, context_hash("alice"), included=("vip.g4",)
    )
    put_membership(
        moto.endpoint_url, TABLE, PREFIX, context_hash("bob"), excluded=("vip.g4",)
    )
    checks = (
        canary("alice", "alice", "included"),
        canary("bob", "bob", "excluded"),
        canary("carol", "carol", "included"),
        canary("unknown-generation", "alice", "included", generation=None),
    )
    _, outcomes = await probe(moto, target(moto, *checks))
    assert outcomes == {
        "alice": True,
        "bob": True,
        "carol": False,
        "unknown-generation": None,
    }

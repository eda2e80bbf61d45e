"""Redis checks beyond freshness: INFO, the membership sample, canary reads.

All read-only and cheap: INFO and one capped SCAN every `health_interval`,
two SMEMBERS per canary on every probe, pipelined with the metadata read.
"""

from __future__ import annotations

import time
from typing import Any

from monitor.probes.canary import checkable, evaluate_canary
from monitor.probes.redis.resp import RespConnection, RespError
from monitor.probes.result import CanaryResult, RedisHealth
from monitor.store_keys import (
    REDIS_EMPTY_HEAD,
    redis_exclude_key,
    redis_include_key,
    redis_membership_pattern,
)
from monitor.targets import CanaryCheck

# The membership sample: at most this many SCAN calls of this COUNT, and no
# longer than this; a store of millions of unrelated keys yields "unknown",
# never a false "absent".
SCAN_COUNT = 100
SCAN_MAX_CALLS = 10
SCAN_BUDGET_SECONDS = 0.25


def parse_info(raw: bytes) -> dict[str, str]:
    """INFO's `key:value` lines as a dict (sections and comments skipped)."""
    fields: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _int(fields: dict[str, str], key: str, default: int = 0) -> int:
    try:
        return int(fields.get(key, default))
    except ValueError:
        return default


def health_from_info(fields: dict[str, str]) -> RedisHealth:
    """The parts of INFO that matter for big segments."""
    # INFO cannot say whether `save` is configured (that needs CONFIG, which
    # the monitor never sends): count persistence as on when AOF is enabled or
    # an RDB snapshot has been taken since the server started.
    persistence = (
        fields.get("aof_enabled") == "1"
        or _int(fields, "rdb_saves") > 0
        or _int(fields, "rdb_last_bgsave_time_sec", -1) >= 0
    )
    return RedisHealth(
        version=fields.get("redis_version", "unknown"),
        maxmemory_policy=fields.get("maxmemory_policy", "unknown"),
        maxmemory=_int(fields, "maxmemory"),
        used_memory=_int(fields, "used_memory"),
        persistence_enabled=persistence,
    )


async def sample_membership(
    conn: RespConnection, prefix: str, empty: str = REDIS_EMPTY_HEAD
) -> bool | None:
    """True when any include/exclude set exists; False when a full scan found none;
    None when the capped sample ran out first. Raises RespError when SCAN is denied.

    `empty`: what an empty prefix gives, as the target's SDK lays keys out."""
    pattern = redis_membership_pattern(prefix, empty)
    cursor: bytes | int = 0
    deadline = time.monotonic() + SCAN_BUDGET_SECONDS
    for _ in range(SCAN_MAX_CALLS):
        reply = await conn.call("SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT)
        if isinstance(reply, RespError):
            raise reply
        cursor, keys = reply[0], reply[1]
        if keys:
            return True
        if cursor == b"0":
            return False
        if time.monotonic() > deadline:
            return None
    return None


def canary_commands(
    prefix: str, checks: tuple[CanaryCheck, ...], empty: str = REDIS_EMPTY_HEAD
) -> list[tuple[str, str]]:
    """SMEMBERS of the include and exclude sets, two per checkable canary."""
    commands = []
    for check in checks:
        if checkable(check):
            include = redis_include_key(prefix, check.context_hash, empty)
            exclude = redis_exclude_key(prefix, check.context_hash, empty)
            commands.append(("SMEMBERS", include))
            commands.append(("SMEMBERS", exclude))
    return commands


def canary_results(
    checks: tuple[CanaryCheck, ...], replies: list[Any]
) -> tuple[CanaryResult, ...]:
    """Each canary's outcome from the SMEMBERS replies, in canary_commands' order."""
    results = []
    pairs = iter(replies)
    for check in checks:
        if not checkable(check):
            results.append(evaluate_canary(check, (), ()))
            continue
        includes, excludes = next(pairs), next(pairs)
        failed = next(
            (r for r in (includes, excludes) if isinstance(r, RespError)), None
        )
        if failed is not None:
            results.append(evaluate_canary(check, (), (), f"SMEMBERS failed: {failed}"))
            continue
        results.append(
            evaluate_canary(
                check, {m.decode() for m in includes}, {m.decode() for m in excludes}
            )
        )
    return tuple(results)

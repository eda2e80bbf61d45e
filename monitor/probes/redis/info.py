"""Redis checks beyond freshness: INFO, the membership sample, canary reads.

All read-only and cheap: INFO and one capped SCAN every `health_interval`,
two SMEMBERS per canary on every probe, pipelined with the metadata read.
"""

from __future__ import annotations

import time
from typing import Any

from monitor.probes.canary import checkable, evaluate_canary
from monitor.probes.redis.resp import RespConnection, RespError, RespProtocolError
from monitor.probes.result import CanaryResult, RedisHealth
from monitor.sanitize import safe_text
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


# INFO's text fields shown as label values are cut to this length.
MAX_INFO_TEXT = 64


def _int(fields: dict[str, str], key: str, default: int = 0) -> int:
    """An INFO field as a non-negative 64-bit integer; `default` when it is not one
    (a 400-digit `used_memory` is dropped, never carried to a float)."""
    text = fields.get(key)
    if text is None or not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
        return default
    return int(text)


def _text(fields: dict[str, str], key: str) -> str:
    """An INFO text field, made safe and short for a label value."""
    return safe_text(fields.get(key, "unknown")[:MAX_INFO_TEXT])


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
        version=_text(fields, "redis_version"),
        maxmemory_policy=_text(fields, "maxmemory_policy"),
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
        if not (
            isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list)
        ):
            raise RespProtocolError("a SCAN reply that is not [cursor, keys]")
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


def _members(reply: Any) -> set[str] | None:
    """An SMEMBERS reply as a set of strings; None when it is not one."""
    if not isinstance(reply, list) or not all(isinstance(m, bytes) for m in reply):
        return None
    return {safe_text(m.decode("utf-8", "replace")) for m in reply}


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
        members = [_members(r) for r in (includes, excludes)]
        if members[0] is None or members[1] is None:
            detail = "SMEMBERS returned something other than a set of strings"
            results.append(evaluate_canary(check, (), (), detail))
            continue
        results.append(evaluate_canary(check, members[0], members[1]))
    return tuple(results)

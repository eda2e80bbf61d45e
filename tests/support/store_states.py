"""Store states the SDK cross-checks write: name -> how to write it (None: unreachable).

Each writer takes an admin Redis client and the sync-marker key. The states
cover what LaunchDarkly writes, what goes wrong in the field, and the values
on which the SDKs' parsers differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.clock import now_ms

Writer = Callable[[Any, str], Any]

REDIS_STATES: dict[str, Writer | None] = {
    "fresh": lambda c, key: c.set(key, str(now_ms() - 5_000)),
    "stale": lambda c, key: c.set(key, str(now_ms() - 600_000)),
    "never_synced": lambda c, key: None,
    "wrong_key_type": lambda c, key: c.sadd(key, "x"),
    "non_numeric": lambda c, key: c.set(key, "12abc"),
    "future": lambda c, key: c.set(key, str(now_ms() + 86_400_000)),
    "unreachable": None,
    "empty": lambda c, key: c.set(key, ""),
    "decimal": lambda c, key: c.set(key, "1.5"),
    "leading_space": lambda c, key: c.set(key, " 1"),
    "negative": lambda c, key: c.set(key, "-5"),
    "fresh_leading_space": lambda c, key: c.set(key, f" {now_ms() - 5_000}"),
    "fresh_underscore": lambda c, key: c.set(key, f"{now_ms() - 5_000:_}"),
    # parseInt reads the integer part: a fresh marker with a tail reads fresh.
    "fresh_decimal": lambda c, key: c.set(key, f"{now_ms() - 5_000}.5"),
    "fresh_trailing_text": lambda c, key: c.set(key, f"{now_ms() - 5_000}abc"),
}

"""Slow reads done every `probe.health_interval`, not every probe.

Redis INFO and the membership sample, and DynamoDB's membership Query, change
slowly and cost more than the sync marker read: each probe keeps the last
value per target here and reads again only once it is due.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container
from typing import Generic, TypeVar

V = TypeVar("V")


class EveryInterval(Generic[V]):
    """Per-target values, each due for a refresh `interval` seconds after it was put."""

    def __init__(
        self, interval: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._monotonic = monotonic
        self._values: dict[str, tuple[float, V]] = {}

    def due(self, target_id: str) -> bool:
        """True when the target has no value yet, or its value is `interval` old."""
        kept = self._values.get(target_id)
        return kept is None or self._monotonic() - kept[0] >= self.interval

    def get(self, target_id: str) -> V | None:
        """The last value put for the target, due or not."""
        kept = self._values.get(target_id)
        return None if kept is None else kept[1]

    def put(self, target_id: str, value: V) -> None:
        """Keep `value` for the target, fresh from now."""
        self._values[target_id] = (self._monotonic(), value)

    def prune(self, present: Container[str]) -> None:
        """Drop the values of targets not in `present` (gone from the config or API)."""
        for target_id in [t for t in self._values if t not in present]:
            del self._values[target_id]

    def __len__(self) -> int:
        """How many targets have a value."""
        return len(self._values)

"""Sharding: split a large account over N replicas with no coordination.

Like Prometheus' `hashmod`, each replica keeps the integrations whose stable
hash of `integration_id` falls in its shard. The hash is SHA-256, so every
replica, version and platform agrees on the split.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_SPEC = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count` (0-based)."""

    index: int
    count: int

    @classmethod
    def parse(cls, spec: str) -> Shard:
        """Parse `I/N`, e.g. `0/3`; raises ValueError with a readable message.

        An index at or past the count (`3/3`: a StatefulSet scaled past its
        shard total) parses: such a shard owns nothing (`in_range` is False),
        and the daemon runs, logs it and exports it instead of crash-looping.
        """
        match = _SPEC.match(spec.strip())
        if match is None:
            raise ValueError(f"invalid shard {spec!r}: use I/N, e.g. 0/3")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1:
            raise ValueError(f"invalid shard {spec!r}: need N >= 1")
        return cls(index, count)

    @property
    def in_range(self) -> bool:
        """True when the index is one of the count's (0 <= I < N)."""
        return 0 <= self.index < self.count

    def owns(self, integration_id: str) -> bool:
        """True when `integration_id` belongs to this shard (never out of range).

        Static targets are split the same way, by their name: each is owned by
        exactly one shard.
        """
        digest = hashlib.sha256(integration_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

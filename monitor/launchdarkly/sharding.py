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
        """Parse `I/N`, e.g. `0/3`; raises ValueError with a readable message."""
        match = _SPEC.match(spec.strip())
        if match is None:
            raise ValueError(f"invalid shard {spec!r}: use I/N, e.g. 0/3")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"invalid shard {spec!r}: need 0 <= I < N")
        return cls(index, count)

    def owns(self, integration_id: str) -> bool:
        """True when `integration_id` belongs to this shard."""
        digest = hashlib.sha256(integration_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

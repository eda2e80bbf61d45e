"""What the API side has counted so far: plain data the exporters read.

The client and discovery write into one `ApiCounters`; it outlives a client
replaced by a reload, so the counters stay monotonic.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class ApiCounters:
    """Monotonic API counters and the latest rate-limit headroom."""

    # (endpoint, status code or "timeout"/"error") -> requests made
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    # rate-limit scope ("global", "route:<endpoint>") -> requests left, from the
    # last reply that carried it
    rate_limit_remaining: dict[str, int] = field(default_factory=dict)
    # integration id -> `_status.errors` status code -> distinct errors seen
    errors_total: dict[str, Counter[str]] = field(default_factory=dict)
    # problems found parsing replies (a field or item that did not fit)
    parse_errors_total: int = 0

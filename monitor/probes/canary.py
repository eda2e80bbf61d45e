"""Canary contexts: does a known context evaluate as expected against the store?

The SDKs look up `{segmentKey}.g{generation}` in the context's include and
exclude lists; include wins over exclude; a context in neither falls through
to the segment's own rules.
"""

from __future__ import annotations

from collections.abc import Collection

from monitor.probes.result import CanaryResult
from monitor.targets import CanaryCheck


def checkable(check: CanaryCheck) -> bool:
    """True when the canary's segment ref is known, so the store can be asked."""
    return check.segment_ref is not None and check.problem is None


def evaluate_canary(
    check: CanaryCheck,
    includes: Collection[str],
    excludes: Collection[str],
    error: str | None = None,
) -> CanaryResult:
    """Apply the SDKs' membership rule to one canary (ok None when it cannot tell)."""
    ref = check.segment_ref
    if check.problem is not None or ref is None:
        return CanaryResult(
            check.name, None, check.problem or "segment generation unknown"
        )
    if error is not None:
        return CanaryResult(check.name, None, error)
    included = ref in includes
    excluded = not included and ref in excludes
    member = "included" if included else "excluded" if excluded else "not listed"
    # "excluded" expects the context not to be a member: explicitly excluded,
    # or not listed at all (the segment's own rules then decide).
    ok = included if check.expect == "included" else not included
    return CanaryResult(
        check.name, ok, f"context is {member} for {ref}, expected {check.expect}"
    )

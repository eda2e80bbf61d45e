"""Presentation helpers shared by the status page and `check`'s table."""

from __future__ import annotations


def format_age(seconds: float | None) -> str:
    """A duration for people: 42s, 7m, 3.5h, 2.0d; a dash when unknown."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"

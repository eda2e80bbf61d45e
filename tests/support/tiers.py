"""The speed tiers: each is a folder of tests/ and a pytest marker of the same name."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
# Fastest first.
TIERS = ("unit", "integration", "faults", "hostile", "e2e")


def tier_of(path: Path) -> str | None:
    """The tier of a test file: the folder of tests/ it sits in, if a tier's."""
    try:
        folder = path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return folder if folder in TIERS else None

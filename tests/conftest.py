"""Shared fixtures and the speed tiers.

The store fixtures come from the `tests.support.plugin` plugin; logging state
is restored after every test. Every test is marked with its tier, which is
the folder it sits in (`tests/unit/...` -> `unit`), so `pytest -m unit` runs
the fast tier and no test module marks its own tier.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from tests.support.tiers import tier_of

pytest_plugins = ["tests.support.plugin"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the tier of its folder."""
    for item in items:
        tier = tier_of(item.path)
        if tier is not None:
            item.add_marker(tier)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Tests that configure logging must not leak handlers into the next test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()

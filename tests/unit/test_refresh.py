"""Slow reads refreshed every health interval (`monitor.probes.refresh.EveryInterval`)."""

from __future__ import annotations

from monitor.probes.refresh import EveryInterval
from tests.support.clock import FakeClock


def test_a_value_is_due_first_then_again_after_the_interval() -> None:
    """No value: due; just put: not due; `interval` later: due again, value kept."""
    clock = FakeClock()
    cache: EveryInterval[bool | None] = EveryInterval(300.0, clock)
    assert cache.due("a")
    assert cache.get("a") is None
    cache.put("a", True)
    assert not cache.due("a")
    clock.now += 299.9
    assert not cache.due("a")
    clock.now += 0.1
    assert cache.due("a")
    assert cache.get("a") is True
    assert cache.due("b")  # per target


def test_a_shorter_interval_applies_to_values_already_kept() -> None:
    """A reload that shortens the interval makes older values due at once."""
    clock = FakeClock()
    cache: EveryInterval[int] = EveryInterval(300.0, clock)
    cache.put("a", 1)
    clock.now += 60
    cache.interval = 30.0
    assert cache.due("a")

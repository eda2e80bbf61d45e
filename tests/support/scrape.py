"""The monitor's exposition through prometheus_client, for tests that use its API.

`make_registry(state)` gives a registry whose one collector renders the
monitor's own exposition and parses it back, so `generate_latest` and the
client's parsers see exactly what /metrics serves. `Scrape` reads an
exposition back: its samples, looked up by name and labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from monitor.export.metrics import render_metrics
from monitor.service.state import MonitorState


class MonitorCollector(Collector):
    """The monitor's families for prometheus_client, parsed back from the exposition."""

    def __init__(
        self, state: MonitorState, clock: Callable[[], float] = time.time
    ) -> None:
        self._state = state
        self._clock = clock

    def describe(self) -> list[Metric]:
        """Nothing: registering must not run a collection."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every family, from the current state."""
        text = render_metrics(self._state, clock=self._clock).decode("utf-8")
        yield from text_string_to_metric_families(text)


def make_registry(
    state: MonitorState, clock: Callable[[], float] = time.time
) -> CollectorRegistry:
    """A fresh registry holding only the monitor's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(state, clock))
    return registry


@dataclass(frozen=True)
class Sample:
    """One exported sample."""

    name: str
    labels: dict[str, str]
    value: float


class Scrape:
    """The samples of one exposition, parsed with prometheus_client's own parser."""

    def __init__(self, text: str) -> None:
        """Parse `text` (the text format, as /metrics serves it by default)."""
        self.text = text
        self.samples = tuple(
            Sample(sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        )

    @classmethod
    def of(cls, state: MonitorState) -> Scrape:
        """The exposition of `state`, as /metrics renders it."""
        return cls(render_metrics(state).decode("utf-8"))

    def find(self, name: str, **labels: str) -> list[Sample]:
        """Samples named `name` whose labels include `labels`."""
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float | None:
        """The one matching sample's value; None when absent; error when ambiguous."""
        found = self.find(name, **labels)
        if len(found) > 1:
            raise AssertionError(f"{len(found)} samples match {name} {labels}")
        return found[0].value if found else None


def assert_status(scrape: Scrape, *, up: float, available: float, stale: float) -> None:
    """The three headline gauges of the one target in `scrape`."""
    assert (
        scrape.value("ld_store_probe_up"),
        scrape.value("ld_store_available"),
        scrape.value("ld_store_stale"),
    ) == (up, available, stale)

"""Reading exported metrics back: one scrape's samples, looked up by name and labels."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.export.metrics import make_registry
from monitor.service.state import MonitorState


@dataclass(frozen=True)
class Sample:
    """One exported sample."""

    name: str
    labels: dict[str, str]
    value: float


class Scrape:
    """The samples of one exposition, parsed with prometheus_client's own parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = tuple(
            Sample(sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        )

    @classmethod
    def of(cls, state: MonitorState) -> Scrape:
        """Collect `state` through the monitor's own registry, as /metrics does."""
        return cls(generate_latest(make_registry(state)).decode())

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

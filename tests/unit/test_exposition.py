"""The exposition writer: escaping, special values, both formats' headers."""

from __future__ import annotations

import math

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from monitor.export.exposition import Family, escape, format_value, label_string, render


def test_label_values_are_escaped_and_parse_back() -> None:
    """Backslashes, quotes and newlines in label values survive a round trip."""
    hostile = 'a "quoted" \\ back\nslash'
    family = Family("x_info", "gauge", "help with \\ and\nnewline")
    family.add(label_string(("name",), (hostile,)), 1.0)
    [parsed] = parse_text(render([family], openmetrics=False).decode())
    assert parsed.samples[0].labels == {"name": hostile}
    assert escape("plain") == "plain"


def test_special_values() -> None:
    """NaN and infinities use the spellings Prometheus reads."""
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(3) == "3.0"


def test_counter_headers_differ_by_format_and_samples_do_not() -> None:
    """Text format names the counter with _total; OpenMetrics without; samples carry _total in both."""
    family = Family("reqs", "counter", "requests")
    family.add('code="200"', 5.0)
    text = render([family], openmetrics=False).decode()
    openmetrics = render([family], openmetrics=True).decode()
    assert "# TYPE reqs_total counter" in text
    assert "# TYPE reqs counter" in openmetrics
    assert openmetrics.endswith("# EOF\n")
    [t] = parse_text(text)
    [o] = parse_openmetrics(openmetrics)  # type: ignore[no-untyped-call]  # untyped upstream
    assert (
        [(s.name, s.value) for s in t.samples]
        == [(s.name, s.value) for s in o.samples]
        == [("reqs_total", 5.0)]
    )


def test_a_value_that_cannot_be_a_float_drops_only_its_sample() -> None:
    """A 400-digit integer (or a string) is no sample value: `put`, `add` and
    `line` drop that one sample, and the family goes on with the others."""
    family = Family("ld_store_x", "gauge", "x")
    family.put('{a="1"} ', 10**400)
    family.add('a="2"', 10**400)
    family.put('{a="3"} ', 2.0)
    assert family.line('a="4"', "oops") == ""  # type: ignore[arg-type]
    assert family.lines == ['ld_store_x{a="3"} 2.0\n']
    with pytest.raises(ValueError, match="not a sample value"):
        format_value(10**400)

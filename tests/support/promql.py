"""Which metric names a PromQL expression selects (no PromQL parser exists in Python)."""

from __future__ import annotations

import re

PROMQL_FUNCTIONS = frozenset(
    {
        "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes",
        "clamp", "clamp_max", "clamp_min", "count_over_time", "delta", "deriv",
        "floor", "histogram_quantile", "idelta", "increase", "irate",
        "label_join", "label_replace", "last_over_time", "max_over_time",
        "min_over_time", "predict_linear", "rate", "resets", "round", "scalar",
        "sort", "sort_desc", "sum_over_time", "time", "timestamp", "vector",
    }
)  # fmt: skip
PROMQL_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile",
     "stddev", "stdvar", "count_values", "group"}
)  # fmt: skip
PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
     "and", "or", "unless", "offset"}
)  # fmt: skip


def promql_series(expr: str) -> set[str]:
    """Metric names an expression selects; raises on unknown function names."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text
    )
    found: set[str] = set()
    for match in re.finditer(r"(?<![\w$.])[A-Za-z_:][\w:]*", text):
        word = match.group(0)
        called = text[match.end() :].lstrip().startswith("(")
        if word in PROMQL_KEYWORDS or word in PROMQL_AGGREGATIONS:
            continue
        if called:
            if word not in PROMQL_FUNCTIONS:
                raise ValueError(f"unknown PromQL function {word!r} in {expr!r}")
            continue
        found.add(word)
    return found

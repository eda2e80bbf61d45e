"""A fast writer of the Prometheus text format and OpenMetrics.

prometheus_client builds a Sample object per series and formats it on
output; at 5,000 integrations that is ~100,000 samples and close to a second
per scrape. Here each family keeps its sample lines as text, and the label
set of a target is rendered once per scrape and shared by every family, so
a scrape costs a few string joins per sample. The output is identical in
shape to prometheus_client's and both formats are checked with its parsers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Literal

Kind = Literal["gauge", "counter"]


def escape(value: str) -> str:
    """A label value escaped for the exposition formats."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


@functools.lru_cache(maxsize=65536)
def label_string(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    """`a="1",b="2"`: the inside of a label set (cached: labels repeat every scrape)."""
    return ",".join(
        f'{name}="{escape(value)}"' for name, value in zip(names, values, strict=True)
    )


_SPECIAL_VALUES = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}


def format_value(value: float) -> str:
    """A sample value as Prometheus parsers read it: repr, but NaN, +Inf, -Inf."""
    text = repr(float(value))
    # Every finite repr ends in a digit; only inf, -inf and nan end in a letter.
    return _SPECIAL_VALUES[text] if text[-1] in "fn" else text


def head_of(labels: str) -> str:
    """The part of a sample line between its name and its value: `{labels} `."""
    return "{" + labels + "} "


class Family:
    """One metric family: its header and the text of its samples."""

    __slots__ = ("help", "kind", "lines", "name", "sample")

    def __init__(self, name: str, kind: Kind, documentation: str) -> None:
        self.name = name
        self.kind = kind
        self.help = documentation.replace("\\", "\\\\").replace("\n", "\\n")
        # Counters' samples carry the _total suffix in both formats.
        self.sample = f"{name}_total" if kind == "counter" else name
        self.lines: list[str] = []

    def add(self, labels: str, value: float, extra: str = "") -> None:
        """One sample: `labels` is a rendered label set, `extra` more to append."""
        if extra:
            labels = f"{labels},{extra}" if labels else extra
        text = format_value(value)
        if labels:
            self.lines.append(f"{self.sample}{{{labels}}} {text}\n")
        else:
            self.lines.append(f"{self.sample} {text}\n")

    def put(self, head: str, value: float) -> None:
        """One sample of a target: `head` is `{labels} ` from `head_of`."""
        self.lines.append(self.sample + head + format_value(value) + "\n")

    def put_flag(self, head: str, value: bool) -> None:
        """A 0/1 sample of a target, without formatting a float."""
        self.lines.append(self.sample + head + ("1.0\n" if value else "0.0\n"))

    def header(self, openmetrics: bool) -> str:
        """HELP and TYPE lines in the chosen format."""
        if openmetrics:
            return f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.kind}\n"
        return f"# HELP {self.sample} {self.help}\n# TYPE {self.sample} {self.kind}\n"


def capture(families: tuple[Family, ...], fill: Callable[[], None]) -> tuple[str, ...]:
    """Run `fill` against empty families; return the text it wrote to each, in order.

    This is how a target's samples are rendered once and kept between
    scrapes: the same `put`/`add` code writes them.
    """
    saved = [family.lines for family in families]
    for family in families:
        family.lines = []
    try:
        fill()
        return tuple("".join(family.lines) for family in families)
    finally:
        for family, lines in zip(families, saved, strict=True):
            family.lines = lines


def extend(families: tuple[Family, ...], chunks: tuple[str, ...]) -> None:
    """Append kept text (from `capture`) to each family."""
    for family, chunk in zip(families, chunks, strict=True):
        if chunk:
            family.lines.append(chunk)


def render_chunks(families: list[Family], *, openmetrics: bool) -> Iterator[bytes]:
    """The exposition one family at a time, so that no copy of the whole is held."""
    for family in families:
        yield (family.header(openmetrics) + "".join(family.lines)).encode("utf-8")
    if openmetrics:
        yield b"# EOF\n"


def render(families: list[Family], *, openmetrics: bool) -> bytes:
    """The whole exposition."""
    return b"".join(render_chunks(families, openmetrics=openmetrics))

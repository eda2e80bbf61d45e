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
    """A sample value as Prometheus parsers read it: repr, but NaN, +Inf, -Inf.

    Raises ValueError for a value that is no float (an integer too large for
    one, a string): the callers below drop that one sample.
    """
    try:
        text = repr(float(value))
    except (OverflowError, TypeError, ValueError) as err:
        raise ValueError(f"not a sample value: {type(value).__name__}") from err
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
        line = self.line(labels, value, extra)
        if line:
            self.lines.append(line)

    def line(self, labels: str, value: float, extra: str = "") -> str:
        """The text `add` appends, for a caller that keeps it between scrapes.

        Empty for a value that cannot be a float: that one series is dropped,
        the scrape goes on.
        """
        if extra:
            labels = f"{labels},{extra}" if labels else extra
        try:
            text = format_value(value)
        except ValueError:
            return ""
        if labels:
            return f"{self.sample}{{{labels}}} {text}\n"
        return f"{self.sample} {text}\n"

    def put(self, head: str, value: float) -> None:
        """One sample of a target: `head` is `{labels} ` from `head_of`
        (dropped, like `line`, when `value` cannot be a float)."""
        try:
            self.lines.append(self.sample + head + format_value(value) + "\n")
        except ValueError:
            return

    def put_flag(self, head: str, value: bool) -> None:
        """A 0/1 sample of a target, without formatting a float."""
        self.lines.append(self.sample + head + ("1.0\n" if value else "0.0\n"))

    def header(self, openmetrics: bool) -> str:
        """HELP and TYPE lines in the chosen format."""
        if openmetrics:
            return f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.kind}\n"
        return f"# HELP {self.sample} {self.help}\n# TYPE {self.sample} {self.kind}\n"


# Kept text: (index of the family in its tuple, the text written to it), for
# the families that got any. A store has samples in only some of the
# families (no TLS, no DynamoDB table, ...): keeping the empty ones out
# makes a scrape append only what is there.
Chunks = tuple[tuple[int, str], ...]


def capture(families: tuple[Family, ...], fill: Callable[[], None]) -> Chunks:
    """Run `fill` against empty families; return the text it wrote, family by family.

    This is how a target's samples are rendered once and kept between
    scrapes: the same `put`/`add` code writes them.
    """
    saved = [family.lines for family in families]
    for family in families:
        family.lines = []
    try:
        fill()
        return tuple(
            (index, "".join(family.lines))
            for index, family in enumerate(families)
            if family.lines
        )
    finally:
        for family, lines in zip(families, saved, strict=True):
            family.lines = lines


class KeptLines:
    """Every store's kept text sorted into per-family lists, reused while none changed.

    A scrape then hands each family one list (a C-level `extend`) instead of
    appending each store's text family by family: at thousands of stores
    that loop was a third of the scrape. The lists hold references to the
    kept strings, not copies. They are rebuilt when any store's kept text is
    a different object than last time, which happens once after each round
    (the daemon pre-renders then), not on the scrape.
    """

    __slots__ = ("_lists", "_sources")

    def __init__(self) -> None:
        self._sources: tuple[Chunks, ...] = ()
        self._lists: tuple[list[str], ...] = ()

    def extend(self, families: tuple[Family, ...], sources: list[Chunks]) -> None:
        """Append the text of `sources` (in order) to `families`."""
        known = self._sources
        if (
            len(sources) != len(known)
            or len(self._lists) != len(families)
            or any(a is not b for a, b in zip(sources, known, strict=True))
        ):
            lists: tuple[list[str], ...] = tuple([] for _ in families)
            for chunks in sources:
                for index, chunk in chunks:
                    lists[index].append(chunk)
            self._sources, self._lists = tuple(sources), lists
        for family, lines in zip(families, self._lists, strict=True):
            family.lines.extend(lines)


def render_chunks(families: list[Family], *, openmetrics: bool) -> Iterator[bytes]:
    """The exposition one family at a time, so that no copy of the whole is held."""
    for family in families:
        yield (family.header(openmetrics) + "".join(family.lines)).encode("utf-8")
    if openmetrics:
        yield b"# EOF\n"


def render(families: list[Family], *, openmetrics: bool) -> bytes:
    """The whole exposition."""
    return b"".join(render_chunks(families, openmetrics=openmetrics))

"""What every benchmark shares: its command line, repeats, figures and report.

A figure is a list of measurements (one per repeat) reported as median and
spread (min, max). A ratio to the floor is a figure too: one ratio per
repeat, each from a monitor run and the floor run measured right after it,
so slow drift of the machine hits both sides of every ratio alike.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_DECIMALS = {"ms": 1, "s": 2, "x": 2, "MB": 1, "%": 2, "µs": 1, "requests": 0}


@dataclass(frozen=True)
class Options:
    """The options every benchmark takes."""

    quick: bool
    smoke: bool
    repeat: int
    json: bool
    profile: Path | None
    extra: argparse.Namespace


def parse_options(
    description: str,
    *,
    default_repeat: int = 5,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
) -> Options:
    """Parse the common options (and the benchmark's own ones, via `extra`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and shorter windows"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, one repeat: checks that the script runs (for the tests)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"measurements per figure (default {default_repeat}; 1 with --smoke)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of text"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="also sample the monitor's side with py-spy into FILE (raw format)",
    )
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.smoke else default_repeat)
    return Options(
        quick=args.quick or args.smoke,
        smoke=args.smoke,
        repeat=repeat,
        json=args.json,
        profile=args.profile,
        extra=args,
    )


@dataclass
class Figure:
    """One measured quantity over the repeats."""

    label: str
    values: list[float]
    unit: str
    target: str | None = None
    met: bool | None = None

    @property
    def median(self) -> float:
        """The median over the repeats."""
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        """The smallest measurement."""
        return min(self.values)

    @property
    def high(self) -> float:
        """The largest measurement."""
        return max(self.values)

    def as_dict(self) -> dict[str, Any]:
        """The figure for the JSON report."""
        return {
            "label": self.label,
            "unit": self.unit,
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "values": self.values,
            "target": self.target,
            "met": self.met,
        }


def ratios(monitor: list[float], floor: list[float]) -> list[float]:
    """Per-repeat ratios monitor / floor (pairs measured back to back)."""
    return [m / f for m, f in zip(monitor, floor, strict=True)]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    memory_kb = 0
    with Path("/proc/cpuinfo").open(encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with Path("/proc/meminfo").open(encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "redis_server": _redis_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": load_average(),
        "revision": _revision(),
    }


def _revision() -> str:
    """The commit measured, `-dirty` when the work tree differs from it."""
    try:
        return (
            subprocess.run(
                ["git", "describe", "--always", "--dirty"],
                cwd=Path(__file__).resolve().parent.parent,
                capture_output=True,
                text=True,
                check=False,
                timeout=5,
            ).stdout.strip()
            or "unknown"
        )
    except OSError:
        return "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load average: other work on the machine skews timings."""
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


def _redis_version() -> str:
    try:
        out = subprocess.run(
            ["redis-server", "--version"],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        ).stdout
    except OSError:
        return "absent"
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip() or "unknown"


@dataclass
class Report:
    """The figures of one benchmark run, printed as text or JSON."""

    name: str
    title: str
    options: Options
    parameters: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    load_at_start: str = field(default_factory=load_average)

    def add(
        self,
        label: str,
        values: list[float],
        unit: str,
        *,
        target: str | None = None,
        met: bool | None = None,
    ) -> Figure:
        """Record a figure."""
        figure = Figure(label, list(values), unit, target, met)
        self.figures.append(figure)
        return figure

    def note(self, text: str) -> None:
        """Record a remark printed under the figures."""
        self.notes.append(text)

    def emit(self) -> None:
        """Print the report on stdout."""
        if self.options.json:
            doc = {
                "benchmark": self.name,
                "title": self.title,
                "machine": machine(),
                "parameters": self.parameters,
                "repeat": self.options.repeat,
                "figures": [f.as_dict() for f in self.figures],
                "notes": self.notes,
                "loadavg_at_start": self.load_at_start,
                "seconds": round(time.monotonic() - self.started, 1),
            }
            print(json.dumps(doc, indent=2))
            return
        info = machine()
        print(f"{self.name}: {self.title}")
        print(
            f"  machine: {info['nproc']} cores, {info['cpu']}, {info['ram_gib']} GiB, "
            f"Python {info['python']}, redis-server {info['redis_server']}, "
            f"{info['date']}, revision {info['revision']}"
        )
        print(
            f"  load average (1/5/15 min): {self.load_at_start} at start, "
            f"{info['loadavg']} at end"
        )
        params = ", ".join(f"{k}={v}" for k, v in self.parameters.items())
        print(f"  parameters: {params}; repeats={self.options.repeat}")
        width = max([len(f.label) for f in self.figures] + [6])
        header = f"  {'figure':<{width}}  {'median':>14}  {'min':>14}  {'max':>14}"
        print(header + "  target")
        for figure in self.figures:
            verdict = ""
            if figure.target is not None:
                verdict = f"{figure.target} " + (
                    "" if figure.met is None else ("met" if figure.met else "MISSED")
                )
            print(
                f"  {figure.label:<{width}}  {_fmt(figure.median, figure.unit):>14}  "
                f"{_fmt(figure.low, figure.unit):>14}  "
                f"{_fmt(figure.high, figure.unit):>14}  {verdict}".rstrip()
            )
        for text in self.notes:
            print(f"  note: {text}")
        print(f"  ({time.monotonic() - self.started:.0f} s)")


def _fmt(value: float, unit: str) -> str:
    decimals = _DECIMALS.get(unit, 2)
    return f"{value:,.{decimals}f} {unit}"


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries only the report)."""
    print(text, file=sys.stderr, flush=True)


@contextmanager
def spied(path: Path | None, *, rate: int = 500) -> Iterator[None]:
    """Sample this process with py-spy during the block into `path` (raw format).

    A no-op without a path. py-spy attaches to our own pid, so the profile
    holds only the block, not the set-up before it; `bench/spy_top.py`
    summarises the file.
    """
    if path is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    process = subprocess.Popen(
        [
            *(spy, "record", "--pid", str(os.getpid()), "--format", "raw"),
            # Blocking (the default): each sample pauses the process for a
            # moment, so no stack comes out torn; the block is not timed.
            *("--rate", str(rate), "--output", str(path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy needs a moment to attach
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        process.wait(timeout=30)
        progress(f"py-spy profile written to {path}")

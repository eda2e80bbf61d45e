"""Every benchmark under bench/ runs end to end at tiny sizes (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.spy_top import summarise

ROOT = Path(__file__).resolve().parents[2]

LABELS = {
    "redis_round": [
        "monitor round N=5",
        "floor round N=5",
        "ratio monitor/floor N=5",
        "CPU ratio monitor/floor N=5",
        "monitor per target N=5",
        "floor per target N=5",
    ],
    "dynamodb_round": [
        "monitor round N=5",
        "floor round N=5",
        "ratio monitor/floor",
        "monitor per target",
    ],
    "scrape": [
        "monitor text",
        "floor text",
        "ratio text",
        "monitor OpenMetrics",
        "ratio OpenMetrics",
        "monitor HTTP GET",
        "ratio HTTP GET",
        "monitor HTTP GET, gzip",
        "ratio HTTP GET, gzip",
        "monitor longest loop block, HTTP GET gzip",
    ],
    "status": [
        "status build (JSON + page rows), total",
        "longest event-loop block during a build",
        "GET /status from the build",
        "probe failures with 4 readers, N=5",
        "round ratio with readers / undisturbed N=5",
        "loop lag p99 with readers N=5",
    ],
    "dead_host": [
        "floor (healthy hosts only) N=20",
        "dead host, first round N=20",
        "dead host, later rounds N=20",
        "dead host first round / (floor + timeout) N=20",
        "dead host later rounds / (floor + timeout) N=20",
    ],
    "discovery_cost": [
        "first discovery requests",
        "first discovery time",
        "steady-state requests per interval",
        "requests after one change",
    ],
    "footprint": [
        "RSS after discovery + probe round, N=5",
        "RSS after one /metrics scrape",
        "start to ready, N=5",
        "CPU share, no scrapes, N=5",
        "CPU share, scraped every 15 s, N=5",
    ],
}


def run_bench(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m bench.<name> --smoke` as `make`'s Python would, from the repo root."""
    return subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--smoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(LABELS))
def test_benchmark_runs_and_prints_its_figures(name: str) -> None:
    """The script exits 0 and its report names every figure it promises."""
    result = run_bench(name)
    assert result.returncode == 0, result.stderr[-3000:]
    for label in LABELS[name]:
        assert label in result.stdout, f"{label!r} missing from:\n{result.stdout}"
    assert "Traceback" not in result.stderr


def test_json_report_carries_machine_and_figures() -> None:
    """--json prints one document with the machine and each figure's spread."""
    result = run_bench("discovery_cost", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    assert doc["machine"]["nproc"] >= 1
    steady = next(
        f for f in doc["figures"] if f["label"] == "steady-state requests per interval"
    )
    assert {"median", "min", "max", "values", "target", "met"} <= steady.keys()


def test_spy_top_ranks_functions_by_samples(tmp_path: Path) -> None:
    """The py-spy summariser counts self and inclusive samples per function."""
    profile = tmp_path / "raw.txt"
    profile.write_text(
        "main (a.py:1);work (a.py:5);leaf (b.py:9) 3\nmain (a.py:1);other (a.py:7) 1\n",
        encoding="utf-8",
    )
    total, kept, own, inclusive = summarise(profile, within="work", top=5)
    assert (total, kept) == (4, 3)
    assert own == [("leaf (b.py)", 3)]
    assert ("main (a.py)", 3) in inclusive

"""`ld-store-monitor check`: one discovery, one probe round, a verdict.

Exit 0 when every target is healthy, 1 when any is not, 2 when the config
is bad or the LaunchDarkly API cannot be used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TextIO

import structlog

from monitor.config import Config
from monitor.export.report import build_report
from monitor.launchdarkly.sharding import Shard
from monitor.log import Redactor
from monitor.service.monitor import Monitor
from monitor.web.page import format_age

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1
EXIT_NO_API = 2
# A row counts as healthy when its verdict is one of these.
HEALTHY_VERDICTS = frozenset({"healthy", "off"})

Column = tuple[str, Callable[[dict[str, Any]], Any]]
COLUMNS: tuple[Column, ...] = (
    ("PROJECT", lambda r: r["project"]),
    ("ENVIRONMENT", lambda r: r["environment"]),
    ("KIND", lambda r: r["integration"]),
    ("NAME", lambda r: r["name"]),
    ("STORE", lambda r: r["address"] or "-"),
    ("LAUNCHDARKLY", lambda r: (r["api"] or {}).get("verdict", "-")),
    ("UP", lambda r: _yes((r["probe"] or {}).get("up"))),
    ("AVAILABLE", lambda r: _yes((r["probe"] or {}).get("available"))),
    ("STALE", lambda r: _yes((r["probe"] or {}).get("stale"))),
    ("SYNC AGE", lambda r: format_age((r["probe"] or {}).get("sync_age_seconds"))),
    ("VERDICT", lambda r: r["verdict"]),
    ("REASON", lambda r: (r["probe"] or {}).get("reason") or r.get("problem") or "-"),
)


def _yes(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def render_table(report: dict[str, Any]) -> str:
    """The report as an aligned text table, worst rows first."""
    rows = [[str(cell(row)) for _, cell in COLUMNS] for row in report["targets"]]
    headers = [name for name, _ in COLUMNS]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
        for i, h in enumerate(headers)
    ]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]
    errors = []
    for r in report["targets"]:
        error = (r["probe"] or {}).get("error") or r.get("problem")
        if error:
            errors.append(f"  {r['project']}/{r['environment']} {r['name']}: {error}")
    unhealthy = sum(
        1 for r in report["targets"] if r["verdict"] not in HEALTHY_VERDICTS
    )
    summary = f"{len(rows)} targets, {unhealthy} unhealthy"
    return (
        "\n".join([*lines, "", summary, *(["", "errors:", *errors] if errors else [])])
        + "\n"
    )


async def run_check(
    config: Config,
    redactor: Redactor,
    *,
    fmt: str,
    out: TextIO,
    err: TextIO,
    shard: Shard | None = None,
) -> int:
    """Run one discovery and one probe round; print the result; return the exit code."""
    log: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger("monitor")
    async with Monitor(config, log, shard=shard) as monitor:
        outcome = await monitor.discover()
        if outcome is not None and not outcome.ok:
            reason = outcome.error or "unknown error"
            print(redactor.text(f"cannot use the LaunchDarkly API: {reason}"), file=err)
            return EXIT_NO_API
        await monitor.probe_round()
        report = redactor.value(build_report(monitor.state))
    if fmt == "json":
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        out.write(render_table(report))
    healthy = all(row["verdict"] in HEALTHY_VERDICTS for row in report["targets"])
    return EXIT_HEALTHY if healthy else EXIT_UNHEALTHY

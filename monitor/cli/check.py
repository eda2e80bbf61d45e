"""`ld-store-monitor check`: one discovery, one probe round, a verdict.

Exit 0 when every target is healthy, 1 when any is not, 2 when the config
is bad or the LaunchDarkly API cannot be used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TextIO

import structlog

from monitor.cli.exits import Exit
from monitor.config import Config
from monitor.export.humanize import format_age
from monitor.export.report import Report, Row, build_report
from monitor.launchdarkly.sharding import Shard
from monitor.log import Redactor
from monitor.service.monitor import Monitor

Column = tuple[str, Callable[[Row], object]]
COLUMNS: tuple[Column, ...] = (
    ("PROJECT", lambda r: r.project),
    ("ENVIRONMENT", lambda r: r.environment),
    ("KIND", lambda r: r.integration),
    ("NAME", lambda r: r.name),
    ("STORE", lambda r: r.address or "-"),
    ("LAUNCHDARKLY", lambda r: "-" if r.api is None else r.api.verdict),
    ("SDK", lambda r: r.sdk),
    ("UP", lambda r: _yes(None if r.probe is None else r.probe.up)),
    ("AVAILABLE", lambda r: _yes(None if r.probe is None else r.probe.available)),
    ("STALE", lambda r: _yes(None if r.probe is None else r.probe.stale)),
    (
        "SYNC AGE",
        lambda r: format_age(None if r.probe is None else r.probe.sync_age_seconds),
    ),
    ("VERDICT", lambda r: r.verdict),
    (
        "REASON",
        lambda r: (None if r.probe is None else r.probe.reason) or r.problem or "-",
    ),
)


def _printable(text: str) -> str:
    """`text` that any output encoding takes (a lone surrogate from the API
    would otherwise end the output half-written)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def render_table(report: Report) -> str:
    """The (redacted) report as an aligned text table, worst rows first."""
    rows = [[str(cell(row)) for _, cell in COLUMNS] for row in report.targets]
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
    for r in report.targets:
        error = (None if r.probe is None else r.probe.error) or r.problem
        if error:
            errors.append(f"  {r.project}/{r.environment} {r.name}: {error}")
    unhealthy = sum(1 for r in report.targets if not r.verdict.counts_as_healthy)
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
        reason: object = None
        try:
            outcome = await monitor.discover()
        except Exception as crash:  # noqa: BLE001 -- API garbage: exit 2, said plainly
            reason = f"internal error reading the reply: {crash!r}"
        else:
            if outcome is not None and not outcome.ok:
                reason = outcome.error or "unknown error"
        if reason is not None:
            text = redactor.text(f"cannot use the LaunchDarkly API: {reason}")
            print(_printable(text), file=err)
            return Exit.BAD_INPUT
        await monitor.probe_round()
        report = build_report(monitor.state)
    if fmt == "json":
        out.write(json.dumps(redactor.value(report.to_json()), indent=2) + "\n")
    else:
        out.write(_printable(render_table(report.redacted(redactor.text))))
    healthy = all(row.verdict.counts_as_healthy for row in report.targets)
    return Exit.OK if healthy else Exit.UNHEALTHY

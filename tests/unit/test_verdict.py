"""The verdict vocabulary: its public words, their order, their sets, their colours.

The words are public (the /status JSON, the page's classes, `check`'s
table), so they are pinned here. status.css colours each verdict through
`.v-<verdict>` and `.r-<verdict>` rules and `--<verdict>` properties (the
script's tab icon reads `--<worst verdict>`): the stylesheet must know
every verdict and no other.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from monitor.export.verdict import Verdict

CHECKS_DOC = Path(__file__).resolve().parents[2] / "docs/checks.md"
STYLE = (resources.files("monitor.web") / "assets" / "status.css").read_text("utf-8")
WORST_FIRST = [
    "unavailable",
    "failing",
    "stale",
    "disagreement",
    "degraded",
    "pending",
    "healthy",
    "off",
]


def css_rules() -> list[tuple[str, str]]:
    """(selectors, declarations) of every rule in status.css, comments dropped."""
    text = re.sub(r"/\*.*?\*/", "", STYLE, flags=re.S)
    return re.findall(r"([^{}]+)\{([^{}]*)\}", text)


def css_classes(prefix: str) -> set[str]:
    """The names after `.<prefix>-` in every selector of status.css."""
    selectors = " ".join(selector for selector, _ in css_rules())
    return set(re.findall(rf"\.{prefix}-([a-z0-9_-]+)", selectors))


def test_verdicts_are_the_public_words() -> None:
    """The values /status and the page have always used, none added or renamed."""
    assert [v.value for v in Verdict] == WORST_FIRST


def test_severity_sorts_worst_first() -> None:
    """Severity orders the verdicts from unavailable (worst) to off, each rank distinct."""
    assert [v.value for v in sorted(Verdict, key=lambda v: v.severity)] == WORST_FIRST
    assert len({v.severity for v in Verdict}) == len(Verdict)
    assert Verdict.UNAVAILABLE.severity < Verdict.OFF.severity


def test_problems_are_everything_a_person_should_look_at() -> None:
    """Unavailable, failing, stale, disagreement and degraded are problems; the rest are not."""
    assert {v for v in Verdict if v.is_problem} == {
        Verdict.UNAVAILABLE,
        Verdict.FAILING,
        Verdict.STALE,
        Verdict.DISAGREEMENT,
        Verdict.DEGRADED,
    }


def test_urgent_verdicts_are_the_problems_sdks_feel_now() -> None:
    """Only unavailable and failing are urgent, and every urgent verdict is a problem."""
    urgent = {v for v in Verdict if v.is_urgent}
    assert urgent == {Verdict.UNAVAILABLE, Verdict.FAILING}
    assert all(v.is_problem for v in urgent)


def test_check_counts_healthy_and_off_as_healthy() -> None:
    """`check` exits 0 on healthy and off rows only: pending is not healthy yet."""
    assert {v for v in Verdict if v.counts_as_healthy} == {
        Verdict.HEALTHY,
        Verdict.OFF,
    }
    assert not any(v.is_problem and v.counts_as_healthy for v in Verdict)


def test_every_verdict_has_its_own_meaning() -> None:
    """Each verdict has a distinct, non-empty tooltip text."""
    meanings = [v.meaning for v in Verdict]
    assert all(meanings)
    assert len(set(meanings)) == len(meanings)
    assert Verdict.PENDING.meaning == "not probed yet"


def test_stylesheet_has_a_badge_and_row_rule_for_exactly_the_verdicts() -> None:
    """status.css colours `.v-` and `.r-` of every verdict and names no unknown one."""
    for verdict in Verdict:
        assert any(
            {f".v-{verdict}", f".r-{verdict}"} <= set(re.split(r"\s*,\s*", sel.strip()))
            and "--c:" in body
            for sel, body in css_rules()
        ), verdict
    words = {v.value for v in Verdict}
    assert css_classes("v") == words
    assert css_classes("r") == words


def test_stylesheet_defines_the_colours_of_every_verdict() -> None:
    """The light palette (`:root`) has each verdict's strong, badge and badge text colours."""
    root = next(body for sel, body in css_rules() if sel.strip() == ":root")
    defined = set(re.findall(r"--([a-z0-9-]+)\s*:", root))
    for verdict in Verdict:
        assert {f"{verdict}", f"{verdict}-bg", f"{verdict}-fg"} <= defined, verdict


def test_docs_list_the_verdicts_worst_first() -> None:
    """docs/checks.md names every verdict, in severity order, with the problems first."""
    text = CHECKS_DOC.read_text("utf-8")
    listed = re.search(r"The verdicts, worst first[^:]*:(.*?)\.", text, flags=re.S)
    assert listed is not None
    assert re.findall(r"`([a-z]+)`", listed.group(1)) == WORST_FIRST
    problems = [v.value for v in Verdict if v.is_problem]
    assert problems == WORST_FIRST[:5]
    assert re.search(r"The first five are\s+problems", text)

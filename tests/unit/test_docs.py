"""The README, docs/ and bench/ pages: relative links and anchors resolve, every page is reachable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.markdown import broken_links, github_slug, heading_anchors, links

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md")), *sorted((ROOT / "bench").glob("*.md"))]
STATUS_PAGE_IMAGE = DOCS / "images/status-page.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES]
)
def test_relative_links_resolve_to_existing_files_and_headings(page: Path) -> None:
    """Every relative link in the page names an existing file and, with #anchor, a heading there."""
    assert broken_links(page, ROOT) == []


def test_readme_links_every_docs_page() -> None:
    """Each docs/*.md page is linked from the README, so none is orphaned."""
    linked = {
        (README.parent / link.target.partition("#")[0]).resolve()
        for link in links(README.read_text("utf-8"))
        if link.is_relative
    }
    assert {p.resolve() for p in DOCS.glob("*.md")} - linked == set()


def test_readme_shows_a_small_status_page_screenshot() -> None:
    """The README's status page picture is a PNG under 300 KB that it links to."""
    assert STATUS_PAGE_IMAGE.read_bytes()[:8] == PNG_SIGNATURE
    assert STATUS_PAGE_IMAGE.stat().st_size < 300_000
    targets = {link.target for link in links(README.read_text("utf-8"))}
    assert STATUS_PAGE_IMAGE.relative_to(ROOT).as_posix() in targets


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Alerts and runbook", "alerts-and-runbook"),
        ("LDStoreTlsCertExpiringCritical", "ldstoretlscertexpiringcritical"),
        ("API versus store disagreement", "api-versus-store-disagreement"),
        ("On-demand debug probe", "on-demand-debug-probe"),
        ("`/probe`: one probe, step by step", "probe-one-probe-step-by-step"),
        ("Keys, prefixes & store_keys.py (v2)", "keys-prefixes--store_keyspy-v2"),
        ("See [Sharding](deployment.md#sharding)", "see-sharding"),
    ],
)
def test_heading_anchor_follows_github_slug_rules(heading: str, anchor: str) -> None:
    """Lowercase, punctuation other than - and _ dropped, each space a hyphen."""
    assert github_slug(heading) == anchor


def test_repeated_headings_get_numbered_anchors() -> None:
    """The second and third heading with the same text get -1 and -2, as on GitHub."""
    text = "# Check\n## Check\n```\n# not a heading\n```\n### Check\n"
    assert heading_anchors(text) == ["check", "check-1", "check-2"]


def test_broken_links_reports_missing_files_and_anchors(tmp_path: Path) -> None:
    """The checker flags a missing file, a missing anchor and an escape from the root."""
    (tmp_path / "other.md").write_text("# Present\n", "utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Here\n"
        "[ok](other.md#present) [self](#here) [web](https://example.com/x#y)\n"
        "`[in code](missing.md)`\n"
        "```\n[in a block](missing.md)\n```\n"
        "[gone](missing.md) [no anchor](other.md#absent)\n"
        "[wrapped\ntext](#nowhere) [out](../outside.md)\n",
        "utf-8",
    )
    problems = broken_links(page, tmp_path)
    assert problems == [
        "page.md:7: missing.md: no such file",
        "page.md:7: other.md#absent: no heading with anchor #absent",
        "page.md:8: #nowhere: no heading with anchor #nowhere",
        "page.md:9: ../outside.md: points outside the repository",
    ]

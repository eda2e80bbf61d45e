"""The README, docs/ and bench/ pages: relative links and anchors resolve, every page is reachable.

And nothing in the repository points at documents it does not contain.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.markdown import broken_links, github_slug, heading_anchors, links

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md")), *sorted((ROOT / "bench").glob("*.md"))]
STATUS_PAGE_IMAGE = DOCS / "images/status-page.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Design notes and style guides kept outside the repository, and the folder
# next to it they lived in: a reader of the repository cannot follow them.
OUTSIDE_DOCUMENTS = re.compile(r"\b(?:DESIGN|STYLE|ARCHITECTURE)\.md\b|\.\./shared\b")
SEARCHED = (
    "tests",
    "monitor",
    "devtools",
    "bench",
    "docs",
    "pyproject.toml",
    "README.md",
)


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


def _searched_files() -> list[Path]:
    files = []
    for name in SEARCHED:
        path = ROOT / name
        found = sorted(path.rglob("*")) if path.is_dir() else [path]
        files += [f for f in found if f.is_file() and "__pycache__" not in f.parts]
    return files


def test_nothing_refers_to_documents_outside_the_repository() -> None:
    """No design note or style guide kept elsewhere is cited: the reason is stated where it applies."""
    found = []
    for path in _searched_files():
        try:
            text = path.read_text("utf-8")
        except UnicodeDecodeError:
            continue  # images and other binary files
        found += [
            f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
            for m in OUTSIDE_DOCUMENTS.finditer(text)
        ]
    assert found == []


# Built, not written out, so that this file does not cite them itself.
OUTSIDE_EXAMPLES = [
    *(f"see {name}.md#layers" for name in ("DESIGN", "STYLE", "ARCHITECTURE")),
    "/".join(["..", "shared", "guide.md"]),
]


@pytest.mark.parametrize("text", OUTSIDE_EXAMPLES)
def test_outside_documents_are_recognised(text: str) -> None:
    """The pattern matches each outside document; a name merely like one does not."""
    assert OUTSIDE_DOCUMENTS.search(text)
    assert not OUTSIDE_DOCUMENTS.search(text.replace(".md", ".css").replace("..", "."))

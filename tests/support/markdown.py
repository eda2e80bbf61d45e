"""Markdown as GitHub renders it, as far as links and heading anchors go."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^\s)>]*)>?")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class Link:
    """One link or image in a markdown file: its target and 1-based line."""

    line: int
    target: str

    @property
    def is_relative(self) -> bool:
        """True for links into the repository (no scheme such as https:)."""
        return not _SCHEME.match(self.target)


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None:
            if (
                match
                and match.group(1)[0] == fence[0]
                and len(match.group(1)) >= len(fence)
            ):
                fence = None
        else:
            lines.append((number, line))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation but - and _ dropped, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def heading_anchors(text: str) -> list[str]:
    """Every heading's anchor in document order; repeats get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    anchors: list[str] = []
    for _, line in _prose_lines(text):
        match = _HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.append(slug if count == 0 else f"{slug}-{count}")
    return anchors


def headings(text: str) -> list[tuple[int, str]]:
    """Every heading as (level, text), outside code blocks."""
    found: list[tuple[int, str]] = []
    for _, line in _prose_lines(text):
        match = _HEADING.match(line)
        if match:
            found.append((len(match.group(1)), match.group(2)))
    return found


def links(text: str) -> list[Link]:
    """Inline links (their text may wrap lines), images and reference definitions outside code."""
    lines = ["" for _ in text.splitlines()]
    for number, line in _prose_lines(text):
        lines[number - 1] = _CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), line)
    prose = "\n".join(lines)
    found = [
        Link(prose.count("\n", 0, m.start()) + 1, m.group(2))
        for m in _INLINE_LINK.finditer(prose)
    ]
    for number, line in enumerate(lines, start=1):
        definition = _REFERENCE_DEFINITION.match(line)
        if definition:
            found.append(Link(number, definition.group(1)))
    return sorted(found, key=lambda link: link.line)


def broken_links(path: Path, root: Path) -> list[str]:
    """Relative links in `path` whose file, or whose #anchor in a .md file, does not exist."""
    problems: list[str] = []
    for link in links(path.read_text("utf-8")):
        if not link.is_relative:
            continue
        where = f"{path.relative_to(root)}:{link.line}: {link.target}"
        file_part, _, anchor = link.target.partition("#")
        target = (path.parent / file_part).resolve() if file_part else path
        if not target.is_relative_to(root.resolve()):
            problems.append(f"{where}: points outside the repository")
        elif not target.exists():
            problems.append(f"{where}: no such file")
        elif (
            anchor
            and target.suffix == ".md"
            and anchor not in heading_anchors(target.read_text("utf-8"))
        ):
            problems.append(f"{where}: no heading with anchor #{anchor}")
    return problems

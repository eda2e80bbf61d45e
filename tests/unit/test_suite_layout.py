"""The tests' own shape: the folder is the speed tier, helpers live in tests/support.

The tier of a test is the folder it sits in (tests/conftest.py marks it), so
no test module marks its own tier, and every test module sits in a tier's
folder. Test modules and conftest files are never imported: what two modules
share is a helper, and helpers live in tests/support. The benchmarks import
nothing of tests/ (what they share with the tests lives in devtools/).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tiers import TESTS, TIERS, tier_of

ROOT = TESTS.parent
BENCH = ROOT / "bench"
SUPPORT = "tests.support"


def python_files(folder: Path) -> list[Path]:
    """Every .py file under `folder`."""
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def modules_with_tests() -> list[Path]:
    """Every module pytest collects tests from (test_*.py)."""
    return [p for p in python_files(TESTS) if p.name.startswith("test_")]


def imported_modules(source: str) -> Iterator[str]:
    """Every module `source` imports; `from a import b` counts as `a` and `a.b`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def tier_marks(source: str) -> list[tuple[int, str]]:
    """(line, `mark.<tier>`) for each tier mark in `source`, however spelled."""
    marks = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Attribute) and node.attr in TIERS):
            continue
        owner = node.value
        name = owner.attr if isinstance(owner, ast.Attribute) else None
        name = owner.id if isinstance(owner, ast.Name) else name
        if name == "mark":
            marks.append((node.lineno, f"mark.{node.attr}"))
    return sorted(marks)


def wrong_imports(path: Path) -> set[str]:
    """The tests modules `path` imports though it may not: all for bench/, all but support for tests/."""
    allowed = () if path.is_relative_to(BENCH) else (SUPPORT,)
    return {
        name
        for name in imported_modules(path.read_text("utf-8"))
        if (name == "tests" or name.startswith("tests."))
        and not any(name == a or name.startswith(f"{a}.") for a in allowed)
    }


def test_every_test_module_sits_in_a_tier_folder() -> None:
    """tests/<tier>/.../test_*.py for one of the tiers; none in tests/ itself or support/."""
    misplaced = [
        str(p.relative_to(ROOT)) for p in modules_with_tests() if not tier_of(p)
    ]
    assert misplaced == []
    assert {tier_of(p) for p in modules_with_tests()} == set(TIERS)


def test_no_module_marks_its_own_tier() -> None:
    """The folder gives the tier: no `pytestmark = pytest.mark.integration`, no `@pytest.mark.e2e`."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {mark}"
        for path in python_files(TESTS)
        for line, mark in tier_marks(path.read_text("utf-8"))
    ]
    assert found == []


def test_tier_marks_are_found_however_spelled() -> None:
    """Module and decorator marks, through `pytest.mark` or `mark`; other marks ignored."""
    source = (
        "import pytest\n"
        "from pytest import mark\n"
        "pytestmark = pytest.mark.integration\n"
        "@mark.e2e\n"
        "@pytest.mark.timeout(5)\n"
        "def test_x() -> None: ...\n"
    )
    assert tier_marks(source) == [(3, "mark.integration"), (4, "mark.e2e")]


def test_every_collected_test_is_marked_with_its_folder(
    request: pytest.FixtureRequest,
) -> None:
    """The conftest hook gave each test of this run exactly the tier of its folder."""
    wrong = {}
    for item in request.session.items:
        tiers = sorted({m.name for m in item.iter_markers()} & set(TIERS))
        if tiers != [tier_of(item.path)]:
            wrong[item.nodeid] = tiers
    assert wrong == {}


def test_helpers_come_from_support_only() -> None:
    """No test module or conftest is imported; tests import from tests.support, bench/ nothing of tests."""
    found = {
        str(path.relative_to(ROOT)): sorted(wrong)
        for path in [*python_files(TESTS), *python_files(BENCH)]
        if (wrong := wrong_imports(path))
    }
    assert found == {}


def test_imports_are_read_in_every_form() -> None:
    """`import a.b`, `from a import b` and `from a.b import c` all count; relative imports do not."""
    source = (
        "import tests.unit.test_x\n"
        "from tests.faults import conftest\n"
        "from tests.support.polling import wait_until\n"
        "from . import sibling\n"
    )
    assert set(imported_modules(source)) == {
        "tests.unit.test_x",
        "tests.faults",
        "tests.faults.conftest",
        "tests.support.polling",
        "tests.support.polling.wait_until",
    }

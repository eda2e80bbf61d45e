"""The package's shape: layers that import one way only, and only the product in it.

The import graph is read from the source with `ast` (every `import` and
`from … import`, including those under `if TYPE_CHECKING:` and inside
functions), so a cycle hidden from the interpreter is still a cycle here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "monitor"

# Lowest first: a module may import its own layer and the layers before it.
# `monitor` itself (the version) and the leaf modules `log`, `sanitize` and
# `store_keys` are below every layer.
LAYERS = (
    "config",
    "launchdarkly",
    "targets",
    "probes",
    "service",
    "export",
    "web",
    "daemon",
    "cli",
)
FOUNDATION = frozenset(
    {"monitor", "monitor.log", "monitor.sanitize", "monitor.store_keys"}
)


def module_name(path: Path, root: Path) -> str:
    """`monitor/probes/redis/probe.py` -> `monitor.probes.redis.probe`."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str, modules: frozenset[str]) -> Iterator[str]:
    """Every package module that `path` (module `name`) imports, wherever it stands."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _known(alias.name, modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield from _known(f"{base}.{alias.name}", modules) or _known(
                    base, modules
                )


def _known(dotted: str, modules: frozenset[str]) -> list[str]:
    """The longest prefix of `dotted` that is a module of the package."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return [candidate]
    return []


def import_graph(package: Path) -> dict[str, set[str]]:
    """module -> the package modules it imports (self-imports left out)."""
    files = sorted(package.rglob("*.py"))
    names = {f: module_name(f, package.parent) for f in files}
    modules = frozenset(names.values())
    graph: dict[str, set[str]] = {}
    for path, name in names.items():
        graph[name] = set(imported_modules(path, name, modules)) - {name}
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            cycle = visit(target)
            if cycle is not None:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle is not None:
            return cycle
    return None


def layer_of(module: str) -> int:
    """The index of the module's layer in LAYERS; -1 for the foundation."""
    if module in FOUNDATION:
        return -1
    return LAYERS.index(module.split(".")[1])


def test_no_import_cycle_anywhere_in_the_package() -> None:
    """No module of `monitor` reaches itself through imports, TYPE_CHECKING ones included."""
    assert find_cycle(import_graph(PACKAGE)) is None


def test_the_cycle_finder_finds_a_cycle_through_type_checking(
    tmp_path: Path,
) -> None:
    """A cycle closed only under `if TYPE_CHECKING:` is reported, with its path."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg import a\nB = 1\n"
    )
    cycle = find_cycle(import_graph(package))
    assert cycle in (["pkg.a", "pkg.b", "pkg.a"], ["pkg.b", "pkg.a", "pkg.b"])


def test_every_module_belongs_to_a_layer_or_the_foundation() -> None:
    """Each module sits in one of the named layers, so the direction rule covers it."""
    for module in import_graph(PACKAGE):
        if module in FOUNDATION or module == "monitor.__main__":
            continue
        assert module.split(".")[1] in LAYERS, module


@pytest.mark.parametrize(
    "module", sorted(m for m in import_graph(PACKAGE) if m != "monitor.__main__")
)
def test_imports_point_down_the_layers(module: str) -> None:
    """config → launchdarkly → targets → probes → service → export → web → daemon → cli."""
    graph = import_graph(PACKAGE)
    upward = sorted(
        target
        for target in graph[module]
        if target != "monitor.__main__" and layer_of(target) > layer_of(module)
    )
    assert upward == [], f"{module} imports a higher layer"


def test_the_product_has_no_development_code() -> None:
    """No module of `monitor` imports the simulator, the demo, test servers or tests."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(("devtools", "tests", "bench")), (
                    f"{path.relative_to(ROOT)} imports {name}"
                )

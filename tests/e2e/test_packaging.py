"""What ships: the wheel built from the repository holds the product and nothing else.

The simulator, the demo, test servers and sample passwords live in
`devtools/`, which is not packaged; the wheel's declared runtime
dependencies are exactly the distributions the product imports.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]

# Top-level import name -> the distribution that provides it, for every
# third-party module the product may import. botocore and aiobotocore come
# with aioboto3, which is what the product depends on for them.
DISTRIBUTION_OF = {
    "aiohttp": "aiohttp",
    "aioboto3": "aioboto3",
    "aiobotocore": "aioboto3",
    "botocore": "aioboto3",
    "prometheus_client": "prometheus-client",
    "structlog": "structlog",
    "pydantic": "pydantic",
    "yaml": "pyyaml",
    "bcrypt": "bcrypt",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from the repository, as a release would."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("ld_store_monitor-*.whl")
    return built


def product_imports() -> set[str]:
    """Top-level names of every third-party module imported under `monitor/`."""
    stdlib = set(sys.stdlib_module_names)
    names: set[str] = set()
    for path in (ROOT / "monitor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return names - stdlib - {"monitor", "__future__"}


@pytest.mark.timeout(900)
def test_the_wheel_holds_only_the_product(wheel: Path) -> None:
    """Every file of monitor/ and nothing else: no simulator, demo, test or bench code."""
    with zipfile.ZipFile(wheel) as archive:
        files = archive.namelist()
    product = [f for f in files if not f.startswith("ld_store_monitor-")]
    assert product, "the wheel is empty"
    assert all(f.startswith("monitor/") for f in product), [
        f for f in product if not f.startswith("monitor/")
    ]
    forbidden = ("simulator", "ldsim", "demo", "devtools", "tests/", "bench/")
    assert [f for f in files if any(word in f for word in forbidden)] == []
    sources = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "monitor").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert sources - set(files) == set(), "modules or assets missing from the wheel"


@pytest.mark.timeout(900)
def test_the_wheel_carries_no_sample_passwords(wheel: Path) -> None:
    """No file of the wheel contains the demo's or the test servers' fixed passwords."""
    samples = [
        b"not-the-password",  # the demo's wrong password
        b"correct-horse-battery-staple",  # the demo scenario's store passwords
        b"staging-secret-2024",
        b"mobile-redis-pass-77",
        b"admin-secret",  # devtools.servers.redis_server's admin user
    ]
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            body = archive.read(name)
            assert not [s for s in samples if s in body], name


@pytest.mark.timeout(900)
def test_runtime_dependencies_are_what_the_product_imports(wheel: Path) -> None:
    """Requires-Dist (without extras) names exactly the distributions `monitor/` imports."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata_name,) = [
            n for n in archive.namelist() if n.endswith(".dist-info/METADATA")
        ]
        metadata = Parser().parsestr(archive.read(metadata_name).decode("utf-8"))
    declared = {
        canonicalize_name(r.name)
        for r in map(Requirement, metadata.get_all("Requires-Dist") or [])
        if r.marker is None
    }
    imported = product_imports()
    unknown = imported - DISTRIBUTION_OF.keys()
    assert unknown == set(), f"add these to DISTRIBUTION_OF: {unknown}"
    assert declared == {DISTRIBUTION_OF[name] for name in imported}

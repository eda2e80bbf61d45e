"""The Node SDK the cross-check asks is pinned: exact versions, and a lock that agrees."""

from __future__ import annotations

import json
import re

from tests.support.node import PINNED


def test_the_node_sdk_packages_are_pinned_exactly() -> None:
    """package.json names exact versions, and the lock file resolves them to those."""
    manifest = json.loads((PINNED / "package.json").read_text("utf-8"))
    lock = json.loads((PINNED / "package-lock.json").read_text("utf-8"))
    wanted = manifest["dependencies"]
    assert set(wanted) == {
        "@launchdarkly/node-server-sdk",
        "@launchdarkly/node-server-sdk-redis",
    }
    for name, version in wanted.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (name, version)
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert lock["packages"][""]["dependencies"] == wanted
    # Every package of the closure is fixed by its hash, whatever registry serves it.
    closure = {k: v for k, v in lock["packages"].items() if k}
    assert closure
    assert all("integrity" in entry for entry in closure.values())

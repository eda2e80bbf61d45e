"""Sharding: a stable split of integration ids over N replicas, no coordination."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.launchdarkly.sharding import Shard


@pytest.mark.parametrize("spec", ["0/1", "2/3", " 4/5 "])
def test_valid_specs_parse(spec: str) -> None:
    """I/N with 0 <= I < N parses."""
    shard = Shard.parse(spec)
    assert str(shard) == spec.strip()


@pytest.mark.parametrize("spec", ["3/3", "1/0", "-1/2", "a/b", "1", "1/2/3"])
def test_invalid_specs_are_refused(spec: str) -> None:
    """Out of range or malformed specs raise a readable ValueError."""
    with pytest.raises(ValueError, match="invalid shard"):
        Shard.parse(spec)


def test_every_id_belongs_to_exactly_one_shard_and_the_split_is_even() -> None:
    """Across N shards each id is owned once, and shards get similar shares."""
    ids = [f"{i:024x}" for i in range(3000)]
    shards = [Shard(i, 3) for i in range(3)]
    owners = [[s for s in shards if s.owns(i)] for i in ids]
    assert all(len(o) == 1 for o in owners)
    sizes = [sum(1 for o in owners if o[0] is s) for s in shards]
    assert min(sizes) > 900


def test_assignment_is_stable() -> None:
    """The same id always lands in the same shard (SHA-256, not Python's hash())."""
    assert [Shard(i, 4).owns("65a1c2d3e4f5061728394a01") for i in range(4)] == [
        Shard(i, 4).owns("65a1c2d3e4f5061728394a01") for i in range(4)
    ]
    assert Shard(0, 1).owns("anything")


@pytest.mark.parametrize("command", ["run", "check"])
def test_cli_refuses_a_bad_shard_with_exit_2(command: str, tmp_path: Path) -> None:
    """`--shard 3/2` is a usage error: exit 2 and a message, before anything starts."""
    config = tmp_path / "c.yaml"
    config.write_text(
        "api: {enabled: false}\ntargets: [{kind: redis, name: r, url: 'redis://127.0.0.1:1'}]\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            command,
            "--config",
            str(config),
            "--shard",
            "3/2",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--shard: invalid shard '3/2'" in result.stderr

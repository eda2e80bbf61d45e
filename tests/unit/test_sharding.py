"""Sharding: a stable split of integration ids over N replicas, no coordination."""

from __future__ import annotations

import pytest

from monitor.sharding import Shard


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

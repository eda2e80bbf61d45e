"""Sharding: a stable split of integration ids over N replicas, no coordination."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import structlog
import structlog.testing

from monitor.config import Config, parse_config
from monitor.export.metrics import render_metrics
from monitor.launchdarkly.sharding import Shard
from monitor.service.monitor import Monitor


@pytest.mark.parametrize("spec", ["0/1", "2/3", " 4/5 "])
def test_valid_specs_parse(spec: str) -> None:
    """I/N with 0 <= I < N parses."""
    shard = Shard.parse(spec)
    assert str(shard) == spec.strip()


@pytest.mark.parametrize("spec", ["1/0", "-1/2", "a/b", "1", "1/2/3"])
def test_invalid_specs_are_refused(spec: str) -> None:
    """Malformed specs, or no shards at all, raise a readable ValueError."""
    with pytest.raises(ValueError, match="invalid shard"):
        Shard.parse(spec)


@pytest.mark.parametrize("spec", ["3/3", "7/2"])
def test_an_ordinal_out_of_range_parses_and_owns_nothing(spec: str) -> None:
    """A StatefulSet scaled past its shard total: the pod runs, watching nothing."""
    shard = Shard.parse(spec)
    assert not shard.in_range
    assert not any(shard.owns(f"id-{i}") for i in range(500))
    assert Shard.parse("2/3").in_range


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
    """`--shard 1/0` is a usage error: exit 2 and a message, before anything starts."""
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
            "1/0",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--shard: invalid shard '1/0'" in result.stderr


def _static_config(count: int) -> Config:
    return parse_config(
        {
            "api": {"enabled": False},
            "targets": [
                {"kind": "redis", "name": f"static-{i}", "url": "redis://127.0.0.1:1"}
                for i in range(count)
            ],
        },
        env={},
    )


def test_static_targets_are_owned_by_exactly_one_shard() -> None:
    """Static targets are split by the hash of their name, like integrations."""
    config = _static_config(60)
    owners: dict[str, list[int]] = {}
    for index in range(3):
        monitor = Monitor(config, structlog.get_logger("test"), shard=Shard(index, 3))
        for target in monitor.resolve():
            owners.setdefault(target.id, []).append(index)
    assert sorted(owners) == sorted(f"static-{i}" for i in range(60))
    assert all(len(shards) == 1 for shards in owners.values())
    assert {s for shards in owners.values() for s in shards} == {0, 1, 2}
    # Unsharded, one process watches them all.
    assert len(Monitor(config, structlog.get_logger("test")).resolve()) == 60


@pytest.mark.parametrize(
    ("shard", "ordinal", "shards"),
    [(None, 0, 1), (Shard(1, 3), 1, 3), (Shard(3, 3), 3, 3)],
)
def test_the_shard_is_exported(shard: Shard | None, ordinal: int, shards: int) -> None:
    """ld_store_shard_ordinal{shard_ordinal} and ld_store_shards, out of range too."""
    monitor = Monitor(_static_config(3), structlog.get_logger("test"), shard=shard)
    text = render_metrics(monitor.state).decode()
    assert f'ld_store_shard_ordinal{{shard_ordinal="{ordinal}"}} {ordinal}.0\n' in text
    assert f"ld_store_shards {shards}.0\n" in text


def test_an_out_of_range_shard_starts_and_logs_it() -> None:
    """No crash loop: the monitor is built, owns nothing and logs shard.out_of_range."""
    with structlog.testing.capture_logs() as logs:
        monitor = Monitor(
            _static_config(10), structlog.get_logger("test"), shard=Shard(3, 3)
        )
    assert monitor.resolve() == ()
    (event,) = [e for e in logs if e["event"] == "shard.out_of_range"]
    assert event["shard"] == "3/3"
    assert event["log_level"] == "warning"

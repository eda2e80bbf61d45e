"""Onboarding's rules without servers: certificate thresholds, the request body,
masking, option checks, and the simulator's scoped faults and first-sync switch."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from pydantic import SecretStr

from devtools.ldsim import Simulator
from devtools.ldsim.faults import Faults
from devtools.ldsim.firstsync import is_loopback
from monitor.cli import _parser
from monitor.cli.create import MASK, masked, request_body
from monitor.cli.preflight import (
    BadInputError,
    Finding,
    Preflight,
    StoreSpec,
    _certificate,
    render_table,
    store_from_args,
)
from monitor.config import Config
from monitor.probes.result import ProbeResult
from monitor.targets import DynamoDBEndpoint, RedisEndpoint

NOW = 1_800_000_000.0
DAY = 86_400.0


def result_with_cert(days_left: float) -> ProbeResult:
    """A successful probe whose certificate has `days_left` days."""
    return ProbeResult(
        finished_at=NOW,
        duration=0.01,
        up=True,
        read_ok=True,
        schema_ok=True,
        synchronized_on_ms=None,
        tls_not_after=NOW + days_left * DAY,
    )


@pytest.mark.parametrize(
    ("days", "level"),
    [(-1, "blocker"), (3, "blocker"), (14, "blocker"), (20, "warning"), (90, "ok")],
)
def test_certificate_expiry_levels(days: float, level: str) -> None:
    """Within two weeks a blocker, within 30 days a warning, later fine."""
    found = _certificate(result_with_cert(days), NOW)
    assert found is not None
    assert found.level == level
    assert found.action


def test_redis_body_has_the_manifest_keys_and_masks_the_password() -> None:
    """`port` a string, `tlsEnabled` a boolean; masked() hides only the password."""
    store = StoreSpec(
        "redis",
        RedisEndpoint(
            host="redis.internal",
            port=6380,
            username="ldwriter",
            password=SecretStr("hunter2hunter2"),
        ),
    )
    body = request_body(store, "Store", ["a"], on=True)
    assert body == {
        "name": "Store",
        "config": {
            "host": "redis.internal",
            "port": "6380",
            "username": "ldwriter",
            "password": "hunter2hunter2",
            "tlsEnabled": False,
        },
        "on": True,
        "tags": ["a"],
    }
    shown = masked(body)
    assert shown["config"]["password"] == MASK
    assert shown["config"]["host"] == "redis.internal"
    assert body["config"]["password"] == "hunter2hunter2"  # not mutated


def test_dynamodb_body_has_the_manifest_keys() -> None:
    """tableName, region, roleArn, externalId; the endpoint URL is not sent."""
    store = StoreSpec(
        "dynamodb",
        DynamoDBEndpoint(
            table="t",
            region="eu-west-1",
            endpoint_url="http://localhost:1",
            role_arn="arn:aws:iam::1:role/r",
            external_id="x",
        ),
    )
    assert request_body(store, "n", [], on=False)["config"] == {
        "tableName": "t",
        "region": "eu-west-1",
        "roleArn": "arn:aws:iam::1:role/r",
        "externalId": "x",
    }


def parse(*argv: str) -> argparse.Namespace:
    """Parsed `preflight` options with a dummy config."""
    return _parser().parse_args(
        [
            "preflight",
            *("--config", "x.yaml", "--project", "p", "--environment", "e"),
            *argv,
        ]
    )


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--kind", "redis", "--host", "h"], "needs --host and --port"),
        (["--kind", "redis", "--host", "h", "--port", "0"], "not a TCP port"),
        (["--kind", "redis", "--host", "h", "--port", "1", "--table", "t"], "--table"),
        (["--kind", "redis", "--host", "h", "--port", "1", "--ca-file", "f"], "--tls"),
        (["--kind", "dynamodb", "--table", "t"], "--table and --region"),
        (["--kind", "dynamodb", "--table", "t", "--region", "r", "--tls"], "--tls"),
        (
            [
                "--kind",
                "dynamodb",
                "--table",
                "t",
                "--region",
                "r",
                "--external-id",
                "x",
            ],
            "--role-arn",
        ),
    ],
)
def test_options_that_cannot_describe_a_store(argv: list[str], problem: str) -> None:
    """Each wrong combination is bad input naming the option."""
    with pytest.raises(BadInputError, match=problem.replace("-", r"\-")):
        store_from_args(parse(*argv), Config())


def test_password_file_is_read_without_its_newline(tmp_path: Path) -> None:
    """A trailing newline is not part of the password."""
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    store = store_from_args(
        parse(
            "--kind",
            "redis",
            "--host",
            "h",
            "--port",
            "1",
            "--password-file",
            str(secret),
        ),
        Config(),
    )
    assert store.secrets == ("s3cret",)


def test_the_table_lists_what_to_do_for_each_problem() -> None:
    """Blockers and warnings appear under `what to do`, with the verdict."""
    check = Preflight(
        "p", "e", StoreSpec("redis", RedisEndpoint(host="h", port=1)), prefix="abc"
    )
    check.findings = [
        Finding("reachable", "ok", "h:1 answered"),
        Finding("eviction", "blocker", "allkeys-lru", "set noeviction"),
        Finding("persistence", "warning", "off", "enable AOF"),
    ]
    text = render_table(check)
    assert "eviction (blocker): set noeviction" in text
    assert "persistence (warning): enable AOF" in text
    assert "NOT ready: 1 blocker(s), 1 warning(s)" in text


def test_fail_next_can_target_one_endpoint() -> None:
    """A failure for create_integration leaves other endpoints' requests alone."""
    faults = Faults()
    faults.fail_next(429, endpoint="create_integration")
    assert faults.take_failure("get_environment") is None
    failure = faults.take_failure("create_integration")
    assert failure is not None
    assert failure.status == 429
    assert faults.take_failure("create_integration") is None
    faults.configure({"fail_next": {"status": 400, "endpoint": "create_integration"}})
    assert faults.take_failure("list_integrations") is None
    with pytest.raises(ValueError, match="endpoint"):
        faults.configure({"fail_next": {"status": 400, "endpoint": 3}})


def test_first_sync_switch() -> None:
    """Off by default; the control body is checked before anything is applied."""
    sim = Simulator()
    assert sim.first_sync.snapshot()["enabled"] is False
    sim.first_sync.configure({"enabled": True, "delay": 0.5})
    assert sim.first_sync.snapshot()["delay"] == 0.5
    for bad in ({"delay": -1}, {"enabled": "yes"}, {"nope": 1}):
        with pytest.raises(ValueError, match=r"delay|enabled|unknown"):
            sim.first_sync.configure(bad)
    assert sim.first_sync.enabled is True


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("10.0.0.1", False)],
)
def test_first_sync_writes_only_to_loopback(host: str, loopback: bool) -> None:
    """The simulator never writes to a store that is not local."""
    assert is_loopback(host) is loopback

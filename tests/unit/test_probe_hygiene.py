"""What the runner keeps and logs: bounded per-target caches, the monitor's
own fd exhaustion apart from store failures, crashes without secrets."""

from __future__ import annotations

import asyncio
import errno
import io
import json
from typing import Any

import pytest
import structlog
from botocore.exceptions import EndpointConnectionError
from structlog.testing import capture_logs

from monitor.config import ProbeConfig
from monitor.log import FRAGMENT, Redactor, configure_logging
from monitor.probes.dynamodb.failures import classify as classify_dynamodb
from monitor.probes.dynamodb.probe import DynamoDBProbe
from monitor.probes.failures import MonitorResourceError
from monitor.probes.redis.probe import RedisProbe, _Health
from monitor.probes.result import ProbeResult, Recorder
from monitor.probes.runner import ProbeRunner, TargetRecord
from monitor.targets import RedisEndpoint, Target
from tests.support.targets import static_target

SETTINGS = ProbeConfig(interval=10, timeout=2)
PASSWORD = "LongRedisPassword-0123456789abcdef0123456789abcdef0123456789abcdef"


def _targets(prefix: str, count: int) -> list[Target]:
    redis = RedisEndpoint(host="127.0.0.1", port=1)
    return [static_target(redis, f"{prefix}{i}") for i in range(count)]


def test_per_target_caches_stay_bounded_over_rounds_of_new_ids() -> None:
    """5 rounds of 2,000 new ids: each cache holds one round's ids, never all 10,000."""
    log = structlog.get_logger("test")
    redis = RedisProbe(log)
    dynamodb = DynamoDBProbe(log, SETTINGS)
    runner = ProbeRunner({"redis": redis, "dynamodb": dynamodb}, SETTINGS, log)
    for round_no in range(5):
        targets = _targets(f"r{round_no}-", 2000)
        for target in targets:
            redis._health.put(target.id, _Health(None, None))
            redis._once(target.id, "info", "redis.info_denied")
            dynamodb._memberships.put(target.id, True)
            dynamodb._query_denied.add(target.id)
            runner.records[target.id] = TargetRecord()
        runner.forget_missing(targets)
        assert len(redis._health) == 2000
        assert len(redis._warned) == 2000
        assert len(dynamodb._memberships) == 2000
        assert len(dynamodb._query_denied) == 2000
        assert len(runner.records) == 2000
    runner.forget_missing([])
    assert len(redis._health) == len(redis._warned) == 0
    assert len(dynamodb._memberships) == len(dynamodb._query_denied) == 0


def _ok() -> ProbeResult:
    return ProbeResult(
        finished_at=1.0,
        duration=0.0,
        up=True,
        read_ok=True,
        schema_ok=True,
        synchronized_on_ms=1,
        membership_read_ok=True,
    )


async def test_the_monitors_fd_exhaustion_is_not_the_stores_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EMFILE on connect: the store keeps its verdict, no failure is counted,
    one `probe.fd_exhausted` line for the round."""

    async def no_fd(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(asyncio, "open_connection", no_fd)
    log = structlog.get_logger("test")
    runner = ProbeRunner({"redis": RedisProbe(log)}, SETTINGS, log)
    targets = _targets("t", 3)
    before = _ok()
    runner.records["t0"] = TargetRecord(result=before)
    with capture_logs() as logs:
        summary = await runner.run_round(targets)
    assert runner.records["t0"].result is before
    assert not runner.records["t0"].failures
    assert runner.records["t0"].consecutive_failures == 0
    assert "t1" not in runner.records  # no verdict at all yet
    assert runner.load.fd_exhausted == 3
    assert summary.hosts_down == 0
    events = [e["event"] for e in logs]
    assert events.count("probe.fd_exhausted") == 1
    assert "probe.failed" not in events
    assert "probe.host_down" not in events
    # A one-off probe (/probe) says so in its result.
    result = await runner.probe(targets[0])
    assert result.monitor_fault
    assert result.error is not None
    assert "out of file descriptors" in result.error


def test_emfile_under_botocore_is_the_monitors_too() -> None:
    """The DynamoDB classifier raises MonitorResourceError for a wrapped ENFILE."""
    err = EndpointConnectionError(
        endpoint_url="http://x", error=OSError(errno.ENFILE, "Too many open files")
    )
    with pytest.raises(MonitorResourceError):
        classify_dynamodb(err)


class _CrashingProbe:
    """A probe with a bug, holding the password in a local when it fails."""

    def reconfigure(self, settings: ProbeConfig) -> None:
        """Nothing."""

    def prune(self, present: object) -> None:
        """Nothing."""

    async def close(self) -> None:
        """Nothing."""

    async def run(self, target: Target, recorder: Recorder) -> ProbeResult:
        """Fail with the password in a local variable and in the message."""
        handshake = [("AUTH", "ldmon", PASSWORD)]
        raise KeyError(repr(handshake)[:70])


@pytest.mark.parametrize("level", ["info", "debug"])
async def test_a_crashing_probe_logs_no_piece_of_the_password(level: str) -> None:
    """`probe.crashed`: the type and a redacted message; never locals, never a piece."""
    stream = io.StringIO()
    configure_logging(Redactor([PASSWORD]), fmt="json", level=level, stream=stream)
    try:
        log: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger("monitor")
        runner = ProbeRunner({"redis": _CrashingProbe()}, SETTINGS, log)
        for _ in range(3):
            await runner.run_round(_targets("c", 2))
            runner.make_all_due()
    finally:
        structlog.reset_defaults()
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    crashed = [line for line in lines if line["event"] == "probe.crashed"]
    assert crashed
    assert all("KeyError" in str(line["exception"]) for line in crashed)
    assert "handshake" not in text
    for i in range(len(PASSWORD) - FRAGMENT + 1):
        assert PASSWORD[i : i + FRAGMENT] not in text

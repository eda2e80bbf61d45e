"""Store faults: a TCP fault proxy in front of one real store among healthy ones.

The stores: redis-server without and with a password, and DynamoDB served
by moto over HTTP. For every fault mode (delay past the timeout, blackhole,
reset, a reply cut short, accept-then-hang) the faulted target must fail
with a known reason and nothing else must change: the healthy targets (same
server, reached directly) keep their values, the round ends near the probe
timeout, the failing target backs off on the documented schedule (a fault
of the host itself, HOST_LEVEL_REASONS, backs off not at all: the host's
gate already limits it to one probe a round), and it comes back in one
round once the fault is gone. Repeated faulty rounds must
not leak file descriptors or tasks (that check runs the proxy in a child
process, so that only the monitor's own descriptors and tasks are counted).

The runner's `monotonic` clock is injected: rounds are scheduled by moving
that clock, never by waiting, while probes and their timeouts run in real time.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest
import structlog
from pydantic import SecretStr

from devtools.servers.fault_proxy import FaultProxy
from devtools.servers.moto_server import (
    MotoServer,
    create_bigsegment_table,
    put_metadata,
)
from devtools.servers.redis_server import RedisServer
from monitor.config import ProbeConfig
from monitor.probes.dynamodb.probe import DynamoDBProbe
from monitor.probes.redis.probe import RedisProbe
from monitor.probes.result import HOST_LEVEL_REASONS, Probe, Reason
from monitor.probes.runner import ProbeRunner, RoundSummary
from monitor.targets import DynamoDBEndpoint, RedisEndpoint, Target
from tests.support.clock import FakeClock, now_ms
from tests.support.plugin import REDIS_PASSWORD, MakeFaultProxy, MakeProxyProcess
from tests.support.scrape import Scrape
from tests.support.state import state_of
from tests.support.targets import static_target

INTERVAL = 10.0  # only ever "elapses" on the injected clock
TIMEOUT = 0.25
ROUND_MARGIN = 1.0  # loose: a loaded CI machine, never a second timeout
HEALTHY = 4
FAULTY = "faulty"
SYNC_KEY = "{prefix}:big_segments_synchronized_on"
# botocore gets timeout/2 per attempt and one retry after a random backoff of
# up to 1 s, and a probe after a failure makes two calls (DescribeTable is
# then not cached): 2.5 s leaves room for both backoffs, so that immediate
# failures (reset, cut reply) keep their own reason. See
# test_dynamodb_connection_failure_keeps_its_reason_under_a_short_timeout
# for what happens below that.
DYNAMODB_TIMEOUT = 2.5
TABLE = "ld-big-segments"
REGION = "us-east-1"
# close_after in front of moto: 64 bytes is inside any HTTP reply's status
# line and headers, so no reply ever arrives whole.
HTTP_CUT = 64

# Reply bytes on the wire (RESP2): AUTH's `+OK\r\n`, then TYPE's `+string\r\n`
# before GET's `$13\r\n<13 digits>\r\n`.
AUTH_REPLY = len(b"+OK\r\n")
TYPE_REPLY = len(b"+string\r\n")
# close_after cuts 3 bytes into GET's reply: TYPE has answered, GET has not.
INTO_GET_REPLY = TYPE_REPLY + 3

# (backoff after the k-th failure in a row, rounds skipped before it) for
# k = 1..4: the target waits interval * 2^(k-1) in all, capped at 4 intervals,
# so the extra backoff is 0, 1, 3 and (capped) 3 intervals; a round one
# interval later finds it due after 0, 0, 1 and 3 skipped rounds.
SCHEDULE = ((0.0, 0), (INTERVAL, 0), (3 * INTERVAL, 1), (3 * INTERVAL, 3))
# DynamoDB's timeout faults cost 2.5 s a probe: its matrix stops after the
# first backoff step (the schedule is the runner's, tested in full on Redis).
SHORT_SCHEDULE = SCHEDULE[:2]


@dataclass(frozen=True)
class StoreFault:
    """A proxy fault and what the probe must make of it."""

    name: str
    apply: Callable[[FaultProxy], None]
    reason: Reason
    up: float


def redis_faults(cut: int) -> tuple[StoreFault, ...]:
    """Proxy faults in front of redis-server; `close_after` cuts after `cut` bytes."""
    return (
        # The proxy holds every chunk 4x the probe timeout: the first reply the
        # probe waits for (AUTH's, or on a server without a password TYPE's, as
        # redis-py sends nothing before the read) misses the runner's deadline.
        # ProbeRunner.probe's TimeoutError branch gives TIMEOUT (phase auth or
        # read, not tls) and up = recorder.authenticated = False.
        StoreFault("delay", lambda p: p.delay(4 * TIMEOUT), Reason.TIMEOUT, 0.0),
        # Accepted and read, never answered: the same path as delay.
        StoreFault("blackhole", lambda p: p.blackhole(), Reason.TIMEOUT, 0.0),
        # RST before any reply: a ConnectionResetError / redis ConnectionError
        # with `replied` still False. classify() calls "closed before replying"
        # TLS_HANDSHAKE on purpose: that is what a plain client talking to a
        # TLS port sees, and the probe cannot tell the two apart.
        StoreFault("reset", lambda p: p.reset(), Reason.TLS_HANDSHAKE, 0.0),
        # FIN 3 bytes into GET's reply, after TYPE's reply arrived: `replied` is
        # True, so classify() gives OTHER ("closed mid-conversation"), and up = 1
        # because the store did answer as the monitor's user.
        StoreFault("close_after", lambda p: p.close_after(cut), Reason.OTHER, 1.0),
        # Accepted, never read, never answered: the same path as delay.
        StoreFault("accept_hang", lambda p: p.accept_hang(), Reason.TIMEOUT, 0.0),
    )


def dynamodb_faults() -> tuple[StoreFault, ...]:
    """Proxy faults in front of moto, DynamoDB's JSON over HTTP."""
    return (
        # botocore reads with timeout/2 per attempt and retries once: either its
        # ReadTimeoutError (probes.dynamodb.failures.classify: TIMEOUT) or, when the retry's
        # backoff pushes the second attempt past the runner's deadline, the
        # runner's TimeoutError (phase read): TIMEOUT both ways. Nothing was
        # answered, so up (an accepted signature) stays 0.
        StoreFault(
            "delay", lambda p: p.delay(4 * DYNAMODB_TIMEOUT), Reason.TIMEOUT, 0.0
        ),
        StoreFault("blackhole", lambda p: p.blackhole(), Reason.TIMEOUT, 0.0),
        # RST: aiohttp's ClientOSError / ServerDisconnectedError become
        # botocore's EndpointConnectionError / ConnectionClosedError, retried
        # once, then classify() finds no refusal, DNS or TLS error inside: OTHER.
        StoreFault("reset", lambda p: p.reset(), Reason.OTHER, 0.0),
        # The reply cut inside its status line and headers: aiohttp's
        # ServerDisconnectedError / ClientPayloadError become botocore's
        # ConnectionClosedError: OTHER, and no reply means no accepted signature.
        StoreFault("close_after", lambda p: p.close_after(HTTP_CUT), Reason.OTHER, 0.0),
        StoreFault("accept_hang", lambda p: p.accept_hang(), Reason.TIMEOUT, 0.0),
    )


FAULT_NAMES = [f.name for f in redis_faults(0)]


def seed_redis(server: RedisServer, prefixes: list[str], synced_ms: int) -> None:
    """Write a synchronizedOn under every prefix."""
    with server.admin() as client:
        for prefix in prefixes:
            client.set(SYNC_KEY.format(prefix=prefix), str(synced_ms))


def redis_target(
    name: str, host: str, port: int, password: SecretStr | None = None
) -> Target:
    """A static-like Redis target whose key prefix is its name."""
    return static_target(RedisEndpoint(host=host, port=port, password=password), name)


def dynamodb_target(name: str, endpoint_url: str) -> Target:
    """A static-like DynamoDB target on TABLE whose key prefix is its name."""
    endpoint = DynamoDBEndpoint(table=TABLE, region=REGION, endpoint_url=endpoint_url)
    return static_target(endpoint, name)


@dataclass
class Bed:
    """Healthy targets and one faulty target behind a proxy, and a runner over them."""

    runner: ProbeRunner
    clock: FakeClock
    healthy: tuple[Target, ...]
    targets: tuple[Target, ...]
    timeout: float

    @classmethod
    def make(
        cls,
        probes: Mapping[str, Probe],
        healthy: list[Target],
        faulty: Target,
        timeout: float,
    ) -> Bed:
        """The faulty target among the healthy ones; rounds scheduled by a fake clock."""
        clock = FakeClock()
        runner = ProbeRunner(
            probes,
            ProbeConfig(interval=INTERVAL, timeout=timeout),
            structlog.get_logger("test"),
            monotonic=clock,
        )
        targets = (*healthy[:2], faulty, *healthy[2:])
        return cls(runner, clock, tuple(healthy), targets, timeout)

    def scrape(self) -> Scrape:
        """What /metrics would show now."""
        return Scrape.of(state_of(self.runner, self.targets))

    async def round(self, advance: float = INTERVAL) -> tuple[RoundSummary, float]:
        """Move the clock, run a round; its summary and its wall-clock duration."""
        self.clock.advance(advance)
        started = time.monotonic()
        summary = await self.runner.run_round(self.targets)
        return summary, time.monotonic() - started


def steady_values(scrape: Scrape, target_id: str) -> dict[str, float | None]:
    """The values of a target that must not move while another target fails."""
    names = (
        "ld_store_probe_up",
        "ld_store_available",
        "ld_store_stale",
        "ld_store_probe_schema_ok",
        "ld_store_synchronized_on_timestamp_seconds",
        "ld_store_probe_consecutive_failures",
        "ld_store_probe_backoff_seconds",
    )
    values = {n: scrape.value(n, integration_id=target_id) for n in names}
    failures = scrape.find("ld_store_probe_failures_total", integration_id=target_id)
    values["failures"] = sum(s.value for s in failures)
    return values


async def fails_alone_backs_off_and_recovers(
    bed: Bed,
    proxy: FaultProxy,
    fault: StoreFault,
    synced_ms: int,
    schedule: tuple[tuple[float, int], ...] = SCHEDULE,
) -> None:
    """The matrix for one store and one fault (see the module docstring)."""
    if fault.reason in HOST_LEVEL_REASONS:
        schedule = tuple((0.0, 0) for _ in schedule)  # probed every round
    healthy_count = len(bed.healthy)
    summary, _ = await bed.round(advance=0.0)
    assert summary.failed == 0, summary.reasons
    before = bed.scrape()
    assert before.value("ld_store_available", integration_id=FAULTY) == 1
    expected_healthy = {t.id: steady_values(before, t.id) for t in bed.healthy}
    assert all(v["ld_store_probe_up"] == 1 for v in expected_healthy.values())

    fault.apply(proxy)
    for failures, (backoff, skips) in enumerate(schedule, start=1):
        for _ in range(skips):
            summary, _ = await bed.round()
            assert (summary.probed, summary.skipped) == (healthy_count, 1)
        summary, elapsed = await bed.round()
        assert summary.probed == healthy_count + 1
        assert summary.reasons == {str(fault.reason): 1}
        assert elapsed < bed.timeout + ROUND_MARGIN
        scrape = bed.scrape()
        got = {
            name: scrape.value(name, integration_id=FAULTY)
            for name in (
                "ld_store_probe_up",
                "ld_store_available",
                "ld_store_stale",
                "ld_store_probe_consecutive_failures",
                "ld_store_probe_backoff_seconds",
            )
        }
        assert got == {
            "ld_store_probe_up": fault.up,
            "ld_store_available": 0.0,
            "ld_store_stale": 0.0,
            "ld_store_probe_consecutive_failures": failures,
            "ld_store_probe_backoff_seconds": backoff,
        }
        assert scrape.value(
            "ld_store_probe_failures_total",
            integration_id=FAULTY,
            reason=str(fault.reason),
        ) == float(failures)
        assert {t.id: steady_values(scrape, t.id) for t in bed.healthy} == (
            expected_healthy
        )

    proxy.pass_through()
    if schedule[-1][0]:
        summary, _ = await bed.round()
        assert summary.skipped == 1  # still backing off
        bed.clock.now = bed.runner.records[FAULTY].next_due
        summary, _ = await bed.round(advance=0.0)
    else:
        summary, _ = await bed.round()  # the next round finds the host back
    assert (summary.probed, summary.failed) == (healthy_count + 1, 0)
    after = bed.scrape()
    assert steady_values(after, FAULTY) == {
        "ld_store_probe_up": 1.0,
        "ld_store_available": 1.0,
        "ld_store_stale": 0.0,
        "ld_store_probe_schema_ok": 1.0,
        "ld_store_synchronized_on_timestamp_seconds": synced_ms / 1000,
        "ld_store_probe_consecutive_failures": 0.0,
        "ld_store_probe_backoff_seconds": 0.0,
        "failures": float(len(schedule)),  # counters keep the failures seen
    }
    first, last = (
        scrape.value(
            "ld_store_probe_last_success_timestamp_seconds", integration_id=FAULTY
        )
        for scrape in (before, after)
    )
    assert first is not None
    assert last is not None
    assert last > first


@pytest.mark.parametrize("fault_name", FAULT_NAMES)
@pytest.mark.parametrize("auth", ["plain", "password"])
async def test_faulted_redis_fails_alone_backs_off_and_recovers(
    auth: str,
    fault_name: str,
    request: pytest.FixtureRequest,
    fault_proxy: MakeFaultProxy,
) -> None:
    """Redis behind a faulty proxy fails with its reason, backs off 0/1/3/3 intervals (a host-level fault: none), spares the others, recovers in one round."""
    server: RedisServer = request.getfixturevalue(f"redis_{auth}")
    password = SecretStr(REDIS_PASSWORD) if auth == "password" else None
    cut = (AUTH_REPLY if password else 0) + INTO_GET_REPLY
    (fault,) = [f for f in redis_faults(cut) if f.name == fault_name]
    proxy = await fault_proxy(server.host, server.client_port)
    healthy = [
        redis_target(f"h{i}", server.host, server.client_port, password)
        for i in range(HEALTHY)
    ]
    faulty = redis_target(FAULTY, proxy.host, proxy.port, password)
    synced = now_ms() - 5_000
    seed_redis(server, [t.prefix for t in (*healthy, faulty)], synced)
    log = structlog.get_logger("test")
    bed = Bed.make({"redis": RedisProbe(log)}, healthy, faulty, TIMEOUT)
    await fails_alone_backs_off_and_recovers(bed, proxy, fault, synced)


@pytest.mark.parametrize("fault_name", FAULT_NAMES)
async def test_faulted_dynamodb_fails_alone_backs_off_and_recovers(
    fault_name: str,
    clean_moto: MotoServer,
    aws_env: None,
    fault_proxy: MakeFaultProxy,
) -> None:
    """DynamoDB (moto over HTTP) behind a faulty proxy: the same matrix as Redis."""
    (fault,) = [f for f in dynamodb_faults() if f.name == fault_name]
    create_bigsegment_table(clean_moto.endpoint_url, TABLE)
    proxy = await fault_proxy(clean_moto.host, clean_moto.port)
    healthy = [
        dynamodb_target(f"h{i}", clean_moto.endpoint_url) for i in range(HEALTHY)
    ]
    faulty = dynamodb_target(FAULTY, f"http://{proxy.address}")
    synced = now_ms() - 5_000
    for target in (*healthy, faulty):
        put_metadata(clean_moto.endpoint_url, TABLE, target.prefix, synced)
    settings = ProbeConfig(interval=INTERVAL, timeout=DYNAMODB_TIMEOUT)
    probe = DynamoDBProbe(structlog.get_logger("test"), settings)
    try:
        bed = Bed.make({"dynamodb": probe}, healthy, faulty, DYNAMODB_TIMEOUT)
        await fails_alone_backs_off_and_recovers(
            bed, proxy, fault, synced, SHORT_SCHEDULE
        )
    finally:
        await probe.close()


async def test_dynamodb_connection_failure_keeps_its_reason_under_a_short_timeout(
    clean_moto: MotoServer, aws_env: None, fault_proxy: MakeFaultProxy
) -> None:
    """With probe.timeout 1 s, a reply cut short is reported as `other` on every probe, never as `timeout`."""
    timeout = 1.0
    create_bigsegment_table(clean_moto.endpoint_url, TABLE)
    proxy = await fault_proxy(clean_moto.host, clean_moto.port)
    faulty = dynamodb_target(FAULTY, f"http://{proxy.address}")
    put_metadata(clean_moto.endpoint_url, TABLE, faulty.prefix, now_ms())
    settings = ProbeConfig(interval=INTERVAL, timeout=timeout)
    probe = DynamoDBProbe(structlog.get_logger("test"), settings)
    try:
        bed = Bed.make({"dynamodb": probe}, [], faulty, timeout)
        summary, _ = await bed.round(advance=0.0)
        assert summary.failed == 0
        proxy.close_after(HTTP_CUT)
        reasons = []
        for _ in range(8):
            await bed.round(advance=10 * INTERVAL)
            result = bed.runner.records[FAULTY].result
            assert result is not None
            reasons.append(result.reason)
    finally:
        await probe.close()
    # Each connection is cut within milliseconds: only the probe's own pauses
    # (botocore's retry backoff, twice once DescribeTable is no longer cached)
    # can push it past the deadline.
    assert reasons == [Reason.OTHER] * 8


def open_fds() -> int:
    """File descriptors this process holds."""
    return len(os.listdir("/proc/self/fd"))


async def settle() -> None:
    """Let aborted transports run their connection_lost callbacks (which close fds)."""
    for _ in range(3):
        await asyncio.sleep(0.01)


async def test_toggling_faults_leaks_no_descriptors_or_tasks(
    redis_plain: RedisServer,
    clean_moto: MotoServer,
    aws_env: None,
    proxy_process: MakeProxyProcess,
) -> None:
    """24 rounds cycling every fault mode in front of Redis and DynamoDB: fd and task counts stay flat."""
    redis_proxy = await proxy_process(redis_plain.host, redis_plain.client_port)
    moto_proxy = await proxy_process(clean_moto.host, clean_moto.port)
    create_bigsegment_table(clean_moto.endpoint_url, TABLE)
    redis_faulty = redis_target(FAULTY, redis_proxy.host, redis_proxy.port)
    targets = (
        *(
            redis_target(f"h{i}", redis_plain.host, redis_plain.client_port)
            for i in range(3)
        ),
        redis_faulty,
        dynamodb_target("d0", clean_moto.endpoint_url),
        dynamodb_target("dfaulty", f"http://{moto_proxy.address}"),
    )
    synced = now_ms()
    seed_redis(redis_plain, [t.prefix for t in targets if t.kind == "redis"], synced)
    for target in targets:
        if target.kind == "dynamodb":
            put_metadata(clean_moto.endpoint_url, TABLE, target.prefix, synced)
    log = structlog.get_logger("test")
    dynamodb = DynamoDBProbe(log, ProbeConfig(interval=INTERVAL, timeout=TIMEOUT))
    clock = FakeClock()
    runner = ProbeRunner(
        {"redis": RedisProbe(log), "dynamodb": dynamodb},
        ProbeConfig(interval=INTERVAL, timeout=TIMEOUT),
        log,
        monotonic=clock,
    )
    modes = (
        "pass",
        "blackhole",
        "reset",
        f"close_after {INTO_GET_REPLY}",
        f"delay {4 * TIMEOUT}",
        "accept_hang",
    )

    async def round_in(mode: str) -> Reason | None:
        await redis_proxy.set(mode)
        await moto_proxy.set(mode)
        clock.advance(10 * INTERVAL)  # past any backoff: every target is due
        await runner.run_round(targets)
        await settle()
        result = runner.records[FAULTY].result
        assert result is not None
        return result.reason

    try:
        for _ in range(2):  # warm-up: imports, parser caches, the AWS client
            assert await round_in("pass") is None
        fds, tasks = open_fds(), len(asyncio.all_tasks())
        fd_samples: list[int] = []
        task_samples: list[int] = []
        seen: set[Reason | None] = set()
        for index in range(24):
            seen.add(await round_in(modes[index % len(modes)]))
            fd_samples.append(open_fds())
            task_samples.append(len(asyncio.all_tasks()))
    finally:
        await dynamodb.close()

    assert seen == {None, Reason.TIMEOUT, Reason.TLS_HANDSHAKE, Reason.OTHER}
    assert max(fd_samples) <= fds + 2, fd_samples
    assert max(task_samples) <= tasks + 2, task_samples
    # No creeping either: the last cycle holds no more than the first.
    cycle = len(modes)
    assert max(fd_samples[-cycle:]) <= max(fd_samples[:cycle]), fd_samples
    assert max(task_samples[-cycle:]) <= max(task_samples[:cycle]), task_samples

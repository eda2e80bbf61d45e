"""LaunchDarkly API faults against an in-process daemon.

The API failing in any way (rate limits, 5xx bursts, stalls, slow bodies,
broken or oversize replies) must cost the monitor its API view and nothing
else: scrapes stay fast, the daemon stays healthy, stores keep being probed,
known integrations keep their series, and the API comes back by itself.
The client must also stay polite: one discovery at a time, one request per
round in the steady state, a long pause after an auth failure, no request
before Retry-After.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from devtools.ldsim import Simulator
from devtools.ldsim.stats import Stats
from devtools.servers.redis_server import RedisServer
from tests.support.clock import now_ms
from tests.support.daemon import (
    FORBIDDEN_TOKEN,
    INTEGRATION_ID,
    STATIC,
    InProcessDaemon,
    ServeSimulator,
    StartDaemon,
    daemon_config,
    scenario,
    seed_store,
)
from tests.support.polling import wait_until
from tests.support.scrape import Scrape

API_INTERVAL = 0.4
API_TIMEOUT = 0.2
MAX_RESPONSE_BYTES = 16 * 1024
SCRAPE_BUDGET = 0.5  # seconds: a scrape never waits for the API
FAULT_WINDOW = 8.0  # seconds to see the fault bite (a failed round retries twice)


def reset_now() -> str:
    """`X-Ratelimit-Reset` for a window that ends now (epoch milliseconds).

    The simulator stamps every reply with the end of its current 10 s
    window, and the client rightly honours that too after a 429; pinning it
    to now lets Retry-After alone decide the wait, so the tests stay short.
    """
    return str(now_ms())


@dataclass(frozen=True)
class ApiFault:
    """A simulator fault that makes every discovery round fail while it lasts."""

    name: str
    apply: Callable[[Simulator], None]


def _rate_limited(sim: Simulator) -> None:
    sim.faults.fail_next(
        429,
        count=10_000,
        headers={"Retry-After": "1", "X-Ratelimit-Reset": reset_now()},
    )


def _server_errors(sim: Simulator) -> None:
    sim.faults.fail_next(503, count=10_000)


def _stalled(sim: Simulator) -> None:
    sim.faults.stall = True


def _slow_body(sim: Simulator) -> None:
    # 64-byte chunks every 50 ms: the ~1.5 KB list reply takes over a second,
    # five times the API timeout, although its headers arrive at once.
    sim.faults.slow_body = 0.05


def _malformed(sim: Simulator) -> None:
    sim.faults.malformed_next(count=10_000)


def _oversize(sim: Simulator) -> None:
    sim.faults.pad_next(4 * MAX_RESPONSE_BYTES, count=10_000)


API_FAULTS = (
    ApiFault("429_retry_after", _rate_limited),
    ApiFault("5xx_burst", _server_errors),
    ApiFault("stall", _stalled),
    ApiFault("slow_body", _slow_body),
    ApiFault("malformed_json", _malformed),
    ApiFault("oversize", _oversize),
)


def api_settings(**overrides: Any) -> dict[str, Any]:
    """The api section: short interval and timeout, a small reply cap."""
    return {
        "interval": API_INTERVAL,
        "timeout": API_TIMEOUT,
        "max_response_bytes": MAX_RESPONSE_BYTES,
        "auth_failure_interval": 60,
        **overrides,
    }


class TimedStats(Stats):
    """Simulator stats that also note when each API request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    def enter(self) -> None:
        """Count the request and stamp its arrival."""
        self.arrivals.append(time.monotonic())
        super().enter()


@dataclass
class Setup:
    """A simulator and a daemon watching it (plus the static target)."""

    sim: Simulator
    running: InProcessDaemon
    stats: TimedStats


MakeSetup = Callable[..., Awaitable[Setup]]


@pytest.fixture
def make_setup(
    redis_plain: RedisServer,
    serve_simulator: ServeSimulator,
    start_daemon: StartDaemon,
) -> MakeSetup:
    """Factory: a simulator (faults applied before the daemon starts) and a daemon."""

    async def make(
        *,
        token: str | None = None,
        before_start: Callable[[Simulator], None] | None = None,
        **api: Any,
    ) -> Setup:
        seed_store(redis_plain)
        sim = Simulator(scenario(redis_plain))
        stats = TimedStats()
        sim.stats = stats
        url = await serve_simulator(sim)
        if before_start is not None:
            before_start(sim)
        raw = daemon_config(redis_plain.url, api=api_settings(base_url=url, **api))
        running = await start_daemon(raw, **({"token": token} if token else {}))
        return Setup(sim, running, stats)

    return make


def integration_known(scrape: Scrape) -> bool:
    """The integration's info and probe series are exported."""
    return (
        scrape.value("ld_store_integration_info", integration_id=INTEGRATION_ID) == 1
        and scrape.value("ld_store_probe_up", integration_id=INTEGRATION_ID) == 1
    )


@pytest.mark.parametrize("fault", API_FAULTS, ids=lambda f: f.name)
async def test_api_fault_costs_only_the_api_view(
    fault: ApiFault, make_setup: MakeSetup
) -> None:
    """During the fault: scrapes < 0.5 s, healthy 200, api_up 0, probes go on, known series stay; after it: api_up 1."""
    setup: Setup = await make_setup()
    running = setup.running
    await running.wait_ready()
    before = await running.wait_metric(
        lambda s: s.value("ld_store_api_up") == 1 and integration_known(s)
    )
    static_success = before.value(
        "ld_store_probe_last_success_timestamp_seconds", integration_id=STATIC
    )
    assert static_success is not None

    fault.apply(setup.sim)
    api_went_down = static_probed = False
    scrapes = 0
    async with asyncio.timeout(FAULT_WINDOW):
        while not (api_went_down and static_probed and scrapes >= 10):
            scrape, seconds = await running.scrape()
            scrapes += 1
            assert seconds < SCRAPE_BUDGET
            assert (await running.get("/-/healthy"))[0] == 200
            assert integration_known(scrape)
            api_went_down |= scrape.value("ld_store_api_up") == 0
            latest = scrape.value(
                "ld_store_probe_last_success_timestamp_seconds", integration_id=STATIC
            )
            static_probed |= latest is not None and latest > static_success
            await asyncio.sleep(0.05)

    setup.sim.faults.clear()
    after = await running.wait_metric(
        lambda s: s.value("ld_store_api_up") == 1, timeout=FAULT_WINDOW
    )
    assert integration_known(after)


async def test_slow_discovery_rounds_never_overlap(make_setup: MakeSetup) -> None:
    """Rounds lasting several intervals run one after the other: never two API requests in flight."""

    # Every request is delayed and then fails with 503, so each round is three
    # attempts with backoff: over a second, 3+ API intervals. The delay stays
    # under the API timeout on purpose: a request the client gave up on keeps
    # the simulator's handler asleep, and would count as in flight although
    # the monitor has moved on.
    def slow_and_failing(sim: Simulator) -> None:
        sim.faults.delay = 0.15
        sim.faults.fail_next(503, count=10_000)

    setup: Setup = await make_setup(
        before_start=slow_and_failing, interval=0.3, timeout=0.25
    )
    started = time.monotonic()
    await wait_until(lambda: time.monotonic() - started > 3.0, timeout=4.0)
    stats = setup.stats
    assert stats.count("list_integrations", 503) >= 4  # the rounds did run
    assert stats.max_in_flight == 1
    gaps = [b - a for a, b in zip(stats.arrivals, stats.arrivals[1:], strict=False)]
    assert min(gaps) >= 0.15  # each request began after the previous one ended


async def test_steady_state_is_one_list_request_per_round(
    make_setup: MakeSetup,
) -> None:
    """Nothing changing: one list call per round and nothing else; a config change adds one get."""
    setup: Setup = await make_setup()
    await setup.running.wait_ready()
    loop = setup.running.daemon.loops["discovery"]
    stats = setup.sim.stats

    async def next_round_boundary() -> int:
        # Right after a round ends the loop sleeps most of an interval: no
        # request is in flight while the counters are reset.
        current = loop.iterations
        await wait_until(lambda: loop.iterations > current)
        stats.reset()
        return loop.iterations

    first = await next_round_boundary()
    await wait_until(lambda: loop.iterations >= first + 5, timeout=10)
    rounds = loop.iterations - first
    assert stats.count("list_integrations", 200) == rounds
    assert stats.total() == rounds

    first = await next_round_boundary()
    setup.sim.update_config(INTEGRATION_ID, username="ld-writer")
    await wait_until(lambda: loop.iterations >= first + 3, timeout=10)
    rounds = loop.iterations - first
    assert stats.count("list_integrations", 200) == rounds
    assert stats.count("get_integration", 200) == 1
    assert stats.total() == rounds + 1


@pytest.mark.parametrize(
    ("token", "code"), [("wrong-token", 401), (FORBIDDEN_TOKEN, 403)]
)
async def test_auth_failure_waits_the_auth_failure_interval(
    make_setup: MakeSetup, token: str, code: int
) -> None:
    """401/403 with a 0.4 s interval and a 60 s auth back-off: one list request in a second, api_up 0."""
    setup: Setup = await make_setup(token=token)
    stats = setup.sim.stats
    await wait_until(lambda: stats.total() >= 1)
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        assert stats.total() == 1
        await asyncio.sleep(0.05)
    assert stats.count("list_integrations", code) == 1
    scrape, _ = await setup.running.scrape()
    assert scrape.value("ld_store_api_up") == 0
    assert scrape.value("ld_store_probe_up", integration_id=STATIC) == 1


async def test_429_retry_after_is_honoured(make_setup: MakeSetup) -> None:
    """After a 429 with Retry-After: 2, the next request reaches the API no sooner than 2 s later."""
    setup: Setup = await make_setup()
    await setup.running.wait_ready()
    stats = setup.stats
    setup.sim.faults.fail_next(
        429, headers={"Retry-After": "2", "X-Ratelimit-Reset": reset_now()}
    )
    await wait_until(lambda: stats.count("list_integrations", 429) == 1)
    limited = len(stats.arrivals) - 1
    await wait_until(lambda: len(stats.arrivals) > limited + 1, timeout=6)
    gap = stats.arrivals[limited + 1] - stats.arrivals[limited]
    # At most Retry-After + the client's 0.5 s jitter + one interval + slack.
    assert 2.0 <= gap < 2.0 + 0.5 + API_INTERVAL + 1.0
    await setup.running.wait_metric(lambda s: s.value("ld_store_api_up") == 1)


@pytest.mark.parametrize("fault", [API_FAULTS[1], API_FAULTS[2]], ids=lambda f: f.name)
async def test_ready_with_the_api_down_at_start(
    fault: ApiFault, make_setup: MakeSetup
) -> None:
    """API failing from the start: ready after the failed first discovery and one probe round; api_up 0, the static store probed."""
    setup: Setup = await make_setup(before_start=fault.apply)
    running = setup.running
    await running.wait_ready(timeout=FAULT_WINDOW)
    state = running.daemon.state
    assert state.discovery_attempted
    assert not state.view.completed  # no discovery has succeeded
    scrape, _ = await running.scrape()
    assert scrape.value("ld_store_api_up") == 0
    assert scrape.value("ld_store_probe_up", integration_id=STATIC) == 1
    assert (scrape.value("ld_store_probe_rounds_total") or 0) >= 1
    # The API coming back adds its integration; the pod stays ready.
    setup.sim.faults.clear()
    await running.wait_metric(integration_known, timeout=FAULT_WINDOW)
    assert (await running.get("/-/ready"))[0] == 200

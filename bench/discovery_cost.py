"""API requests per discovery interval at 1,000 integrations, as the simulator counts.

- first discovery: requests and wall time of the first `Monitor.discover()`
  of a fresh monitor (the list, each integration's details, each
  environment's client-side ID);
- steady state: requests of a discovery round when nothing changed
  (target: exactly 1, the list);
- after one change: requests of the round after one integration's config
  changed (its version went up; target: 2, the list and that integration).

Every figure is counted by the simulator itself (`sim.stats`), so requests
the client retried or paced would show.

    .venv/bin/python -m bench.discovery_cost [--quick] [--repeat 5] [--json]
"""

from __future__ import annotations

import asyncio
import time

from bench.fleet import (
    config_document,
    load_config,
    opened_monitor,
    redis_fleet,
    served_simulator,
)
from bench.harness import Options, Report, parse_options, progress

# Nothing is probed: the stores' ports only need to be well-formed.
UNUSED_PORTS = [6390, 6391, 6392, 6393]


async def main(options: Options) -> Report:
    """Count and time; return the report."""
    size = 5 if options.smoke else 1000
    stores = redis_fleet(size, UNUSED_PORTS)
    report = Report(
        "discovery_cost",
        "LaunchDarkly API requests per discovery interval",
        options,
        parameters={"N": size, "environments": size},
    )
    first_requests: list[float] = []
    first_seconds: list[float] = []
    steady_requests: list[float] = []
    steady_seconds: list[float] = []
    change_requests: list[float] = []
    change_seconds: list[float] = []
    async with served_simulator(stores) as api:
        sim = api.simulator
        config = load_config(config_document(api.url))
        for i in range(options.repeat):
            async with opened_monitor(config) as monitor:
                sim.stats.reset()
                started = time.perf_counter()
                outcome = await monitor.discover()
                first_seconds.append(time.perf_counter() - started)
                first_requests.append(sim.stats.total())
                if outcome is None or not outcome.ok or outcome.integrations != size:
                    raise RuntimeError(f"first discovery went wrong: {outcome}")
                if len(monitor.state.targets) != size:
                    raise RuntimeError("not every integration became a target")
                breakdown = sim.stats.snapshot()

                sim.stats.reset()
                started = time.perf_counter()
                await monitor.discover()
                steady_seconds.append(time.perf_counter() - started)
                steady_requests.append(sim.stats.total())

                changed = stores[i % size]
                sim.update_config(changed.integration_id, port=str(changed.port))
                sim.stats.reset()
                started = time.perf_counter()
                outcome = await monitor.discover()
                change_seconds.append(time.perf_counter() - started)
                change_requests.append(sim.stats.total())
                if outcome is None or outcome.fetched != 1:
                    raise RuntimeError(f"the change was not fetched: {outcome}")
            progress(
                f"repeat {i + 1}: first {first_requests[-1]:.0f} requests in "
                f"{first_seconds[-1]:.2f} s, steady {steady_requests[-1]:.0f}, "
                f"after a change {change_requests[-1]:.0f}"
            )
    report.add("first discovery requests", first_requests, "requests")
    report.add("first discovery time", [s * 1000 for s in first_seconds], "ms")
    steady = report.add(
        "steady-state requests per interval", steady_requests, "requests"
    )
    steady.target, steady.met = "= 1", all(r == 1 for r in steady_requests)
    report.add("steady-state round time", [s * 1000 for s in steady_seconds], "ms")
    change = report.add("requests after one change", change_requests, "requests")
    change.target, change.met = "= 2", all(r == 2 for r in change_requests)
    report.add("round time after one change", [s * 1000 for s in change_seconds], "ms")
    parts = ", ".join(
        f"{endpoint} {sum(codes.values())}"
        for endpoint, codes in sorted(breakdown.items())
    )
    report.note(f"first discovery by endpoint: {parts}")
    report.note(
        "each integration has its own environment here (the worst case for "
        "environment look-ups); times are against the local simulator, so "
        "they hold no network latency"
    )
    return report


if __name__ == "__main__":
    opts = parse_options(__doc__.splitlines()[0] if __doc__ else "discovery_cost")
    asyncio.run(main(opts)).emit()

"""The standard `process_*` figures of this process, for the exposition.

prometheus_client's ProcessCollector reads them from /proc (Linux; elsewhere
it yields nothing); its samples are rendered through the monitor's own
writer like every other family (`FAMILIES`, side "monitor").
"""

from __future__ import annotations

import functools

from prometheus_client import ProcessCollector

# The families it yields, by their sample names, as FAMILIES declares them.
PROCESS_SAMPLES = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
)


@functools.cache
def _collector() -> ProcessCollector:
    # Not registered anywhere: the monitor's exposition is hand-written.
    return ProcessCollector(registry=None)


def read_process() -> dict[str, float]:
    """Sample name -> value for this process; empty where /proc is not readable."""
    return {
        sample.name: sample.value
        for family in _collector().collect()
        for sample in family.samples
        if sample.name in PROCESS_SAMPLES
    }

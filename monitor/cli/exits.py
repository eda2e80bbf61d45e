"""The command line's exit codes, one table for every command."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """What the process tells its caller (a shell, CI, a Kubernetes probe)."""

    OK = 0  # done; for `check`, every store healthy or off
    UNHEALTHY = 1  # `check`: a store is unhealthy; `run`: it crashed
    BAD_INPUT = 2  # an invalid configuration, or no access to the API

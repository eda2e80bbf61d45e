"""Fault switches: make API replies fail, hang, crawl, break or bloat."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

_CONTROL_FIELDS: Final = frozenset(
    {"fail_next", "delay", "stall", "slow_body", "malformed_next", "pad_next"}
)


@dataclass(frozen=True)
class Failure:
    """One forced reply: status, extra headers and body (None: a standard error)."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    endpoint: str | None = None  # only requests to this endpoint (None: any)


class Faults:
    """Fault switches for API routes; the `/_sim` control routes are never faulted."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.stall = False
        self.slow_body = 0.0
        self.chunk_size = 64
        self._failures: deque[Failure] = deque()
        self._malformed = 0
        self._pads: deque[int] = deque()

    def fail_next(
        self,
        status: int = 503,
        count: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        endpoint: str | None = None,
    ) -> None:
        """Answer the next `count` API requests (to `endpoint` only, when given,
        e.g. `create_integration`) with `status` (+ headers, body)."""
        if not 400 <= status <= 599:
            raise ValueError(f"fail_next status must be 400-599, not {status}")
        _check_count(count)
        failure = Failure(status, dict(headers or {}), body, endpoint)
        self._failures.extend([failure] * count)

    def malformed_next(self, count: int = 1) -> None:
        """Truncate the JSON of the next `count` 200 replies."""
        _check_count(count)
        self._malformed += count

    def pad_next(self, size_bytes: int, count: int = 1) -> None:
        """Pad the next `count` replies with whitespace to at least `size_bytes`."""
        _check_count(count)
        if size_bytes < 0:
            raise ValueError("pad_next size_bytes must not be negative")
        self._pads.extend([size_bytes] * count)

    def clear(self) -> None:
        """Turn every fault off (stalled requests then get answered)."""
        self.delay = 0.0
        self.stall = False
        self.slow_body = 0.0
        self._failures.clear()
        self._malformed = 0
        self._pads.clear()

    def take_failure(self, endpoint: str | None = None) -> Failure | None:
        """Return the next forced failure for a request to `endpoint`, if pending."""
        for failure in self._failures:
            if failure.endpoint is None or failure.endpoint == endpoint:
                self._failures.remove(failure)
                return failure
        return None

    def take_malformed(self) -> bool:
        """Return True (once per pending count) if a 200 reply must be truncated."""
        if self._malformed <= 0:
            return False
        self._malformed -= 1
        return True

    def take_pad(self) -> int | None:
        """Return the size the next reply must be padded to, if pending."""
        return self._pads.popleft() if self._pads else None

    def snapshot(self) -> dict[str, Any]:
        """Return the current switches and pending counts as JSON-ready data."""
        return {
            "delay": self.delay,
            "stall": self.stall,
            "slow_body": self.slow_body,
            "fail_next": [f.status for f in self._failures],
            "malformed_next": self._malformed,
            "pad_next": list(self._pads),
        }

    def configure(self, data: object) -> None:
        """Apply a control-route JSON body; ValueError (nothing applied) if bad."""
        if not isinstance(data, Mapping):
            raise ValueError("body must be a JSON object")  # noqa: TRY004 - answered as a 400
        unknown = sorted(set(data) - _CONTROL_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown fields {unknown}; known: {sorted(_CONTROL_FIELDS)}"
            )
        failures: list[Failure] = []
        if "fail_next" in data:
            spec = _mapping(data["fail_next"], "fail_next")
            status = _integer(spec.get("status", 503), "fail_next.status", 400, 599)
            headers = _mapping(spec.get("headers", {}), "fail_next.headers")
            endpoint = spec.get("endpoint")
            if endpoint is not None and not isinstance(endpoint, str):
                raise ValueError("fail_next.endpoint must be an endpoint name")
            failure = Failure(
                status,
                {k: str(v) for k, v in headers.items()},
                spec.get("body"),
                endpoint,
            )
            failures = [failure] * _integer(spec.get("count", 1), "fail_next.count", 1)
        delay = _seconds(data.get("delay", self.delay), "delay")
        slow_body = _seconds(data.get("slow_body", self.slow_body), "slow_body")
        stall = data.get("stall", self.stall)
        if not isinstance(stall, bool):
            raise ValueError("stall must be true or false")  # noqa: TRY004 - a 400 reply
        malformed = _integer(data.get("malformed_next", 0), "malformed_next", 0)
        pads: list[int] = []
        if "pad_next" in data:
            spec = _mapping(data["pad_next"], "pad_next")
            size = _integer(spec.get("size_bytes"), "pad_next.size_bytes", 0)
            pads = [size] * _integer(spec.get("count", 1), "pad_next.count", 1)
        self._failures.extend(failures)
        self.delay, self.slow_body, self.stall = delay, slow_body, stall
        self._malformed += malformed
        self._pads.extend(pads)


def _check_count(count: int) -> None:
    """Reject a non-positive fault count."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")


def _mapping(value: object, name: str) -> dict[str, Any]:
    """Return a JSON object field or raise ValueError."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be an object")  # noqa: TRY004 - answered as a 400
    return {str(key): item for key, item in value.items()}


def _integer(value: object, name: str, low: int, high: int | None = None) -> int:
    """Return an integer field within [low, high] or raise ValueError."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f">= {low}" if high is None else f"in {low}-{high}"
        raise ValueError(f"{name} must be an integer {bounds}")
    return value


def _seconds(value: object, name: str) -> float:
    """Return a non-negative number of seconds or raise ValueError."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0")
    return float(value)

"""Request counters per API endpoint and status code."""

from __future__ import annotations


class Stats:
    """Counts API requests by endpoint name and status code (0: stalled, no reply)."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[int, int]] = {}
        self.in_flight = 0  # API requests being answered now
        self.max_in_flight = 0  # the most at once since the last reset

    def enter(self) -> None:
        """An API request arrived."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        """An API request was answered (or abandoned)."""
        self.in_flight -= 1

    def record(self, endpoint: str, code: int) -> None:
        """Count one request to `endpoint` answered with `code`."""
        codes = self._counts.setdefault(endpoint, {})
        codes[code] = codes.get(code, 0) + 1

    def count(self, endpoint: str, code: int | None = None) -> int:
        """Return requests to `endpoint`, all codes or only `code`."""
        codes = self._counts.get(endpoint, {})
        return sum(codes.values()) if code is None else codes.get(code, 0)

    def total(self) -> int:
        """Return every API request counted (control routes are never counted)."""
        return sum(sum(codes.values()) for codes in self._counts.values())

    def reset(self) -> None:
        """Forget every count."""
        self._counts.clear()
        self.max_in_flight = self.in_flight

    def snapshot(self) -> dict[str, dict[int, int]]:
        """Return a copy: `{endpoint: {code: n}}`."""
        return {endpoint: dict(codes) for endpoint, codes in self._counts.items()}

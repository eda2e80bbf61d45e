"""Integration `_status` values, with times relative to the simulator's clock."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

STATUS_FIELDS: Final = frozenset(
    {"available", "potentiallyStale", "lastSync", "lastError", "errors"}
)
_ERROR_FIELDS: Final = frozenset({"statusCode", "message", "timestamp"})
_RELATIVE: Final = re.compile(r"^([+-])(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_MS: Final = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


@dataclass(frozen=True)
class TimeRef:
    """A point in time: absolute epoch milliseconds, or an offset from the clock."""

    absolute_ms: int | None = None
    offset_ms: int = 0

    def resolve(self, now: float) -> int:
        """Return epoch milliseconds for the clock reading `now` (epoch seconds)."""
        if self.absolute_ms is not None:
            return self.absolute_ms
        return int(now * 1000) + self.offset_ms

    @classmethod
    def parse(cls, value: object) -> TimeRef:
        """Parse epoch ms (int), `"now"` or a relative offset such as `"-30s"`."""
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise ValueError("epoch milliseconds must not be negative")
            return cls(absolute_ms=value)
        if isinstance(value, str):
            text = value.strip()
            if text == "now":
                return cls()
            match = _RELATIVE.match(text)
            if match:
                sign, amount, unit = match.groups()
                offset = round(float(amount) * _UNIT_MS[unit])
                return cls(offset_ms=-offset if sign == "-" else offset)
        raise ValueError(
            f"{value!r} is not a time: use epoch milliseconds (int), "
            '"now", or a signed offset like "-30s", "-5m", "-2h", "-1d"'
        )


@dataclass(frozen=True)
class StoreError:
    """One entry of `_status.errors` (every field optional, as in the API)."""

    status_code: int | None = None
    message: str | None = None
    timestamp: TimeRef | None = None

    def render(self, now: float) -> dict[str, Any]:
        """Return the API representation at clock reading `now`."""
        doc: dict[str, Any] = {}
        if self.status_code is not None:
            doc["statusCode"] = self.status_code
        if self.message is not None:
            doc["message"] = self.message
        if self.timestamp is not None:
            doc["timestamp"] = self.timestamp.resolve(now)
        return doc


@dataclass(frozen=True)
class Status:
    """An integration's `_status`; a field left as None is omitted from replies."""

    available: bool | None = None
    potentially_stale: bool | None = None
    last_sync: TimeRef | None = None
    last_error: TimeRef | None = None
    errors: tuple[StoreError, ...] | None = None

    def render(self, now: float, events_at: float | None = None) -> dict[str, Any]:
        """The API representation at clock reading `now`.

        `lastSync` moves with the clock; `lastError` and error timestamps are
        resolved against `events_at` (default `now`), since an error happened once.
        """
        events = now if events_at is None else events_at
        doc: dict[str, Any] = {}
        if self.available is not None:
            doc["available"] = self.available
        if self.potentially_stale is not None:
            doc["potentiallyStale"] = self.potentially_stale
        if self.last_sync is not None:
            doc["lastSync"] = self.last_sync.resolve(now)
        if self.last_error is not None:
            doc["lastError"] = self.last_error.resolve(events)
        if self.errors is not None:
            doc["errors"] = [error.render(events) for error in self.errors]
        return doc

    def merged(self, fields: Mapping[str, object], loc: str = "status") -> Status:
        """Return a copy with API-named `fields` applied (None removes a field)."""
        status, problems = parse_status(fields, loc, base=self)
        if problems:
            raise ValueError("; ".join(problems))
        return status


def parse_status(
    data: object, loc: str, base: Status | None = None
) -> tuple[Status, list[str]]:
    """Read API-named status fields over `base`; return it and `loc: problem` lines."""
    status = base or Status()
    if not isinstance(data, Mapping):
        return status, [f"{loc}: must be a mapping"]
    problems: list[str] = []
    changes: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{loc}.{key}"
        if key not in STATUS_FIELDS:
            problems.append(f"{where}: unknown field (known: {_known(STATUS_FIELDS)})")
        elif value is None:
            changes[_ATTR[key]] = None
        elif key in {"available", "potentiallyStale"}:
            if isinstance(value, bool):
                changes[_ATTR[key]] = value
            else:
                problems.append(f"{where}: must be true or false")
        elif key == "errors":
            errors, error_problems = _parse_errors(value, where)
            problems.extend(error_problems)
            changes["errors"] = errors
        else:
            try:
                changes[_ATTR[key]] = TimeRef.parse(value)
            except ValueError as err:
                problems.append(f"{where}: {err}")
    return replace(status, **changes), problems


_ATTR: Final = {
    "available": "available",
    "potentiallyStale": "potentially_stale",
    "lastSync": "last_sync",
    "lastError": "last_error",
    "errors": "errors",
}


def _parse_errors(value: object, loc: str) -> tuple[tuple[StoreError, ...], list[str]]:
    """Read a list of `{statusCode, message, timestamp}` entries."""
    if not isinstance(value, list):
        return (), [f"{loc}: must be a list"]
    problems: list[str] = []
    errors: list[StoreError] = []
    for index, entry in enumerate(value):
        where = f"{loc}.{index}"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: must be a mapping")
            continue
        problems.extend(
            f"{where}.{key}: unknown field (known: {_known(_ERROR_FIELDS)})"
            for key in entry
            if key not in _ERROR_FIELDS
        )
        code = entry.get("statusCode")
        if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
            problems.append(f"{where}.statusCode: must be an integer")
            code = None
        message = entry.get("message")
        if message is not None and not isinstance(message, str):
            problems.append(f"{where}.message: must be a string")
            message = None
        timestamp: TimeRef | None = None
        if entry.get("timestamp") is not None:
            try:
                timestamp = TimeRef.parse(entry["timestamp"])
            except ValueError as err:
                problems.append(f"{where}.timestamp: {err}")
        errors.append(StoreError(code, message, timestamp))
    return tuple(errors), problems


def _known(names: frozenset[str]) -> str:
    """List field names for an error message."""
    return ", ".join(sorted(names))

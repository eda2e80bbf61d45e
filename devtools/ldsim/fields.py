"""Typed readers over parsed YAML/JSON that collect `location: problem` lines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FieldReader:
    """Typed accessors over parsed YAML that collect `location: problem` lines."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, loc: str, message: str) -> None:
        """Record one problem."""
        self.problems.append(f"{loc}: {message}")

    def mapping(
        self, value: object, loc: str, keys: frozenset[str] | None
    ) -> dict[str, Any]:
        """Return `value` as a dict, reporting a non-mapping and keys not in `keys`."""
        if not isinstance(value, Mapping):
            self.fail(loc, "must be a mapping")
            return {}
        for key in value:
            if keys is not None and key not in keys:
                known = ", ".join(sorted(keys))
                self.fail(f"{loc}.{key}", f"unknown field (known: {known})")
        return {str(key): item for key, item in value.items()}

    def items(self, data: dict[str, Any], key: str) -> list[Any]:
        """Return the list under `key` (empty when absent)."""
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(key, "must be a list")
            return []
        return value

    def string(
        self, data: dict[str, Any], key: str, loc: str, default: str | None = None
    ) -> str | None:
        """Return a non-empty string field, or `default` when absent."""
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            self.fail(loc, "must be a non-empty string")
            return default
        return value

    def required(self, data: dict[str, Any], key: str, loc: str) -> str:
        """Return a required non-empty string field ("" after reporting it missing)."""
        value = self.string(data, key, loc)
        if value is None:
            if key not in data:
                self.fail(loc, "is required")
            return ""
        return value

    def boolean(self, data: dict[str, Any], key: str, loc: str, default: bool) -> bool:
        """Return a boolean field, or `default` when absent."""
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(loc, "must be true or false")
            return default
        return value

    def integer(
        self, data: dict[str, Any], key: str, loc: str, default: int, minimum: int
    ) -> int:
        """Return an integer field of at least `minimum`, or `default` when absent."""
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.fail(loc, f"must be an integer >= {minimum}")
            return default
        return value

    def strings(self, data: dict[str, Any], key: str, loc: str) -> tuple[str, ...]:
        """Return a list-of-strings field as a tuple (empty when absent)."""
        value = data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(loc, "must be a list of strings")
            return ()
        return tuple(value)

    def unique(self, values: list[str], loc: str, what: str) -> None:
        """Report values that occur more than once."""
        seen: set[str] = set()
        for value in values:
            if value in seen and value:
                self.fail(loc, f"duplicate {what} {value!r}")
            seen.add(value)

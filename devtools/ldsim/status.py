"""Integration `_status` values, with times relative to the simulator's clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import (
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from devtools.ldsim.validation import Spec, present, problems
from monitor.config import parse_duration

_TIME_FORMS: Final = (
    'use epoch milliseconds (int), "now", or a signed duration like '
    '"-30s", "-5m", "-2h", "+250ms" (the units of the monitor\'s config)'
)


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
        """Parse epoch ms (int), `"now"` or a signed duration such as `"-30s"`.

        The duration after the sign has the grammar of the monitor's own
        configuration (`monitor.config.parse_duration`).
        """
        if isinstance(value, TimeRef):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise ValueError("epoch milliseconds must not be negative")
            return cls(absolute_ms=value)
        if isinstance(value, str):
            text = value.strip()
            if text == "now":
                return cls()
            if text[:1] in {"+", "-"}:
                try:
                    seconds = parse_duration(text[1:])
                except ValueError:
                    pass
                else:
                    assert isinstance(seconds, float)  # a string always parses to one
                    offset = round(seconds * 1000)
                    return cls(offset_ms=-offset if text[0] == "-" else offset)
        raise ValueError(f"{value!r} is not a time: {_TIME_FORMS}")


Time = Annotated[TimeRef, PlainValidator(TimeRef.parse)]


class StoreError(Spec):
    """One entry of `_status.errors` (every field optional, as in the API)."""

    status_code: StrictInt | None = Field(default=None, validation_alias="statusCode")
    message: StrictStr | None = None
    timestamp: Time | None = None

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


class Status(Spec):
    """An integration's `_status`; a field left as None is omitted from replies."""

    available: StrictBool | None = None
    potentially_stale: StrictBool | None = Field(
        default=None, validation_alias="potentiallyStale"
    )
    last_sync: Time | None = Field(default=None, validation_alias="lastSync")
    last_error: Time | None = Field(default=None, validation_alias="lastError")
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

    def merged(self, fields: Mapping[str, object]) -> Status:
        """Return a copy with API-named `fields` applied (None removes a field)."""
        current = {
            str(field.validation_alias or name): getattr(self, name)
            for name, field in type(self).model_fields.items()
        }
        try:
            return Status.model_validate(present({**current, **fields}))
        except ValidationError as err:
            raise ValueError("; ".join(problems(err, "status"))) from None

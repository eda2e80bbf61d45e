"""The base of the simulator's pydantic models, and their `location: problem` lines.

The same idiom as `monitor.config`: frozen models that reject unknown keys,
errors reported one line per problem with the dotted path of the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

NonEmpty = Annotated[StrictStr, Field(min_length=1)]


class Spec(BaseModel):
    """Base of every scenario model: unknown keys rejected, values frozen.

    Fields are named in Python (`potentially_stale`) and read by their API
    or scenario names (`potentiallyStale`) through `validation_alias`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def present(data: Any) -> Any:
    """Drop null values of a mapping: a YAML `key:` with no value means absent."""
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if value is not None}
    return data


def problems(err: ValidationError, top: str = "(top)") -> list[str]:
    """Return one `dotted.location: message` line per error, in order."""
    lines: list[str] = []
    for error in err.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or top
        lines.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return list(dict.fromkeys(lines))

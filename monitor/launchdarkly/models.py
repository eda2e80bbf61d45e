"""Tolerant models of the LaunchDarkly REST replies the monitor reads.

Parsing is per field: a field of the wrong type is dropped and reported as a
problem, so one odd value never hides an integration, and one broken item
never hides the others. Unknown fields are ignored. Values are made safe
here, at the boundary (`monitor.sanitize`): an integer outside 64 bits (a
`lastSync` of 10**400) is dropped, and a string's unpaired surrogates and
control characters are replaced by U+FFFD; each is a problem too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from monitor.launchdarkly.errors import ApiError, ApiErrorKind
from monitor.sanitize import describe_int, int64, safe_text
from monitor.store_keys import DEFAULT_REDIS_PORT

IntegrationKind = Literal["redis", "dynamodb"]
KINDS: tuple[IntegrationKind, ...] = ("redis", "dynamodb")
# A huge errors[] would otherwise be held in memory for every integration.
MAX_ERRORS_KEPT = 100
# Hard limits on one list reply (besides api.max_response_bytes): more items
# than this, and the reply is an error of the API, never a memory cost.
# Sharding is advised from 5,000 integrations, so this is far above any account.
MAX_LIST_ITEMS = 50_000
# A string field longer than this is dropped as a parse problem (an error
# message is cut instead): one item's size is bounded whatever the reply holds.
MAX_STRING_CHARS = 4096
# Ids the monitor gives targets of its own (an API integration whose `_id`
# equals a static target's name becomes `api:<_id>`), so an API `_id` may not
# start with it: two targets can never share an id.
RESERVED_ID_PREFIX = "api:"
# Problems keep a count and only this many descriptions: a reply of a million
# bad items costs one counter, not a million strings.
PROBLEM_SAMPLE = 10


@dataclass(frozen=True, slots=True)
class StoreError:
    """One entry of `_status.errors`."""

    status_code: int | None
    message: str
    timestamp_ms: int | None


@dataclass(frozen=True, slots=True)
class ApiStatus:
    """`_status` as LaunchDarkly reports it; every field may be absent."""

    available: bool | None = None
    potentially_stale: bool | None = None
    last_sync_ms: int | None = None
    last_error_ms: int | None = None
    errors: tuple[StoreError, ...] = ()
    errors_total: int = 0  # entries in the reply, before MAX_ERRORS_KEPT


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """The Redis integration's `config`, minus the (redacted) password."""

    host: str
    port: int
    username: str | None
    tls_enabled: bool


@dataclass(frozen=True, slots=True)
class DynamoDBSettings:
    """The DynamoDB integration's `config`, minus LaunchDarkly's own role."""

    table_name: str
    region: str | None


@dataclass(frozen=True, slots=True)
class Integration:
    """A big segment store integration."""

    id: str
    kind: IntegrationKind
    project: str
    environment: str
    name: str
    on: bool
    version: int | None
    status: ApiStatus
    settings: RedisSettings | DynamoDBSettings | None = None


@dataclass(frozen=True, slots=True)
class Environment:
    """The one thing the monitor needs from an environment: its client-side ID."""

    project: str
    key: str
    client_side_id: str


@dataclass(frozen=True, slots=True)
class Segment:
    """The segment fields a canary check needs."""

    key: str
    generation: int | None
    unbounded: bool
    context_kind: str


@dataclass
class Problems:
    """Parse problems found in one reply: a count, and the first few as
    `where: what` strings (`PROBLEM_SAMPLE`)."""

    items: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, where: str, what: str) -> None:
        """Record one problem."""
        self.count += 1
        if len(self.items) < PROBLEM_SAMPLE:
            self.items.append(f"{where}: {what}")


def _opt(
    raw: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    where: str,
    problems: Problems,
) -> Any:
    """`raw[key]` if it has the expected type; None (and a problem) otherwise."""
    if key not in raw or raw[key] is None:
        return None
    value = raw[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python; an int field must not accept true/false.
    if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
        if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            problems.add(f"{where}.{key}", f"longer than {MAX_STRING_CHARS} characters")
            return None
        return _safe(value, f"{where}.{key}", problems)
    problems.add(
        f"{where}.{key}", f"expected {_type_name(kind)}, got {type(value).__name__}"
    )
    return None


def _safe(value: Any, where: str, problems: Problems) -> Any:
    """A value of the expected type, made safe: None for an integer beyond 64 bits."""
    if isinstance(value, str):
        safe = safe_text(value)
        if safe != value:
            problems.add(where, "unpaired surrogates or control characters replaced")
        return safe
    if isinstance(value, int) and not isinstance(value, bool) and int64(value) is None:
        problems.add(where, f"out of range: {describe_int(value)}")
        return None
    return value


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {
            str: "string",
            int: "integer",
            bool: "boolean",
            dict: "object",
            list: "array",
        }.get(k, k.__name__)
        for k in kinds
    )


def parse_status(raw: Any, where: str, problems: Problems) -> ApiStatus:
    """Parse `_status`; absent or malformed fields stay None."""
    if raw is None:
        problems.add(where, "missing")
        return ApiStatus()
    if not isinstance(raw, Mapping):
        problems.add(where, f"expected object, got {type(raw).__name__}")
        return ApiStatus()
    errors: list[StoreError] = []
    raw_errors = _opt(raw, "errors", list, where, problems) or []
    for index, entry in enumerate(raw_errors[:MAX_ERRORS_KEPT]):
        entry_where = f"{where}.errors.{index}"
        if not isinstance(entry, Mapping):
            problems.add(entry_where, f"expected object, got {type(entry).__name__}")
            continue
        errors.append(
            StoreError(
                status_code=_opt(entry, "statusCode", int, entry_where, problems),
                message=_message(entry.get("message"), entry_where, problems),
                timestamp_ms=_opt(entry, "timestamp", int, entry_where, problems),
            )
        )
    if len(raw_errors) > MAX_ERRORS_KEPT:
        problems.add(
            f"{where}.errors",
            f"{len(raw_errors)} entries, kept the first {MAX_ERRORS_KEPT}",
        )
    return ApiStatus(
        available=_opt(raw, "available", bool, where, problems),
        potentially_stale=_opt(raw, "potentiallyStale", bool, where, problems),
        last_sync_ms=_opt(raw, "lastSync", int, where, problems),
        last_error_ms=_opt(raw, "lastError", int, where, problems),
        errors=tuple(errors),
        errors_total=len(raw_errors),
    )


def _message(value: Any, where: str, problems: Problems) -> str:
    """An error message; one longer than MAX_STRING_CHARS is cut, not dropped."""
    if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        return safe_text(value[:MAX_STRING_CHARS]) + "…"
    return _opt({"message": value}, "message", str, where, problems) or ""


def _digits(text: str, most: int) -> bool:
    """`text` is 1 to `most` ASCII digits."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def _parse_port(raw: Mapping[str, Any], where: str, problems: Problems) -> int:
    value = raw.get("port")
    if value is None or value == "":
        return DEFAULT_REDIS_PORT
    if isinstance(value, int) and not isinstance(value, bool):
        # The API stores port as a string; a number is usable but unexpected.
        problems.add(f"{where}.port", "expected string, got int")
        port = value
    elif isinstance(value, str) and _digits(value.strip(), 5):
        port = int(value)
    else:
        problems.add(f"{where}.port", f"not a port number: {safe_text(value[:40])!r}")
        return 0
    if not 0 < port < 65536:
        problems.add(f"{where}.port", f"out of range: {describe_int(port)}")
        return 0
    return port


def parse_settings(
    kind: IntegrationKind,
    raw: Any,
    where: str,
    problems: Problems,
    *,
    summary: bool = False,
) -> RedisSettings | DynamoDBSettings | None:
    """Parse `config` for a Redis or DynamoDB integration; None when unusable.

    A `summary` (a list item) may carry `config: {}`: the list returns summary
    representations and the detail GET brings the config, so an empty one
    there is normal, not a problem. A non-empty one is parsed as usual.
    """
    if raw is None or (summary and isinstance(raw, Mapping) and not raw):
        return None
    if not isinstance(raw, Mapping):
        problems.add(where, f"expected object, got {type(raw).__name__}")
        return None
    if kind == "redis":
        host = _opt(raw, "host", str, where, problems)
        if not host:
            problems.add(f"{where}.host", "missing")
            return None
        port = _parse_port(raw, where, problems)
        if not port:
            return None
        return RedisSettings(
            host=host,
            port=port,
            username=_opt(raw, "username", str, where, problems) or None,
            tls_enabled=bool(_opt(raw, "tlsEnabled", bool, where, problems)),
        )
    table = _opt(raw, "tableName", str, where, problems)
    if not table:
        problems.add(f"{where}.tableName", "missing")
        return None
    return DynamoDBSettings(
        table_name=table, region=_opt(raw, "region", str, where, problems) or None
    )


def parse_integration(
    raw: Any, where: str, problems: Problems, *, summary: bool = False
) -> Integration | None:
    """Parse one integration; None when it cannot be identified at all.

    `summary`: a list item, whose `config` may be empty or absent.
    """
    if not isinstance(raw, Mapping):
        problems.add(where, f"expected object, got {type(raw).__name__}")
        return None
    identity = {
        key: _opt(raw, key, str, where, problems)
        for key in ("_id", "integrationKey", "projectKey", "environmentKey")
    }
    missing = [key for key, value in identity.items() if not value]
    if missing:
        problems.add(
            where, f"cannot identify the integration: missing {', '.join(missing)}"
        )
        return None
    if identity["_id"].startswith(RESERVED_ID_PREFIX):
        problems.add(f"{where}._id", f"an id may not start with {RESERVED_ID_PREFIX!r}")
        return None
    kind = identity["integrationKey"]
    if kind not in KINDS:
        problems.add(f"{where}.integrationKey", f"unknown integration kind {kind!r}")
        return None
    on = _opt(raw, "on", bool, where, problems)
    return Integration(
        id=identity["_id"],
        kind=kind,
        project=identity["projectKey"],
        environment=identity["environmentKey"],
        name=_opt(raw, "name", str, where, problems) or "",
        on=True if on is None else on,
        version=_opt(raw, "version", int, where, problems),
        status=parse_status(raw.get("_status"), f"{where}._status", problems),
        settings=parse_settings(
            kind, raw.get("config"), f"{where}.config", problems, summary=summary
        ),
    )


def parse_integration_list(raw: Any, problems: Problems) -> list[Integration]:
    """Parse the list reply; keeps every item that can be identified, once.

    A reply that cannot be the list is an ApiError (MALFORMED), never "no
    integrations": no `items` array, more than MAX_LIST_ITEMS items, or items
    of which none can be used. Only `"items": []` means there are none.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("items"), list):
        problems.add("items", "the reply has no items array")
        raise ApiError(ApiErrorKind.MALFORMED, "the list reply has no items array")
    items = raw["items"]
    if len(items) > MAX_LIST_ITEMS:
        problems.add("items", f"{len(items)} items, more than {MAX_LIST_ITEMS}")
        raise ApiError(
            ApiErrorKind.MALFORMED,
            f"the list reply has {len(items)} items, more than {MAX_LIST_ITEMS}",
        )
    seen: dict[str, Integration] = {}
    for index, item in enumerate(items):
        integration = parse_integration(item, f"items.{index}", problems, summary=True)
        if integration is None:
            continue
        if integration.id in seen:
            problems.add(
                f"items.{index}._id", f"duplicate id {integration.id}, kept the first"
            )
            continue
        seen[integration.id] = integration
    if items and not seen:
        raise ApiError(
            ApiErrorKind.MALFORMED,
            f"none of the {len(items)} listed items can be used",
        )
    return list(seen.values())


def parse_environment(
    raw: Any, project: str, key: str, problems: Problems
) -> Environment | None:
    """Parse an environment reply; keeps only `_id`, never `apiKey` or `mobileKey`."""
    if not isinstance(raw, Mapping):
        problems.add("environment", f"expected object, got {type(raw).__name__}")
        return None
    client_side_id = _opt(raw, "_id", str, "environment", problems)
    if not client_side_id:
        problems.add("environment._id", "missing")
        return None
    return Environment(project=project, key=key, client_side_id=client_side_id)


def parse_segment(raw: Any, key: str, problems: Problems) -> Segment | None:
    """Parse a segment reply."""
    if not isinstance(raw, Mapping):
        problems.add("segment", f"expected object, got {type(raw).__name__}")
        return None
    return Segment(
        key=_opt(raw, "key", str, "segment", problems) or key,
        generation=_opt(raw, "generation", int, "segment", problems),
        unbounded=bool(_opt(raw, "unbounded", bool, "segment", problems)),
        context_kind=_opt(raw, "unboundedContextKind", str, "segment", problems)
        or "user",
    )

"""DynamoDB probe: the metadata read an SDK does, plus the table checks it relies on.

Per probe: `DescribeTable` (cached between rounds, see below) checks that the
table serves reads (`ACTIVE`, or `UPDATING`, which AWS keeps "available for
data operations") with `namespace` (S, HASH) and `key` (S, RANGE); then
`GetItem` of the metadata item (namespace = key = `{prefix}:big_segments_metadata`,
consistent read, as the Go SDK does) reads `synchronizedOn` and applies the
Python SDK's `get_metadata` to it; then a second `GetItem`, the membership
read an SDK makes for an evaluation (namespace `{prefix}:big_segments_user`,
key the hash of a context no one uses), whose success is
`membership_read_ok`. Only `DescribeTable`, `GetItem` and, for a target with
a role, `sts:AssumeRole` are called.

Phases: `connect` is the creation of a shared client, credential resolution
and AssumeRole included, so it appears only on the probe that creates the
client; `read` covers the API calls. DynamoDB has no TLS or authentication
step of its own: every request is signed and carried over pooled HTTPS
connections, so bad credentials or TLS trouble surface in `read`.

`up` means DynamoDB answered an authenticated request: a call succeeded, or
failed with an error raised after the signature was accepted
(`ResourceNotFoundException`, `AccessDeniedException`, throttling, a
validation error). Invalid, expired or missing credentials, a refused
AssumeRole, and unreachable endpoints leave it 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Set
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from monitor.config import ProbeConfig
from monitor.probes.dynamodb.clients import AwsClients, ClientKey, client_config
from monitor.probes.dynamodb.failures import classify
from monitor.probes.dynamodb.table import check_canaries, query_membership
from monitor.probes.profiles import RawMetadata, profile_of
from monitor.probes.refresh import EveryInterval
from monitor.probes.result import CanaryResult, ProbeResult, Reason, Recorder, TableInfo
from monitor.sanitize import clamp_int64, describe_int, int64, safe_text
from monitor.store_keys import (
    DYNAMODB_PARTITION_KEY,
    DYNAMODB_SORT_KEY,
    DYNAMODB_SYNC_ATTRIBUTE,
    dynamodb_membership_namespace,
    dynamodb_metadata_key,
    membership_probe_hash,
)
from monitor.targets import DynamoDBEndpoint, Target

# DescribeTable answers change rarely (and AWS refreshes ItemCount only about
# every six hours), while its control-plane rate limit is shared by the
# whole account: a healthy table is described every 10 minutes, a table with
# any problem on every probe until it is healthy again.
DESCRIBE_EVERY = 600.0

# More connections per client than probes may be in flight against one
# endpoint (`per_host_concurrency`) would never be used; the cap keeps a
# generous per-host limit from opening hundreds of sockets per endpoint.
MAX_POOL_CONNECTIONS = 50

# When a probe finds several problems, the label shows the most basic one
# (the error text lists them all).
_PRIORITY = (
    Reason.DNS,
    Reason.REFUSED,
    Reason.TIMEOUT,
    Reason.TLS_HANDSHAKE,
    Reason.TLS_VERIFY,
    Reason.AUTH,
    Reason.NOT_FOUND,
    Reason.NO_PERMISSION,
    Reason.SCHEMA,
    Reason.PARSE,
    Reason.THROTTLED,
    Reason.REPLY_TOO_LARGE,
    Reason.OTHER,
)
# After a DescribeTable failing for one of these, GetItem cannot succeed either.
_FATAL = frozenset(_PRIORITY[:7])


# DescribeTable's text fields shown as label values are cut to this length.
MAX_TABLE_TEXT = 64


def _text(value: Any, default: str) -> str:
    """A DescribeTable text field, made safe and short for a label value."""
    if not isinstance(value, str):
        return default
    return safe_text(value[:MAX_TABLE_TEXT])


def _count(value: Any) -> int | None:
    """ItemCount when it is a count a float can carry; None otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return int64(value)
    return None


def _named(entries: Any, value_key: str) -> dict[str, str]:
    """KeySchema or AttributeDefinitions as {AttributeName: value}, malformed entries
    skipped."""
    if not isinstance(entries, list):
        return {}
    return {
        _text(e.get("AttributeName"), "?"): _text(e.get(value_key), "?")
        for e in entries
        if isinstance(e, dict)
    }


def check_table(table: dict[str, Any]) -> tuple[TableInfo, list[str]]:
    """What DescribeTable says, and what in it would break the SDKs.

    Every field is taken defensively (an endpoint may send anything): text is
    made safe and cut, an ItemCount that is not a 64-bit count is dropped.
    """
    billing = table.get("BillingModeSummary")
    info = TableInfo(
        table_status=_text(table.get("TableStatus"), "UNKNOWN"),
        billing_mode=_text(
            billing.get("BillingMode") if isinstance(billing, dict) else None,
            "PROVISIONED",
        ),
        item_count=_count(table.get("ItemCount")),
    )
    problems: list[str] = []
    if not info.readable:
        problems.append(
            f"table status is {info.table_status}; reads fail until it is ACTIVE "
            "(or UPDATING, which still serves them)"
        )
    schema = _named(table.get("KeySchema"), "KeyType")
    expected = {DYNAMODB_PARTITION_KEY: "HASH", DYNAMODB_SORT_KEY: "RANGE"}
    if schema != expected:
        found = ", ".join(f"{name} {kind}" for name, kind in schema.items()) or "none"
        problems.append(
            f"key schema is {found}; the SDKs need "
            f"{DYNAMODB_PARTITION_KEY} HASH, {DYNAMODB_SORT_KEY} RANGE"
        )
    types = _named(table.get("AttributeDefinitions"), "AttributeType")
    for name in (DYNAMODB_PARTITION_KEY, DYNAMODB_SORT_KEY):
        if name in types and types[name] != "S":
            problems.append(f"key attribute {name} is of type {types[name]}, not S")
    return info, problems


@dataclass
class _Findings:
    """What one probe has established so far."""

    up: bool = False
    read_ok: bool = False
    schema_ok: bool | None = None
    synchronized_on_ms: int | None = None
    table: TableInfo | None = None
    raw: RawMetadata | None = None  # the metadata read, for the SDK profile
    membership_read_ok: bool | None = None  # None: not attempted
    membership_error: str | None = None
    unreachable: bool = False  # a call got no HTTP answer at all
    problems: list[tuple[Reason, str]] = field(default_factory=list)

    def reason(self) -> Reason | None:
        present = {reason for reason, _ in self.problems}
        return next((r for r in _PRIORITY if r in present), None)

    def error(self) -> str | None:
        return "; ".join(message for _, message in self.problems) or None

    def unparsable(self, recorder: Recorder, message: str) -> None:
        """The metadata read returned what no SDK can read: reason parse."""
        recorder.end(ok=False, detail=message)
        self.read_ok = False
        self.schema_ok = False
        self.problems.append((Reason.PARSE, message))


async def _get_item(client: Any, table: str, namespace: str, key: str) -> Any:
    """One consistent GetItem of the item (`namespace`, `key`), as the probe reads."""
    return await client.get_item(
        TableName=table,
        Key={DYNAMODB_PARTITION_KEY: {"S": namespace}, DYNAMODB_SORT_KEY: {"S": key}},
        ConsistentRead=True,
    )


class DynamoDBProbe:
    """Probes DynamoDB big segment tables through shared, credentialed clients."""

    def __init__(
        self,
        logger: structlog.stdlib.BoundLogger,
        settings: ProbeConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = logger
        self._clock = clock
        self._settings = settings
        self._clients = self._make_clients(settings)
        self._retired: list[AwsClients] = []  # replaced by a reload; closed at close()
        self._memberships: EveryInterval[bool | None] = EveryInterval(
            settings.health_interval
        )
        self._query_denied: set[str] = set()
        # (client, table) -> (DescribeTable's Table, when it was read)
        self._tables: dict[tuple[ClientKey, str], tuple[dict[str, Any], float]] = {}

    @property
    def open_clients(self) -> int:
        """How many DynamoDB clients are open (one per region/endpoint/role).

        Clients retired by a reload count until `close()`: they are still open.
        """
        return sum(c.open_clients for c in [self._clients, *self._retired])

    @property
    def assume_role_calls(self) -> int:
        """STS AssumeRole requests sent since start (or the last close)."""
        return self._clients.assume_role_calls

    def _make_clients(self, settings: ProbeConfig) -> AwsClients:
        return AwsClients(
            client_config(
                settings.timeout,
                min(settings.per_host_concurrency, MAX_POOL_CONNECTIONS),
            ),
            self._log,
            clock=self._clock,
        )

    def reconfigure(self, settings: ProbeConfig) -> None:
        """Take reloaded settings; clients carry timeouts and pool size: rebuild them.

        The old clients may still serve probes in flight: they are closed with
        the probe, not now.
        """
        self._memberships.interval = settings.health_interval
        if settings != self._settings:
            self._retired.append(self._clients)
            self._clients = self._make_clients(settings)
            self._tables.clear()
        self._settings = settings

    def prune(self, present: Set[str]) -> None:
        """Forget the membership samples and Query denials of departed targets.

        DescribeTable's cache is per client and table, not per target: it is
        emptied by a reload and refreshed every health interval.
        """
        self._memberships.prune(present)
        self._query_denied &= present

    async def close(self) -> None:
        """Close every shared client, retired ones included."""
        self._tables.clear()
        for clients in [*self._retired, self._clients]:
            await clients.close()
        self._retired.clear()

    async def run(self, target: Target, recorder: Recorder) -> ProbeResult:
        """Probe `target` once; store trouble comes back as a result, never raised."""
        endpoint = target.endpoint
        assert isinstance(endpoint, DynamoDBEndpoint)  # noqa: S101 -- the runner dispatches by kind
        key = ClientKey.of(endpoint)
        found = _Findings()
        client = self._clients.cached(key)
        if client is None:
            recorder.begin("connect")
            try:
                client = await self._clients.client(key)
            except (BotoCoreError, ClientError, ValueError) as err:
                # botocore raises a bare ValueError for a malformed endpoint_url.
                reason, message, _ = classify(err)
                recorder.end(ok=False, detail=message)
                found.problems.append((reason, message))
                return self._result(found, recorder)
            recorder.end()
        table_key = (key, endpoint.table)
        # An empty prefix is laid out as the target's SDK lays it out.
        empty = profile_of(target.sdk).dynamodb_empty_prefix
        await self._describe(client, table_key, found, recorder)
        if not found.unreachable and not any(
            reason in _FATAL for reason, _ in found.problems
        ):
            await self._read_metadata(
                client, endpoint.table, target.prefix, found, recorder, empty=empty
            )
            if not found.unreachable:
                await self._read_membership(
                    client, endpoint.table, target.prefix, found, recorder, empty=empty
                )
        canaries: tuple[CanaryResult, ...] = ()
        if found.read_ok:
            await self._membership(client, target, recorder)
            if target.canaries:
                recorder.begin("canaries")
                canaries = await check_canaries(
                    client, endpoint.table, target.prefix, target.canaries, empty
                )
                recorder.end()
        if found.problems or (found.table and found.table.table_status != "ACTIVE"):
            # Look at the table afresh next time: a problem, or a status in
            # transition (UPDATING) whose end the status series should show.
            self._tables.pop(table_key, None)
        return replace(
            self._result(found, recorder),
            membership_present=self._memberships.get(target.id),
            canaries=canaries,
        )

    async def _membership(
        self, client: Any, target: Target, recorder: Recorder
    ) -> None:
        """The membership sample, every health_interval (a Query, when permitted)."""
        if not self._memberships.due(target.id):
            return
        endpoint = target.endpoint
        assert isinstance(endpoint, DynamoDBEndpoint)  # noqa: S101 -- checked by run()
        recorder.begin("membership")
        present: bool | None = None
        try:
            present = await query_membership(
                client,
                endpoint.table,
                target.prefix,
                profile_of(target.sdk).dynamodb_empty_prefix,
            )
            recorder.end(detail=f"present={present}")
        except (BotoCoreError, ClientError) as err:
            _, message, _ = classify(err)
            recorder.end(ok=False, detail=message)
            if target.id not in self._query_denied:
                self._query_denied.add(target.id)
                self._log.info(
                    "dynamodb.query_failed", integration_id=target.id, error=message
                )
        self._memberships.put(target.id, present)

    async def _describe(
        self,
        client: Any,
        table_key: tuple[ClientKey, str],
        found: _Findings,
        recorder: Recorder,
    ) -> None:
        """DescribeTable (or its cached answer) and the schema checks on it."""
        now = self._clock()
        cached = self._tables.get(table_key)
        if cached is not None and now - cached[1] < DESCRIBE_EVERY:
            table = cached[0]
        else:
            recorder.begin("read")
            try:
                response = await client.describe_table(TableName=table_key[1])
            except (BotoCoreError, ClientError) as err:
                reason, message, authenticated = classify(err)
                recorder.end(ok=False, detail=message)
                found.up = found.up or authenticated
                recorder.authenticated = found.up
                found.problems.append((reason, message))
                # No HTTP answer at all (a reset, a reply cut short): GetItem
                # would meet the same connection trouble, so don't spend the
                # deadline on it.
                found.unreachable = isinstance(err, BotoCoreError)
                return
            table = response["Table"]
            found.up = recorder.authenticated = True
            recorder.end(detail=f"DescribeTable: {table.get('TableStatus')}")
            self._tables[table_key] = (table, now)
        found.table, problems = check_table(table)
        found.schema_ok = not problems
        found.problems.extend((Reason.SCHEMA, problem) for problem in problems)
        if table.get("ItemCount") is not None and found.table.item_count is None:
            found.problems.append(
                (Reason.PARSE, "DescribeTable's ItemCount is not a 64-bit count")
            )

    async def _read_metadata(
        self,
        client: Any,
        table: str,
        prefix: str,
        found: _Findings,
        recorder: Recorder,
        *,
        empty: str,
    ) -> None:
        """GetItem of the metadata item, read exactly as the Python SDK reads it."""
        key = dynamodb_metadata_key(prefix, empty)
        recorder.begin("read")
        try:
            response = await _get_item(client, table, key, key)
        except (BotoCoreError, ClientError) as err:
            reason, message, authenticated = classify(err)
            recorder.end(ok=False, detail=message)
            found.up = recorder.authenticated = found.up or authenticated
            found.problems.append((reason, message))
            return
        found.up = recorder.authenticated = True
        found.read_ok = True
        item = response.get("Item")
        attribute = None if item is None else item.get(DYNAMODB_SYNC_ATTRIBUTE)
        if item is not None and not (
            isinstance(item, dict) and isinstance(attribute, dict | None)
        ):
            found.unparsable(recorder, f"GetItem returned a malformed item {key}")
            return
        found.raw = _raw(attribute)
        if item is None:
            recorder.end(detail=f"GetItem: no item {key} (never synchronized)")
            return
        if attribute is None:
            recorder.end(detail=f"GetItem: {key} has no {DYNAMODB_SYNC_ATTRIBUTE}")
            return
        value = attribute.get("N")
        if value is not None and not isinstance(value, str):
            # DynamoDB sends a number as a string of digits; anything else
            # comes from a broken or hostile endpoint.
            found.unparsable(
                recorder,
                f"{DYNAMODB_SYNC_ATTRIBUTE} is a JSON {type(value).__name__}, "
                "not a number string",
            )
            return
        if value is None:
            # The SDKs read only N and silently treat anything else as "never
            # synchronized": available and stale follow them, schema says why.
            kinds = safe_text(", ".join(map(str, attribute))[:60]) or "none"
            message = (
                f"{DYNAMODB_SYNC_ATTRIBUTE} is of type {kinds}; the SDKs read only N "
                "and treat the store as never synchronized"
            )
            recorder.end(ok=False, detail=message)
            found.schema_ok = False
            found.problems.append((Reason.SCHEMA, message))
            return
        try:
            # int() exactly as the Python SDK parses it; it raises on "1.5".
            found.synchronized_on_ms = int(value)
        except ValueError:
            found.unparsable(
                recorder,
                f"{DYNAMODB_SYNC_ATTRIBUTE} is {safe_text(value[:40])!r}, not "
                "integer Unix milliseconds; the SDKs fail to read it",
            )
            return
        if int64(found.synchronized_on_ms) is None:
            # The SDK may still read it (the profile judges the raw value);
            # what the monitor shows is clamped to 64 bits.
            message = (
                f"{DYNAMODB_SYNC_ATTRIBUTE} is "
                f"{describe_int(found.synchronized_on_ms)}, not Unix milliseconds"
            )
            found.synchronized_on_ms = clamp_int64(found.synchronized_on_ms)
            recorder.end(ok=False, detail=message)
            found.problems.append((Reason.PARSE, message))
            return
        recorder.end(detail=f"GetItem: {DYNAMODB_SYNC_ATTRIBUTE}={value}")

    async def _read_membership(
        self,
        client: Any,
        table: str,
        prefix: str,
        found: _Findings,
        recorder: Recorder,
        *,
        empty: str,
    ) -> None:
        """GetItem of a membership item, as an SDK reads a context's membership.

        The context is one no one uses (`membership_probe_hash`): the item
        does not exist, and the read proves only that membership reads work.
        """
        namespace = dynamodb_membership_namespace(prefix, empty)
        recorder.begin("read")
        try:
            await _get_item(client, table, namespace, membership_probe_hash())
        except (BotoCoreError, ClientError) as err:
            reason, message, authenticated = classify(err)
            recorder.end(ok=False, detail=f"membership read: {message}")
            found.up = recorder.authenticated = found.up or authenticated
            found.membership_read_ok = False
            found.membership_error = message
            found.unreachable = isinstance(err, BotoCoreError)
            if not any(message == known for _, known in found.problems):
                found.problems.append((reason, f"membership read: {message}"))
            return
        found.up = recorder.authenticated = True
        found.membership_read_ok = True
        recorder.end(detail=f"GetItem: membership {namespace} (read works)")

    def _result(self, found: _Findings, recorder: Recorder) -> ProbeResult:
        if found.membership_read_ok is None:
            # Not attempted: the table or the endpoint already failed, and an
            # SDK's membership read fails the same way.
            found.membership_read_ok = False
            found.membership_error = found.error()
        return ProbeResult(
            finished_at=self._clock(),
            duration=recorder.elapsed(),
            up=found.up,
            read_ok=found.read_ok,
            schema_ok=found.schema_ok,
            synchronized_on_ms=found.synchronized_on_ms,
            reason=found.reason(),
            error=found.error(),
            phases=tuple(recorder.phases.items()),
            steps=tuple(recorder.steps),
            table=found.table,
            raw=found.raw,
            membership_read_ok=found.membership_read_ok,
            membership_error=found.membership_error,
        )


def _raw(attribute: dict[str, Any] | None) -> RawMetadata:
    """The `synchronizedOn` attribute as read: its type and its text."""
    if not attribute:
        return RawMetadata("dynamodb", None)
    kind, value = next(iter(attribute.items()))
    text = value if isinstance(value, str) else repr(value)[:60]
    return RawMetadata("dynamodb", safe_text(text), safe_text(str(kind)[:8]))

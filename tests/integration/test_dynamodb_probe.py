"""The DynamoDB probe against moto over real HTTP: values, reasons, IAM, roles, SDK agreement."""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import replace
from typing import Any

import pytest
import structlog
from botocore.exceptions import ClientError
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.sts.models import sts_backends

from devtools.servers.moto_server import (
    MotoServer,
    create_bigsegment_table,
    dynamodb_client,
    iam_enforced,
    make_iam_user,
    put_metadata,
)
from monitor.config import ProbeConfig, Sdk
from monitor.export.report import MARKER_ONLY_NOTE, MEMBERSHIP_FAILING_NOTE, probe_view
from monitor.probes.dynamodb.failures import classify
from monitor.probes.dynamodb.probe import DESCRIBE_EVERY, DynamoDBProbe
from monitor.probes.result import ProbeResult
from monitor.probes.runner import ProbeRunner, TargetRecord
from monitor.targets import DynamoDBEndpoint, Target
from tests.support.clock import FakeClock, now_ms
from tests.support.endpoints import UNRESOLVABLE_HOST, BlackholeServer
from tests.support.scrape import Scrape, assert_status
from tests.support.sdk import sdk_store_status
from tests.support.state import state_of
from tests.support.targets import static_target

TABLE = "ld-big-segments"
PREFIX = "6543210fedcba98765432100"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ld-store-monitor"
STALE_AFTER = 120.0


def endpoint_of(url: str, table: str = TABLE, **overrides: Any) -> DynamoDBEndpoint:
    """An endpoint reaching `table` through `url` in us-east-1."""
    fields: dict[str, Any] = {"table": table, "region": REGION, "endpoint_url": url}
    fields.update(overrides)
    return DynamoDBEndpoint(**fields)


def new_probe(
    timeout: float = 2.0, clock: Callable[[], float] = time.time
) -> DynamoDBProbe:
    """A probe with test settings."""
    return DynamoDBProbe(structlog.get_logger("test"), settings(timeout), clock=clock)


def settings(timeout: float) -> ProbeConfig:
    """Probe settings with a short timeout."""
    return ProbeConfig(interval=10, timeout=timeout)


async def run_round(
    probe: DynamoDBProbe, targets: Sequence[Target], timeout: float = 2.0
) -> ProbeRunner:
    """One runner round over `targets` with `probe`; a fresh runner each time."""
    log = structlog.get_logger("test")
    runner = ProbeRunner({"dynamodb": probe}, settings(timeout), log)
    await runner.run_round(targets)
    return runner


def samples(runner: ProbeRunner, target: Target) -> Scrape:
    """The exported series of `target`."""
    return Scrape.of(state_of(runner, (target,), stale_after=STALE_AFTER))


def result_of(runner: ProbeRunner, target: Target) -> ProbeResult:
    """The runner's latest result for `target`."""
    result = runner.records[target.id].result
    assert result is not None
    return result


async def probe_once(
    endpoint: DynamoDBEndpoint, timeout: float = 2.0, prefix: str = PREFIX
) -> tuple[ProbeResult, Scrape]:
    """Probe one target once with a fresh probe (closed after); result and series."""
    probe = new_probe(timeout)
    target = static_target(endpoint, prefix=prefix)
    try:
        runner = await run_round(probe, [target], timeout)
    finally:
        await probe.close()
    return result_of(runner, target), samples(runner, target)


@pytest.fixture
def moto(clean_moto: MotoServer, aws_env: None) -> MotoServer:
    """An empty moto server and the fake AWS environment."""
    return clean_moto


@pytest.fixture
def table(moto: MotoServer) -> str:
    """A correct big segment table in moto; returns moto's endpoint URL."""
    create_bigsegment_table(moto.endpoint_url, TABLE)
    return moto.endpoint_url


# -- metadata item states ------------------------------------------------------------


async def test_fresh_table_is_up_available_and_not_stale(table: str) -> None:
    """synchronizedOn 10 s old: healthy, schema ok, table info and phases exported."""
    synced = now_ms() - 10_000
    put_metadata(table, TABLE, PREFIX, synced)
    result, values = await probe_once(endpoint_of(table))
    assert_status(values, up=1, available=1, stale=0)
    assert result.reason is None
    assert values.value("ld_store_probe_schema_ok") == 1
    assert values.value("ld_store_synchronized_on_timestamp_seconds") == synced / 1000
    age = values.value("ld_store_sync_age_seconds")
    assert age is not None
    assert 9 <= age < 30
    assert (
        values.value("ld_store_dynamodb_table_info", billing_mode="PAY_PER_REQUEST")
        == 1
    )
    assert values.value("ld_store_dynamodb_table_readable", table_status="ACTIVE") == 1
    assert values.value("ld_store_dynamodb_table_items") == 1
    assert {phase for phase, _ in result.phases} == {"connect", "read"}
    assert values.value("ld_store_probe_last_success_timestamp_seconds") is not None


async def test_old_synchronized_on_is_stale(table: str) -> None:
    """synchronizedOn older than stale_after: available but stale, still no failure."""
    put_metadata(table, TABLE, PREFIX, now_ms() - 600_000)
    result, values = await probe_once(endpoint_of(table))
    assert_status(values, up=1, available=1, stale=1)
    assert result.reason is None


async def test_missing_metadata_item_is_available_and_stale(table: str) -> None:
    """No metadata item (never synced): available and stale, no timestamp series."""
    result, values = await probe_once(endpoint_of(table))
    assert_status(values, up=1, available=1, stale=1)
    assert values.value("ld_store_synchronized_on_timestamp_seconds") is None
    assert result.reason is None
    assert values.value("ld_store_probe_schema_ok") == 1


async def test_item_without_synchronized_on_is_available_and_stale(table: str) -> None:
    """A metadata item lacking synchronizedOn reads like a missing item."""
    put_metadata(table, TABLE, PREFIX, None)
    result, values = await probe_once(endpoint_of(table))
    assert_status(values, up=1, available=1, stale=1)
    assert result.synchronized_on_ms is None
    assert result.reason is None


async def test_string_synchronized_on_is_stale_and_a_schema_failure(
    table: str,
) -> None:
    """synchronizedOn of type S: the SDK sees never-synced (available, stale); schema 0."""
    put_metadata(table, TABLE, PREFIX, now_ms(), attr_type="S")
    result, values = await probe_once(endpoint_of(table))
    assert_status(values, up=1, available=1, stale=1)
    assert values.value("ld_store_probe_schema_ok") == 0
    assert values.value("ld_store_probe_failures_total", reason="schema") == 1
    assert result.error is not None
    assert "type S" in result.error


async def test_zero_synchronized_on_is_stale(table: str) -> None:
    """synchronizedOn 0 parses to 0, which is long past: available and stale."""
    put_metadata(table, TABLE, PREFIX, 0)
    result, values = await probe_once(endpoint_of(table))
    assert_status(values, up=1, available=1, stale=1)
    assert result.synchronized_on_ms == 0
    assert result.reason is None


async def test_future_synchronized_on_is_not_stale(table: str) -> None:
    """A synchronizedOn in the future is fresh, as in the SDK (negative age)."""
    put_metadata(table, TABLE, PREFIX, now_ms() + 3_600_000)
    _, values = await probe_once(endpoint_of(table))
    assert_status(values, up=1, available=1, stale=0)
    age = values.value("ld_store_sync_age_seconds")
    assert age is not None
    assert age < 0


async def test_non_integer_synchronized_on_is_a_parse_failure(table: str) -> None:
    """N "1.5" makes the SDK's int() raise: unavailable, reason parse, schema 0."""
    put_metadata(table, TABLE, PREFIX, "1.5")
    result, values = await probe_once(endpoint_of(table))
    assert_status(values, up=1, available=0, stale=0)
    assert result.reason == "parse"
    assert values.value("ld_store_probe_schema_ok") == 0
    assert values.value("ld_store_probe_failures_total", reason="parse") == 1


async def test_empty_prefix_reads_the_bare_metadata_item(table: str) -> None:
    """No prefix: the item is namespace = key = "big_segments_metadata"."""
    put_metadata(table, TABLE, "", now_ms())
    put_metadata(table, TABLE, PREFIX, now_ms() - 600_000)
    _, values = await probe_once(endpoint_of(table), prefix="")
    assert_status(values, up=1, available=1, stale=0)


# -- the table itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_schema", "read_ok"),
    [
        ("wrong_names", False),
        # Real DynamoDB rejects an S value for an N key; moto's GetItem does
        # not check key types, so the read "succeeds" and finds no item.
        ("wrong_types", True),
        ("hash_only", False),
    ],
)
async def test_wrong_key_schema_is_a_schema_failure(
    moto: MotoServer, key_schema: Any, read_ok: bool
) -> None:
    """Each broken key schema: schema_ok 0, reason schema; available/stale follow GetItem."""
    create_bigsegment_table(moto.endpoint_url, TABLE, key_schema=key_schema)
    result, values = await probe_once(endpoint_of(moto.endpoint_url))
    assert result.reason == "schema"
    assert values.value("ld_store_probe_schema_ok") == 0
    assert values.value("ld_store_probe_failures_total", reason="schema") == 1
    assert values.value("ld_store_probe_failures_total", reason="other") is None
    assert result.read_ok is read_ok
    if read_ok:
        assert_status(values, up=1, available=1, stale=1)
    else:
        assert_status(values, up=1, available=0, stale=0)
        assert result.error is not None
        assert "ValidationException" in result.error
    assert result.table is not None


async def test_swapped_key_roles_are_a_schema_failure_even_when_reads_work(
    moto: MotoServer,
) -> None:
    """key HASH + namespace RANGE: GetItem works (available follows it) yet schema 0."""
    url = moto.endpoint_url
    with closing(dynamodb_client(url)) as client:
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "namespace", "AttributeType": "S"},
                {"AttributeName": "key", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "key", "KeyType": "HASH"},
                {"AttributeName": "namespace", "KeyType": "RANGE"},
            ],
            BillingMode="PROVISIONED",
            ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        )
    put_metadata(url, TABLE, PREFIX, now_ms())
    result, values = await probe_once(endpoint_of(url))
    assert result.read_ok
    assert result.reason == "schema"
    assert values.value("ld_store_probe_schema_ok") == 0
    assert_status(values, up=1, available=1, stale=0)
    assert values.value("ld_store_dynamodb_table_info", billing_mode="PROVISIONED") == 1
    assert values.value("ld_store_dynamodb_table_readable", table_status="ACTIVE") == 1


async def test_missing_table_is_not_found_and_up(moto: MotoServer) -> None:
    """No such table: reason not_found; DynamoDB answered as the monitor, so up 1."""
    result, values = await probe_once(endpoint_of(moto.endpoint_url))
    assert result.reason == "not_found"
    assert_status(values, up=1, available=0, stale=0)
    assert values.value("ld_store_probe_success") == 0
    assert values.value("ld_store_membership_read_ok") == 0
    assert values.value("ld_store_probe_failures_total", reason="not_found") == 1
    assert values.value("ld_store_probe_schema_ok") is None
    assert result.table is None


# -- the membership read: GetItem of a membership item ---------------------------------


async def test_every_probe_reads_membership_and_succeeds(table: str) -> None:
    """A healthy table: the membership GetItem works, membership 1, success 1."""
    put_metadata(table, TABLE, PREFIX, now_ms())
    result, values = await probe_once(endpoint_of(table))
    assert_status(values, up=1, available=1, stale=0)
    assert result.membership_read_ok is True
    assert values.value("ld_store_membership_read_ok") == 1
    assert values.value("ld_store_probe_success") == 1


async def test_a_non_integer_marker_fails_python_but_membership_reads_work(
    table: str,
) -> None:
    """N "1.5": Python cannot parse it (success 0), membership reads still work."""
    put_metadata(table, TABLE, PREFIX, "1.5")
    result, values = await probe_once(endpoint_of(table))
    assert values.value("ld_store_probe_success") == 0
    assert values.value("ld_store_membership_read_ok") == 1
    notes = probe_view(result, TargetRecord(), time.time(), STALE_AFTER).notes
    assert MARKER_ONLY_NOTE in [note.text for note in notes]
    # Node's parseInt reads "1.5" as 1: for its users the whole read succeeds.
    assert result.success(Sdk.NODE)


async def test_a_denied_membership_read_fails_membership_only(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Metadata GetItem fine, membership GetItem denied: available 1, membership 0."""
    put_metadata(table, TABLE, PREFIX, now_ms())
    original = DynamoDBBackend.get_item

    def get_item(
        self: DynamoDBBackend, table_name: str, keys: dict[str, Any], *rest: Any
    ) -> Any:
        if keys["namespace"].get("S", "").endswith("big_segments_user"):
            raise JsonRESTError("AccessDeniedException", "not on membership items")
        return original(self, table_name, keys, *rest)

    monkeypatch.setattr(DynamoDBBackend, "get_item", get_item)
    result, values = await probe_once(endpoint_of(table))
    assert_status(values, up=1, available=1, stale=0)
    assert result.reason == "no_permission"
    assert values.value("ld_store_membership_read_ok") == 0
    assert values.value("ld_store_probe_success") == 0
    view = probe_view(result, TargetRecord(), time.time(), STALE_AFTER)
    assert any(note.text.startswith(MEMBERSHIP_FAILING_NOTE) for note in view.notes)


def describe_as(monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    """Make moto's DescribeTable report `status` (moto always says ACTIVE)."""
    original = Table.describe

    def describe(self: Table, base_key: str = "TableDescription") -> dict[str, Any]:
        results = original(self, base_key)
        results[base_key]["TableStatus"] = status
        return results

    monkeypatch.setattr(Table, "describe", describe)


async def test_an_updating_table_serves_reads_and_is_no_failure(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TableStatus UPDATING still serves reads: no reason, schema ok, readable 1."""
    put_metadata(table, TABLE, PREFIX, now_ms())
    describe_as(monkeypatch, "UPDATING")
    result, values = await probe_once(endpoint_of(table))
    assert result.reason is None
    assert result.error is None
    assert values.value("ld_store_probe_schema_ok") == 1
    assert_status(values, up=1, available=1, stale=0)
    assert (
        values.value("ld_store_dynamodb_table_readable", table_status="UPDATING") == 1
    )


async def test_a_creating_table_is_a_schema_failure(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TableStatus CREATING fails reads: schema 0, reason schema, readable 0."""
    put_metadata(table, TABLE, PREFIX, now_ms())
    describe_as(monkeypatch, "CREATING")
    result, values = await probe_once(endpoint_of(table))
    assert result.reason == "schema"
    assert result.error is not None
    assert "CREATING" in result.error
    assert values.value("ld_store_probe_schema_ok") == 0
    assert (
        values.value("ld_store_dynamodb_table_readable", table_status="CREATING") == 0
    )


# -- IAM and credentials ---------------------------------------------------------------


@pytest.fixture
def use_keys(monkeypatch: pytest.MonkeyPatch) -> Callable[[tuple[str, str]], None]:
    """Put an access key pair in the environment the credential chain reads."""

    def use(keys: tuple[str, str]) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys[0])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys[1])

    return use


async def test_least_privilege_user_gets_a_healthy_probe(
    table: str, use_keys: Callable[[tuple[str, str]], None]
) -> None:
    """Only dynamodb:DescribeTable + dynamodb:GetItem, IAM enforced: fully healthy."""
    put_metadata(table, TABLE, PREFIX, now_ms())
    use_keys(make_iam_user(table, ["dynamodb:DescribeTable", "dynamodb:GetItem"]))
    with iam_enforced(table):
        result, values = await probe_once(endpoint_of(table))
    assert result.reason is None, result.error
    assert_status(values, up=1, available=1, stale=0)
    assert values.value("ld_store_probe_schema_ok") == 1
    assert values.value("ld_store_probe_success") == 1  # membership read included


async def test_user_without_get_item_is_no_permission(
    table: str, use_keys: Callable[[tuple[str, str]], None]
) -> None:
    """DescribeTable allowed, GetItem denied: no_permission, up 1, the SDK's read fails."""
    put_metadata(table, TABLE, PREFIX, now_ms())
    use_keys(make_iam_user(table, ["dynamodb:DescribeTable"]))
    with iam_enforced(table):
        result, values = await probe_once(endpoint_of(table))
    assert result.reason == "no_permission"
    assert_status(values, up=1, available=0, stale=0)
    assert values.value("ld_store_probe_schema_ok") == 1
    assert values.value("ld_store_membership_read_ok") == 0
    assert values.value("ld_store_probe_success") == 0
    assert result.error is not None
    assert "GetItem" in result.error


async def test_user_without_describe_table_is_no_permission(
    table: str, use_keys: Callable[[tuple[str, str]], None]
) -> None:
    """GetItem allowed, DescribeTable denied: no_permission, but the SDK's read counts."""
    put_metadata(table, TABLE, PREFIX, now_ms())
    use_keys(make_iam_user(table, ["dynamodb:GetItem"]))
    with iam_enforced(table):
        result, values = await probe_once(endpoint_of(table))
    assert result.reason == "no_permission"
    assert_status(values, up=1, available=1, stale=0)
    assert values.value("ld_store_probe_schema_ok") is None
    assert result.error is not None
    assert "DescribeTable" in result.error


@pytest.mark.parametrize("which", ["unknown_key_id", "wrong_secret"])
async def test_bad_credentials_are_auth(
    table: str, use_keys: Callable[[tuple[str, str]], None], which: str
) -> None:
    """An unknown access key id or a wrong secret: reason auth, up 0, no secret in text."""
    key_id, secret = make_iam_user(
        table, ["dynamodb:DescribeTable", "dynamodb:GetItem"]
    )
    bad = (
        ("AKIAUNKNOWNUNKNOWN00", secret)
        if which == "unknown_key_id"
        else (key_id, "x" * 40)
    )
    use_keys(bad)
    with iam_enforced(table):
        result, values = await probe_once(endpoint_of(table))
    assert result.reason == "auth"
    assert_status(values, up=0, available=0, stale=0)
    assert result.error is not None
    assert bad[1] not in result.error
    assert secret not in result.error


async def test_missing_credentials_are_auth(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials anywhere in the chain: reason auth in the connect phase."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result, values = await probe_once(endpoint_of(table))
    assert result.reason == "auth"
    assert_status(values, up=0, available=0, stale=0)
    assert [(s.name, s.ok) for s in result.steps] == [("connect", False)]


# -- unreachable endpoints --------------------------------------------------------------


async def test_endpoint_that_never_answers_is_timeout(
    aws_env: None, blackhole: BlackholeServer
) -> None:
    """Accepts TCP, never answers: reason timeout within the probe timeout."""
    timeout = 0.4
    result, values = await probe_once(
        endpoint_of(f"http://{blackhole.address}"), timeout=timeout
    )
    assert result.reason == "timeout"
    assert result.duration < timeout + 0.3
    assert_status(values, up=0, available=0, stale=0)


async def test_closed_port_is_refused(aws_env: None, closed_port: int) -> None:
    """Nothing listening: reason refused, up 0."""
    result, values = await probe_once(
        endpoint_of(f"http://127.0.0.1:{closed_port}"), timeout=3.0
    )
    assert result.reason == "refused", result.error
    assert_status(values, up=0, available=0, stale=0)


async def test_unresolvable_endpoint_is_dns(aws_env: None) -> None:
    """An endpoint host that does not resolve: reason dns."""
    result, _ = await probe_once(
        endpoint_of(f"http://{UNRESOLVABLE_HOST}:8000"), timeout=3.0
    )
    assert result.reason == "dns", result.error
    assert not result.up


async def test_malformed_endpoint_url_is_other(aws_env: None) -> None:
    """An endpoint_url botocore refuses is reported as other, not a crashed probe."""
    result, _ = await probe_once(endpoint_of("not a url"))
    assert result.reason == "other"
    assert result.error is not None
    assert "Invalid endpoint" in result.error


@pytest.mark.parametrize(
    ("operation", "code", "status", "reason", "authenticated"),
    [
        ("GetItem", "ProvisionedThroughputExceededException", 400, "throttled", True),
        ("DescribeTable", "ThrottlingException", 400, "throttled", True),
        ("GetItem", "RequestLimitExceeded", 400, "throttled", True),
        ("GetItem", "ExpiredTokenException", 400, "auth", False),
        ("GetItem", "UnrecognizedClientException", 400, "auth", False),
        ("GetItem", "AccessDeniedException", 400, "no_permission", True),
        ("GetItem", "ResourceNotFoundException", 400, "not_found", True),
        ("GetItem", "InternalServerError", 500, "other", False),
        ("AssumeRole", "AccessDenied", 403, "no_permission", False),
        ("AssumeRole", "ExpiredToken", 403, "auth", False),
    ],
)
def test_aws_error_codes_map_to_reasons(
    operation: str, code: str, status: int, reason: str, authenticated: bool
) -> None:
    """Codes moto cannot produce (throttling, expiry, 5xx) map to the documented reasons."""
    err = ClientError(
        {
            "Error": {"Code": code, "Message": "Signature quoted: token=SECRET"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )
    got_reason, message, got_authenticated = classify(err)
    assert (got_reason, got_authenticated) == (reason, authenticated)
    assert code in message
    if reason == "auth":
        assert "SECRET" not in message


# -- shared clients and caching -----------------------------------------------------------


async def test_targets_on_one_endpoint_share_a_client_and_close_releases_it(
    table: str,
) -> None:
    """Two tables behind one endpoint/region use one client; close() leaves nothing open."""
    create_bigsegment_table(table, "second")
    create_bigsegment_table(table, TABLE, region="us-west-2")
    put_metadata(table, TABLE, PREFIX, now_ms())
    put_metadata(table, "second", PREFIX, now_ms())
    probe = new_probe()
    first = static_target(endpoint_of(table), "a", PREFIX)
    second = static_target(endpoint_of(table, table="second"), "b", PREFIX)
    west = static_target(endpoint_of(table, region="us-west-2"), "c", PREFIX)
    try:
        runner = await run_round(probe, [first, second])
        assert probe.open_clients == 1
        assert all(result_of(runner, t).reason is None for t in (first, second))
        connects = [
            t for t in (first, second) if "connect" in dict(result_of(runner, t).phases)
        ]
        assert len(connects) == 1
        runner = await run_round(probe, [west])
        assert probe.open_clients == 2
        assert result_of(runner, west).reason is None
    finally:
        await probe.close()
    assert probe.open_clients == 0
    # An unclosed aiohttp session warns when it is collected: drop the last
    # references inside the block (refcounting collects at once).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del probe, runner
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_reconfigure_builds_new_clients_and_close_releases_the_retired_ones(
    table: str,
) -> None:
    """A reload with new probe settings gets fresh clients; the old ones close with the probe."""
    put_metadata(table, TABLE, PREFIX, now_ms())
    probe = new_probe(timeout=2.0)
    target = static_target(endpoint_of(table), prefix=PREFIX)
    try:
        await run_round(probe, [target])
        assert probe.open_clients == 1
        probe.reconfigure(settings(2.0))  # the same settings: nothing rebuilt
        await run_round(probe, [target])
        assert probe.open_clients == 1
        probe.reconfigure(settings(3.0))  # a new timeout lives in the client config
        runner = await run_round(probe, [target], timeout=3.0)
        assert result_of(runner, target).reason is None
        assert probe.open_clients == 2  # the retired client may still serve a probe
    finally:
        await probe.close()
    assert probe.open_clients == 0


async def test_describe_table_is_cached_and_refreshed_after_ten_minutes(
    table: str,
) -> None:
    """DescribeTable runs on the first probe, not the next, then again after DESCRIBE_EVERY."""
    put_metadata(table, TABLE, PREFIX, now_ms())
    clock = FakeClock(time.time())
    probe = new_probe(clock=clock)
    target = static_target(endpoint_of(table), prefix=PREFIX)

    async def read_steps() -> list[str]:
        runner = await run_round(probe, [target])
        result = result_of(runner, target)
        assert result.reason is None
        assert result.table is not None
        return [s.detail or "" for s in result.steps if s.name == "read"]

    try:
        first = await read_steps()
        second = await read_steps()
        clock.advance(DESCRIBE_EVERY + 1)
        third = await read_steps()
    finally:
        await probe.close()
    # Each probe reads the metadata item, then a membership item.
    assert [s.split(":")[0] for s in first] == ["DescribeTable", "GetItem", "GetItem"]
    assert [s.split(":")[0] for s in second] == ["GetItem", "GetItem"]
    assert [s.split(":")[0] for s in third] == ["DescribeTable", "GetItem", "GetItem"]


async def test_describe_table_is_repeated_after_an_error(moto: MotoServer) -> None:
    """A missing table is described on every probe, so its creation shows at once."""
    probe = new_probe()
    target = static_target(endpoint_of(moto.endpoint_url), prefix=PREFIX)
    try:
        missing = result_of(await run_round(probe, [target]), target)
        create_bigsegment_table(moto.endpoint_url, TABLE)
        created = result_of(await run_round(probe, [target]), target)
    finally:
        await probe.close()
    assert missing.reason == "not_found"
    assert created.reason is None
    assert created.schema_ok is True


# -- assuming a role ---------------------------------------------------------------------------


@pytest.fixture
def sts_at_moto(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """STS reached at moto through the standard AWS_ENDPOINT_URL_STS setting."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto.endpoint_url)
    return moto


def assumed_roles() -> list[Any]:
    """The AssumeRole calls moto's STS has served (account of ROLE_ARN)."""
    return list(sts_backends[ACCOUNT]["aws"].assumed_roles)


async def test_role_is_assumed_once_and_refreshed_before_expiry(
    sts_at_moto: MotoServer,
) -> None:
    """role_arn: AssumeRole on the first probe only, again when expiry nears."""
    url = sts_at_moto.endpoint_url
    create_bigsegment_table(url, TABLE)
    put_metadata(url, TABLE, PREFIX, now_ms())
    clock = FakeClock(time.time())
    probe = new_probe(clock=clock)
    target = static_target(
        endpoint_of(url, role_arn=ROLE_ARN, external_id="ext-id-1234"), prefix=PREFIX
    )
    try:
        first = result_of(await run_round(probe, [target]), target)
        second = result_of(await run_round(probe, [target]), target)
        calls_after_two = probe.assume_role_calls
        served_after_two = assumed_roles()
        # moto's role credentials last an hour; 55 minutes on, within the
        # SDK's 10-minute mandatory window, they must be renewed.
        clock.advance(55 * 60)
        third = result_of(await run_round(probe, [target]), target)
        calls_after_three = probe.assume_role_calls
        served_after_three = len(assumed_roles())
        # Back at real time the renewed credentials have ~an hour left.
        clock.now = time.time()
        fourth = result_of(await run_round(probe, [target]), target)
        probe_calls_after_four = probe.assume_role_calls
    finally:
        await probe.close()
    assert [r.reason for r in (first, second, third, fourth)] == [None] * 4
    assert first.up
    assert third.up
    assert calls_after_two == 1
    assert len(served_after_two) == 1
    assert served_after_two[0].role_arn == ROLE_ARN
    assert served_after_two[0].external_id == "ext-id-1234"
    # The fake clock stays 55 minutes ahead of moto's, so renewed credentials
    # look near expiry too and each request in that round renews them.
    assert calls_after_three > calls_after_two
    assert served_after_three == calls_after_three
    assert probe_calls_after_four == calls_after_three
    assert "connect" in dict(first.phases)
    assert "connect" not in dict(second.phases)


async def test_unreachable_sts_fails_the_connect_phase(
    table: str, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    """AssumeRole cannot reach STS: reason refused in connect, up 0, next probe retries."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{closed_port}")
    result, values = await probe_once(
        endpoint_of(table, role_arn=ROLE_ARN), timeout=3.0
    )
    assert result.reason == "refused", result.error
    assert_status(values, up=0, available=0, stale=0)
    assert [s.name for s in result.steps] == ["connect"]


# -- agreement with the LaunchDarkly SDK -------------------------------------------------------


def sdk_status(url: str, table: str, prefix: str) -> tuple[bool, bool]:
    """(available, stale) as the Python server SDK's own big segment manager reports it."""
    from ldclient.integrations import DynamoDB  # noqa: PLC0415 -- test-only dependency

    store = DynamoDB.new_big_segment_store(
        table,
        prefix,
        dynamodb_opts={
            "endpoint_url": url,
            "region_name": REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        },
    )
    try:
        return sdk_store_status(store, STALE_AFTER)
    finally:
        store._client.close()  # the SDK never closes its boto3 client


STATES: dict[str, Callable[[str], None] | None] = {
    "fresh": lambda url: put_metadata(url, TABLE, PREFIX, now_ms() - 5_000),
    "stale": lambda url: put_metadata(url, TABLE, PREFIX, now_ms() - 600_000),
    "missing_item": lambda url: None,
    "attribute_missing": lambda url: put_metadata(url, TABLE, PREFIX, None),
    "string_attribute": lambda url: put_metadata(
        url, TABLE, PREFIX, now_ms(), attr_type="S"
    ),
    "zero": lambda url: put_metadata(url, TABLE, PREFIX, 0),
    "future": lambda url: put_metadata(url, TABLE, PREFIX, now_ms() + 86_400_000),
    "non_integer": lambda url: put_metadata(url, TABLE, PREFIX, "1.5"),
    "table_missing": None,
    # DescribeTable says UPDATING (a capacity or index change): reads still work.
    "updating": lambda url: put_metadata(url, TABLE, PREFIX, now_ms() - 5_000),
}

# What both sides said when measured, (available, stale): pinned, so that
# agreement can never be two sides equally lost.
AGREED: dict[str, tuple[bool, bool]] = {
    "fresh": (True, False),
    "stale": (True, True),
    "missing_item": (True, True),
    "attribute_missing": (True, True),
    "string_attribute": (True, True),  # only N is read: as never synchronized
    "zero": (True, True),
    "future": (True, False),
    "non_integer": (False, False),  # int("1.5") raises in the SDK
    "table_missing": (False, False),
    "updating": (True, False),
}


@pytest.mark.parametrize("state", list(STATES))
async def test_monitor_agrees_with_the_sdk(
    state: str, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For each table state, the monitor's available/stale equal the SDK's own status."""
    url = moto.endpoint_url
    setup = STATES[state]
    if setup is not None:
        create_bigsegment_table(url, TABLE)
        setup(url)
    if state == "updating":
        describe_as(monkeypatch, "UPDATING")
    result, _ = await probe_once(endpoint_of(url))
    monitor = result.sdk_status(time.time(), STALE_AFTER)
    assert monitor == sdk_status(url, TABLE, PREFIX)
    assert monitor == AGREED[state]
    if state == "updating":
        assert result.table is not None
        assert result.table.table_status == "UPDATING"
        assert result.reason is None  # and so no schema failure, no alert


# -- an empty prefix, laid out as each SDK lays it out -------------------------------------


@pytest.mark.parametrize(
    ("sdk", "name"),
    [
        (Sdk.PYTHON, "big_segments_metadata"),
        (Sdk.GO, "big_segments_metadata"),
        (Sdk.RUBY, ":big_segments_metadata"),  # dynamodb_impl.rb keeps ""
    ],
)
async def test_an_empty_prefix_reads_the_item_the_targets_sdk_reads(
    sdk: Sdk, name: str, table: str
) -> None:
    """Only the SDK's own item is fresh; the other layout's item is a stale decoy."""
    fresh, stale = str(now_ms() - 1_000), "1"
    with closing(dynamodb_client(table)) as client:
        for key in ("big_segments_metadata", ":big_segments_metadata"):
            client.put_item(
                TableName=TABLE,
                Item={
                    "namespace": {"S": key},
                    "key": {"S": key},
                    "synchronizedOn": {"N": fresh if key == name else stale},
                },
            )
    probe = new_probe()
    target = replace(static_target(endpoint_of(table), prefix=""), sdk=sdk)
    try:
        runner = await run_round(probe, [target])
    finally:
        await probe.close()
    result = result_of(runner, target)
    assert result.sdk_status(time.time(), STALE_AFTER, sdk) == (True, False)

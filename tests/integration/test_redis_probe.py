"""The Redis probe against real redis-server processes: values, reasons, SDK agreement."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from devtools.servers.redis_server import RedisServer, RedisTls
from devtools.servers.tls import TlsCertSet
from monitor.config import ProbeConfig, Sdk, TlsConfig
from monitor.export.report import MARKER_ONLY_NOTE, MEMBERSHIP_FAILING_NOTE, probe_view
from monitor.export.verdict import Verdict
from monitor.probes.redis.probe import RedisProbe
from monitor.probes.redis.resp import RespConnection, pack
from monitor.probes.result import ProbeResult
from monitor.probes.runner import ProbeRunner, TargetRecord
from monitor.store_keys import membership_probe_hash
from monitor.targets import RedisEndpoint
from tests.support.clock import now_ms
from tests.support.endpoints import UNRESOLVABLE_HOST, BlackholeServer
from tests.support.plugin import REDIS_PASSWORD, AclRedis, MakeRedis
from tests.support.scrape import Scrape, assert_status
from tests.support.sdk import (
    async_sdk_store_status,
    has_async_redis_big_segment_store,
    sdk_store_status,
)
from tests.support.state import state_of
from tests.support.store_states import REDIS_STATES
from tests.support.targets import static_target

PREFIX = "6543210fedcba98765432100"
KEY = f"{PREFIX}:big_segments_synchronized_on"
STALE_AFTER = 120.0


def endpoint_of(server: RedisServer, **overrides: Any) -> RedisEndpoint:
    """An endpoint reaching `server` on its client port."""
    fields: dict[str, Any] = {"host": server.host, "port": server.client_port}
    fields.update(overrides)
    return RedisEndpoint(**fields)


async def probe(
    endpoint: RedisEndpoint, timeout: float = 2.0
) -> tuple[ProbeResult, Scrape]:
    """Run one round on one target; return its result and the exported samples."""
    log = structlog.get_logger("test")
    runner = ProbeRunner(
        {"redis": RedisProbe(log)}, ProbeConfig(interval=10, timeout=timeout), log
    )
    target = static_target(endpoint, prefix=PREFIX)
    await runner.run_round([target])
    state = state_of(runner, (target,), stale_after=STALE_AFTER)
    result = runner.records["t1"].result
    assert result is not None
    return result, Scrape.of(state)


def write(server: RedisServer, setup: Callable[[Any], Any]) -> None:
    """Run `setup` with an admin client on `server`."""
    with server.admin() as client:
        setup(client)


# -- store states, as the default user and as a read-only ACL user -------------------


@dataclass
class Store:
    """A Redis server and the credentials the monitor uses on it."""

    server: RedisServer
    username: str | None = None
    password: str | None = None

    def endpoint(self) -> RedisEndpoint:
        """The monitor's endpoint for this store."""
        secret = SecretStr(self.password) if self.password else None
        return endpoint_of(self.server, username=self.username, password=secret)

    def url(self) -> str:
        """A redis:// URL with these credentials, for the SDK."""
        auth = f"{self.username}:{self.password}@" if self.username else ""
        return f"redis://{auth}{self.server.address}/0"


@pytest.fixture(params=["default_user", "read_only_acl_user"])
def store(request: pytest.FixtureRequest) -> Store:
    """Every store-state test runs twice: as the default user and as an ACL user
    with `+@all -@write -@admin -@dangerous`, proving the probe needs only reads."""
    if request.param == "default_user":
        return Store(request.getfixturevalue("redis_plain"))
    acl: AclRedis = request.getfixturevalue("redis_acl")
    return Store(acl.server, acl.reader.name, acl.reader.password)


async def test_fresh_store_is_available_and_not_stale(store: Store) -> None:
    """A synchronizedOn 10 s old: up, available, not stale, schema ok, age exported."""
    synced = now_ms() - 10_000
    write(store.server, lambda c: c.set(KEY, str(synced)))
    result, values = await probe(store.endpoint())
    assert_status(values, up=1, available=1, stale=0)
    assert values.value("ld_store_probe_schema_ok") == 1
    assert values.value("ld_store_synchronized_on_timestamp_seconds") == synced / 1000
    age = values.value("ld_store_sync_age_seconds")
    assert age is not None
    assert 9 <= age < 30
    assert result.reason is None
    assert values.value("ld_store_probe_last_success_timestamp_seconds") is not None
    assert {phase for phase, _ in result.phases} == {"connect", "auth", "read"}
    assert (
        values.value("ld_store_probe_phase_duration_seconds", phase="connect")
        is not None
    )


async def test_old_synchronized_on_is_stale(store: Store) -> None:
    """synchronizedOn older than stale_after: available but stale."""
    write(store.server, lambda c: c.set(KEY, str(now_ms() - 300_000)))
    _, values = await probe(store.endpoint())
    assert_status(values, up=1, available=1, stale=1)


async def test_missing_key_is_available_and_stale(store: Store) -> None:
    """Never synced (no key): the SDK says available and stale; no timestamp series."""
    result, values = await probe(store.endpoint())
    assert_status(values, up=1, available=1, stale=1)
    assert values.value("ld_store_synchronized_on_timestamp_seconds") is None
    assert result.reason is None


async def test_future_timestamp_is_not_stale(store: Store) -> None:
    """A synchronizedOn in the future is fresh, as in the SDK (negative age)."""
    write(store.server, lambda c: c.set(KEY, str(now_ms() + 3_600_000)))
    _, values = await probe(store.endpoint())
    assert_status(values, up=1, available=1, stale=0)
    age = values.value("ld_store_sync_age_seconds")
    assert age is not None
    assert age < 0


async def test_wrong_key_type_is_a_schema_failure(store: Store) -> None:
    """A hash where a string belongs: unavailable to SDKs, schema_ok 0, reason schema."""
    write(store.server, lambda c: c.hset(KEY, "a", "1"))
    result, values = await probe(store.endpoint())
    assert_status(values, up=1, available=0, stale=0)
    assert values.value("ld_store_probe_schema_ok") == 0
    assert values.value("ld_store_probe_failures_total", reason="schema") == 1
    assert result.error is not None
    assert "hash" in result.error


async def test_non_numeric_value_is_a_parse_failure(store: Store) -> None:
    """A value the SDK cannot parse as an integer: unavailable, reason parse."""
    write(store.server, lambda c: c.set(KEY, "yesterday"))
    _, values = await probe(store.endpoint())
    assert_status(values, up=1, available=0, stale=0)
    assert values.value("ld_store_probe_schema_ok") == 0
    assert values.value("ld_store_probe_failures_total", reason="parse") == 1


async def test_prefix_selects_the_key(store: Store) -> None:
    """Data under another prefix does not count: the probe reads only {prefix}:... ."""
    write(
        store.server,
        lambda c: c.set("launchdarkly:big_segments_synchronized_on", str(now_ms())),
    )
    _, values = await probe(store.endpoint())
    assert_status(values, up=1, available=1, stale=1)


# -- authentication -----------------------------------------------------------------


async def test_password_server_with_the_right_password(
    redis_password: RedisServer,
) -> None:
    """requirepass and the right password: a normal probe."""
    write(redis_password, lambda c: c.set(KEY, str(now_ms())))
    _, values = await probe(
        endpoint_of(redis_password, password=SecretStr(REDIS_PASSWORD))
    )
    assert_status(values, up=1, available=1, stale=0)


@pytest.mark.parametrize("password", [None, "wrong-password"])
async def test_missing_or_wrong_password_is_auth(
    redis_password: RedisServer, password: str | None
) -> None:
    """NOAUTH (no password) and WRONGPASS both give reason auth and up 0."""
    secret = SecretStr(password) if password else None
    result, values = await probe(endpoint_of(redis_password, password=secret))
    assert_status(values, up=0, available=0, stale=0)
    assert result.reason == "auth"
    assert values.value("ld_store_probe_failures_total", reason="auth") == 1


@pytest.mark.parametrize("user", ["monitor", "reader"])
async def test_read_only_acl_users_are_enough(redis_acl: AclRedis, user: str) -> None:
    """The documented read-only ACL user, and a -@write -@admin -@dangerous user, both work."""
    acl_user = getattr(redis_acl, user)
    write(redis_acl.server, lambda c: c.set(KEY, str(now_ms())))
    result, values = await probe(
        endpoint_of(
            redis_acl.server,
            username=acl_user.name,
            password=SecretStr(acl_user.password),
        )
    )
    assert_status(values, up=1, available=1, stale=0)
    assert result.reason is None


async def test_acl_user_without_type_is_no_permission(redis_acl: AclRedis) -> None:
    """A user that may GET but not TYPE: NOPERM is reported; the SDK's read still counts."""
    write(redis_acl.server, lambda c: c.set(KEY, str(now_ms())))
    narrow = redis_acl.narrow
    result, values = await probe(
        endpoint_of(
            redis_acl.server, username=narrow.name, password=SecretStr(narrow.password)
        )
    )
    assert result.reason == "no_permission"
    assert_status(values, up=1, available=1, stale=0)
    assert values.value("ld_store_probe_failures_total", reason="no_permission") == 1


async def test_acl_user_with_wrong_password_is_auth(redis_acl: AclRedis) -> None:
    """WRONGPASS for a named user is reason auth."""
    result, _ = await probe(
        endpoint_of(
            redis_acl.server,
            username=redis_acl.monitor.name,
            password=SecretStr("nope"),
        )
    )
    assert result.reason == "auth"


# -- the membership read: SMEMBERS of an include set, in the same round trip ---------

MEMBER_KEY = f"{PREFIX}:big_segment_include:{membership_probe_hash()}"


async def test_every_probe_reads_membership_and_succeeds(store: Store) -> None:
    """A healthy store, as the default and as a read-only ACL user: membership 1, success 1."""
    write(store.server, lambda c: c.set(KEY, str(now_ms())))
    before = smembers_calls(store.server)
    result, values = await probe(store.endpoint())
    assert_status(values, up=1, available=1, stale=0)
    assert result.membership_read_ok is True
    assert values.value("ld_store_membership_read_ok") == 1
    assert values.value("ld_store_probe_success") == 1
    assert smembers_calls(store.server) - before == 1


async def test_the_membership_read_shares_the_metadata_reads_round_trip(
    redis_plain: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between health reads a probe sends once: TYPE, GET and SMEMBERS in one write."""
    write(redis_plain, lambda c: c.set(KEY, str(now_ms())))
    sent: list[bytes] = []
    original = RespConnection.send_packed

    def send_packed(self: RespConnection, payload: bytes) -> None:
        sent.append(payload)
        original(self, payload)

    monkeypatch.setattr(RespConnection, "send_packed", send_packed)
    log = structlog.get_logger("test")
    redis_probe = RedisProbe(log)  # one probe: its health reads are cached
    target = static_target(endpoint_of(redis_plain), prefix=PREFIX)
    for _ in range(2):
        sent.clear()
        runner = ProbeRunner({"redis": redis_probe}, ProbeConfig(interval=10), log)
        await runner.run_round([target])
    result = runner.records["t1"].result
    assert result is not None
    assert result.membership_read_ok is True
    assert sent == [pack(("TYPE", KEY), ("GET", KEY), ("SMEMBERS", MEMBER_KEY))]


def smembers_calls(server: RedisServer) -> int:
    """SMEMBERS calls the server has answered since its start (INFO commandstats)."""
    with server.admin() as client:
        stats = client.info("commandstats").get("cmdstat_smembers", {})
    return int(stats.get("calls", 0))


async def test_an_unparseable_marker_with_membership_working_keeps_evaluations_right(
    store: Store,
) -> None:
    """Marker unparseable, membership read fine: available 0, success 0, membership 1."""
    write(store.server, lambda c: c.set(KEY, "yesterday"))
    result, values = await probe(store.endpoint())
    assert_status(values, up=1, available=0, stale=0)
    assert values.value("ld_store_probe_success") == 0
    assert values.value("ld_store_membership_read_ok") == 1
    notes = probe_view(result, TargetRecord(), time.time(), STALE_AFTER).notes
    assert MARKER_ONLY_NOTE in [note.text for note in notes]


async def test_a_user_denied_smembers_fails_membership_reads(
    redis_acl: AclRedis,
) -> None:
    """GET and TYPE allowed, SMEMBERS not: available 1, membership 0, success 0, failing."""
    write(redis_acl.server, lambda c: c.set(KEY, str(now_ms())))
    name, password = "ldnosets", "ldnosets-secret"
    rules = ("-@all", "+get", "+type", "+auth", "+hello", "+ping")
    write(
        redis_acl.server,
        lambda c: c.execute_command(
            "ACL", "SETUSER", name, "reset", "on", f">{password}", "~*", *rules
        ),
    )
    try:
        result, values = await probe(
            endpoint_of(redis_acl.server, username=name, password=SecretStr(password))
        )
    finally:
        write(redis_acl.server, lambda c: c.execute_command("ACL", "DELUSER", name))
    assert_status(values, up=1, available=1, stale=0)
    assert result.reason == "no_permission"
    assert values.value("ld_store_membership_read_ok") == 0
    assert values.value("ld_store_probe_success") == 0
    view = probe_view(result, TargetRecord(), time.time(), STALE_AFTER)
    assert any(note.text.startswith(MEMBERSHIP_FAILING_NOTE) for note in view.notes)
    assert view.verdict is Verdict.FAILING


async def test_an_include_key_of_the_wrong_type_fails_membership_reads(
    store: Store,
) -> None:
    """The include key holds a string, not a set: WRONGTYPE, reason schema, membership 0."""
    write(store.server, lambda c: c.set(KEY, str(now_ms())))
    write(store.server, lambda c: c.set(MEMBER_KEY, "not a set"))
    result, values = await probe(store.endpoint())
    assert result.reason == "schema"
    assert result.membership_error is not None
    assert "WRONGTYPE" in result.membership_error
    assert values.value("ld_store_membership_read_ok") == 0
    assert values.value("ld_store_probe_success") == 0


# -- TLS -------------------------------------------------------------------------------


def tls_endpoint(server: RedisServer, certs: TlsCertSet, **tls: Any) -> RedisEndpoint:
    """A TLS endpoint trusting the test CA unless told otherwise."""
    settings: dict[str, Any] = {"ca_file": Path(certs.ca.cert_file)}
    settings.update(tls)
    return endpoint_of(server, tls=TlsConfig(**settings))


async def test_tls_with_the_right_ca_works_and_exports_expiry(
    redis_tls: RedisServer, tls_certs: TlsCertSet
) -> None:
    """TLS verified against the fixture's CA; the chain's earliest notAfter is exported."""
    write(redis_tls, lambda c: c.set(KEY, str(now_ms())))
    result, values = await probe(
        tls_endpoint(redis_tls, tls_certs, server_name="localhost")
    )
    assert_status(values, up=1, available=1, stale=0)
    assert "tls" in dict(result.phases)
    expiry = values.value("ld_store_tls_cert_expiry_timestamp_seconds")
    assert expiry == pytest.approx(tls_certs.server.not_after.timestamp(), abs=1)


async def test_tls_without_the_ca_is_tls_verify(
    redis_tls: RedisServer, tls_certs: TlsCertSet
) -> None:
    """An untrusted certificate (system CAs only) is reason tls_verify."""
    result, values = await probe(endpoint_of(redis_tls, tls=TlsConfig()))
    assert result.reason == "tls_verify"
    assert_status(values, up=0, available=0, stale=0)
    # The certificate was still read: its expiry stays exported.
    expiry = values.value("ld_store_tls_cert_expiry_timestamp_seconds")
    assert expiry == pytest.approx(tls_certs.server.not_after.timestamp(), abs=1)


async def test_expired_certificate_keeps_its_expiry_series(
    make_redis: MakeRedis, tls_certs: TlsCertSet
) -> None:
    """An expired certificate fails as tls_verify, and its notAfter (in the past) is exported."""
    server = make_redis(tls=RedisTls(server=tls_certs.expired))
    result, values = await probe(
        tls_endpoint(server, tls_certs, server_name="localhost")
    )
    assert result.reason == "tls_verify"
    assert "expired" in (result.error or "")
    expiry = values.value("ld_store_tls_cert_expiry_timestamp_seconds")
    assert expiry == pytest.approx(tls_certs.expired.not_after.timestamp(), abs=1)
    assert expiry is not None
    assert expiry < time.time()


async def test_failing_tls_store_keeps_the_last_known_expiry(
    make_redis: MakeRedis, tls_certs: TlsCertSet
) -> None:
    """A TLS store that stops answering keeps the expiry its last handshake read."""
    server = make_redis(tls=RedisTls(server=tls_certs.server))
    log = structlog.get_logger("test")
    runner = ProbeRunner(
        {"redis": RedisProbe(log)}, ProbeConfig(interval=10, timeout=1.0), log
    )
    target = static_target(
        tls_endpoint(server, tls_certs, server_name="localhost"), prefix=PREFIX
    )
    await runner.run_round([target])
    server.stop()
    runner.records["t1"].next_due = 0.0  # due again now
    await runner.run_round([target])
    result = runner.records["t1"].result
    assert result is not None
    assert result.reason == "refused"
    values = Scrape.of(state_of(runner, (target,), stale_after=STALE_AFTER))
    expiry = values.value("ld_store_tls_cert_expiry_timestamp_seconds")
    assert expiry == pytest.approx(tls_certs.server.not_after.timestamp(), abs=1)


async def test_tls_insecure_skip_verify_connects(redis_tls: RedisServer) -> None:
    """insecure_skip_verify accepts the untrusted certificate."""
    result, _ = await probe(
        endpoint_of(redis_tls, tls=TlsConfig(insecure_skip_verify=True))
    )
    assert result.up
    assert result.reason is None


async def test_tls_hostname_mismatch_is_tls_verify(
    make_redis: MakeRedis, tls_certs: TlsCertSet
) -> None:
    """A certificate for another name is reason tls_verify."""
    server = make_redis(tls=RedisTls(server=tls_certs.wrong_host))
    result, _ = await probe(tls_endpoint(server, tls_certs))
    assert result.reason == "tls_verify"


async def test_tls_to_a_plain_port_is_tls_handshake(
    redis_plain: RedisServer, tls_certs: TlsCertSet
) -> None:
    """Speaking TLS to a plain Redis port fails the handshake."""
    result, _ = await probe(tls_endpoint(redis_plain, tls_certs))
    assert result.reason == "tls_handshake"


@pytest.mark.parametrize("password", [None, "x-password"])
async def test_plain_to_a_tls_port_is_tls_handshake(
    redis_tls: RedisServer, password: str | None
) -> None:
    """Plain Redis protocol to a TLS port: the server hangs up before replying."""
    result, _ = await probe(
        endpoint_of(redis_tls, password=SecretStr(password) if password else None)
    )
    assert result.reason == "tls_handshake"


async def test_client_certificate_is_presented_when_required(
    redis_tls_client_auth: RedisServer, tls_certs: TlsCertSet
) -> None:
    """Mutual TLS: without a client certificate the handshake fails; with one it works."""
    without, _ = await probe(tls_endpoint(redis_tls_client_auth, tls_certs))
    assert without.reason in {"tls_handshake", "other"}
    assert not without.up
    client = tls_certs.client
    with_cert, _ = await probe(
        tls_endpoint(
            redis_tls_client_auth,
            tls_certs,
            cert_file=Path(client.cert_file),
            key_file=Path(client.key_file),
        )
    )
    assert with_cert.up
    assert with_cert.reason is None


# -- unreachable -------------------------------------------------------------------------


async def test_closed_port_is_refused(closed_port: int) -> None:
    """Nothing listening: reason refused, up 0, and the SDKs' membership reads fail too."""
    result, values = await probe(RedisEndpoint(host="127.0.0.1", port=closed_port))
    assert result.reason == "refused"
    assert_status(values, up=0, available=0, stale=0)
    assert values.value("ld_store_membership_read_ok") == 0
    assert values.value("ld_store_probe_success") == 0


async def test_unresolvable_host_is_dns() -> None:
    """A host name that does not resolve: reason dns."""
    result, _ = await probe(RedisEndpoint(host=UNRESOLVABLE_HOST, port=6379))
    assert result.reason == "dns"


async def test_server_that_never_answers_is_timeout(blackhole: BlackholeServer) -> None:
    """Accepts TCP, never answers: reason timeout after the per-probe deadline."""
    result, values = await probe(
        RedisEndpoint(host=blackhole.host, port=blackhole.port), timeout=0.3
    )
    assert result.reason == "timeout"
    assert result.duration < 1.0
    assert_status(values, up=0, available=0, stale=0)
    assert result.error is not None
    assert "0.3s" in result.error


async def test_a_hung_store_does_not_delay_the_others(
    store: Store, blackhole: BlackholeServer
) -> None:
    """One never-answering target among 40: the round ends near the probe timeout; others are fine."""
    log = structlog.get_logger("test")
    timeout = 0.5
    runner = ProbeRunner(
        {"redis": RedisProbe(log)},
        ProbeConfig(interval=10, timeout=timeout, concurrency=8),
        log,
    )
    write(
        store.server,
        lambda c: [
            c.set(f"p{i}:big_segments_synchronized_on", str(now_ms()))
            for i in range(40)
        ],
    )
    targets = [static_target(store.endpoint(), f"t{i}", f"p{i}") for i in range(40)]
    targets.insert(
        3,
        static_target(
            RedisEndpoint(host=blackhole.host, port=blackhole.port), "hung", PREFIX
        ),
    )
    summary = await runner.run_round(targets)
    assert summary.duration < timeout + 1.0
    assert summary.failed == 1
    assert summary.reasons == {"timeout": 1}
    assert all(runner.records[t.id].result.ok for t in targets if t.id != "hung")  # type: ignore[union-attr]


# -- agreement with the LaunchDarkly SDK ---------------------------------------------------


def sdk_status(url: str, prefix: str) -> tuple[bool, bool]:
    """(available, stale) as the Python server SDK's own big segment manager reports it."""
    from ldclient.integrations import Redis  # noqa: PLC0415 -- test-only dependency

    store = Redis.new_big_segment_store(
        url=url, prefix=prefix, redis_opts={"socket_timeout": 2}
    )
    return sdk_store_status(store, STALE_AFTER)


async def async_sdk_status(url: str, prefix: str) -> tuple[bool, bool]:
    """(available, stale) as the asyncio Python SDK's big segment manager reports it."""
    from ldclient.integrations import Redis  # noqa: PLC0415 -- test-only dependency

    store = Redis.async_big_segment_store(
        url=url, prefix=prefix, redis_opts={"socket_timeout": 2}
    )
    return await async_sdk_store_status(store, STALE_AFTER)


# What both sides said when measured, (available, stale) for python and
# python-async: pinned, so that agreement can never be two sides equally lost.
AGREED: dict[str, tuple[tuple[bool, bool], tuple[bool, bool]]] = {
    "fresh": ((True, False), (True, False)),
    "stale": ((True, True), (True, True)),
    "never_synced": ((True, True), (True, True)),
    "wrong_key_type": ((False, False), (False, False)),
    "non_numeric": ((False, False), (False, False)),
    "future": ((True, False), (True, False)),
    "unreachable": ((False, False), (False, False)),
    "empty": ((False, False), (True, True)),  # the async store reads "" as none
    "decimal": ((False, False), (False, False)),
    "leading_space": ((True, True), (True, True)),
    "negative": ((True, True), (True, True)),
    "fresh_leading_space": ((True, False), (True, False)),
    "fresh_underscore": ((True, False), (True, False)),
    "fresh_decimal": ((False, False), (False, False)),  # int() refuses ".5"
    "fresh_trailing_text": ((False, False), (False, False)),
}

# The SDKs the cross-check runs here: each profile against the SDK it names.
SDKS = [
    pytest.param(Sdk.PYTHON, id="python"),
    pytest.param(
        Sdk.PYTHON_ASYNC,
        id="python-async",
        marks=pytest.mark.skipif(
            not has_async_redis_big_segment_store(),
            reason="the installed launchdarkly-server-sdk has no asyncio Redis "
            "big segment store (added in 9.16)",
        ),
    ),
]


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize("state", list(REDIS_STATES))
async def test_monitor_agrees_with_the_sdk(
    state: str, sdk: Sdk, store: Store, closed_port: int
) -> None:
    """For each store state, the monitor's available/stale under profile `sdk`
    equal that SDK's own status."""
    writer = REDIS_STATES[state]
    if writer is None:
        endpoint = RedisEndpoint(host="127.0.0.1", port=closed_port)
    else:
        write(store.server, lambda client: writer(client, KEY))
        endpoint = store.endpoint()
    result, _ = await probe(endpoint)
    monitor = result.sdk_status(time.time(), STALE_AFTER, sdk)
    url = store.url() if writer is not None else f"redis://127.0.0.1:{closed_port}/0"
    if sdk is Sdk.PYTHON_ASYNC:
        reported = await async_sdk_status(url, PREFIX)
    else:
        reported = sdk_status(url, PREFIX)
    assert monitor == reported
    assert monitor == AGREED[state][sdk is Sdk.PYTHON_ASYNC]


# -- an empty prefix, laid out as each SDK lays it out ------------------------------------


@pytest.mark.parametrize(
    ("sdk", "key"),
    [
        (Sdk.PYTHON, "launchdarkly:big_segments_synchronized_on"),
        (Sdk.RELAY, "launchdarkly:big_segments_synchronized_on"),
        (Sdk.RUBY, ":big_segments_synchronized_on"),  # redis_impl.rb keeps ""
        (Sdk.CPP, "big_segments_synchronized_on"),  # no default prefix
    ],
)
async def test_an_empty_prefix_reads_the_key_the_targets_sdk_reads(
    sdk: Sdk, key: str, redis_plain: RedisServer
) -> None:
    """Only the SDK's own key is fresh; the other layouts' keys are stale decoys."""
    decoys = {
        "launchdarkly:big_segments_synchronized_on",
        ":big_segments_synchronized_on",
        "big_segments_synchronized_on",
    } - {key}

    def setup(client: Any) -> None:
        client.set(key, str(now_ms() - 1_000))
        for decoy in decoys:
            client.set(decoy, "1")

    write(redis_plain, setup)
    log = structlog.get_logger("test")
    runner = ProbeRunner(
        {"redis": RedisProbe(log)}, ProbeConfig(interval=10, timeout=2.0), log
    )
    target = replace(static_target(endpoint_of(redis_plain), prefix=""), sdk=sdk)
    await runner.run_round([target])
    result = runner.records["t1"].result
    assert result is not None
    assert result.sdk_status(time.time(), 300.0, sdk) == (True, False)


async def test_cpp_keeps_reporting_stale_after_the_value_turns_unreadable(
    redis_plain: RedisServer,
) -> None:
    """C++: a stale store whose value becomes unparsable reads (0, 1), not (0, 0)."""
    key = "cpp:big_segments_synchronized_on"
    log = structlog.get_logger("test")
    runner = ProbeRunner(
        {"redis": RedisProbe(log)}, ProbeConfig(interval=10, timeout=2.0), log
    )
    target = replace(static_target(endpoint_of(redis_plain), prefix="cpp"), sdk=Sdk.CPP)
    write(redis_plain, lambda c: c.set(key, str(now_ms() - 600_000)))
    await runner.run_round([target])
    write(redis_plain, lambda c: c.set(key, "12abc"))
    runner.records[target.id].next_due = 0.0  # due again now
    await runner.run_round([target])
    state = state_of(runner, (target,), stale_after=STALE_AFTER)
    assert_status(Scrape.of(state), up=1, available=0, stale=1)
    python = replace(target, sdk=Sdk.PYTHON)
    assert_status(Scrape.of(state_of(runner, (python,))), up=1, available=0, stale=0)

"""Proof that the real-store fixtures in tests.support behave as documented."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing, suppress
from pathlib import Path
from typing import Any

import aioboto3
import boto3
import botocore.config
import botocore.exceptions
import pytest
import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from devtools.servers.fault_proxy import FaultProxy, Mode
from devtools.servers.moto_server import (
    MotoServer,
    create_bigsegment_table,
    dynamodb_client,
    make_iam_user,
    put_membership,
    put_metadata,
)
from devtools.servers.redis_server import (
    RedisServer,
    RedisStartError,
    RedisTls,
    start_redis,
)
from devtools.servers.tls import TlsCertSet
from tests.support.endpoints import UNRESOLVABLE_HOST, BlackholeServer
from tests.support.plugin import REDIS_PASSWORD, AclRedis, MakeFaultProxy, MakeRedis

# Short enough to keep the suite fast, long enough for loopback round trips.
QUICK_TIMEOUT = 0.05


@asynccontextmanager
async def redis_client(
    host: str, port: int, **kwargs: Any
) -> AsyncIterator[redis.asyncio.Redis]:
    """A client without retries, closed on exit."""
    client = redis.asyncio.Redis(
        host=host, port=port, retry=Retry(NoBackoff(), 0), **kwargs
    )
    try:
        yield client
    finally:
        await client.aclose()


@asynccontextmanager
async def raw_connection(
    host: str, port: int, **kwargs: Any
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A plain asyncio stream pair, closed on exit."""
    reader, writer = await asyncio.open_connection(host, port, **kwargs)
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """A client context that trusts only `ca_file`."""
    return ssl.create_default_context(cafile=str(ca_file))


async def connections_received(server: RedisServer) -> int:
    """How many connections redis-server has accepted since it started."""
    async with server.admin_client() as admin:
        stats = await admin.info("stats")
    return int(stats["total_connections_received"])


# --- redis-server variants ------------------------------------------------------


async def test_redis_plain_answers_ping_without_auth(redis_plain: RedisServer) -> None:
    """The plain server answers PING and stores keys with no credentials."""
    async with redis_client(redis_plain.host, redis_plain.client_port) as client:
        assert await client.ping() is True
        await client.set("k", "v")
        assert await client.get("k") == b"v"
    assert redis_plain.url == f"redis://127.0.0.1:{redis_plain.port}"


async def test_redis_plain_is_flushed_between_tests(redis_plain: RedisServer) -> None:
    """The function fixture hands out an empty store (the previous test left `k`)."""
    async with redis_client(redis_plain.host, redis_plain.client_port) as client:
        assert await client.dbsize() == 0


async def test_redis_password_refuses_without_auth_and_accepts_with_it(
    redis_password: RedisServer,
) -> None:
    """requirepass: NOAUTH without a password, normal replies with it."""
    host, port = redis_password.host, redis_password.client_port
    async with redis_client(host, port, protocol=2) as anonymous:
        with pytest.raises(
            redis.exceptions.AuthenticationError, match="Authentication required"
        ):
            await anonymous.get("k")
    # redis-py 8 speaks RESP3 by default: its HELLO 3 is refused before any command.
    async with redis_client(host, port) as anonymous:
        with pytest.raises(redis.exceptions.AuthenticationError, match="HELLO"):
            await anonymous.get("k")
    async with redis_client(host, port, password="wrong") as wrong:
        with pytest.raises(redis.exceptions.AuthenticationError):
            await wrong.ping()
    async with redis_client(host, port, password=REDIS_PASSWORD) as client:
        assert await client.set("k", "v") is True
        assert await client.get("k") == b"v"


async def test_redis_acl_monitor_user_reads_but_cannot_write(
    redis_acl: AclRedis,
) -> None:
    """The monitor user may GET, TYPE, EXISTS and INFO; SET answers NOPERM."""
    server, user = redis_acl.server, redis_acl.monitor
    async with server.admin_client() as admin:
        await admin.set("lp:big_segments_synchronized_on", "1700000000000")
    async with redis_client(
        server.host, server.client_port, username=user.name, password=user.password
    ) as client:
        assert await client.get("lp:big_segments_synchronized_on") == b"1700000000000"
        assert await client.type("lp:big_segments_synchronized_on") == b"string"
        assert await client.exists("lp:big_segments_synchronized_on") == 1
        assert "redis_version" in await client.info("server")
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.set("k", "v")


async def test_redis_acl_reader_user_cannot_write_or_config(
    redis_acl: AclRedis,
) -> None:
    """The "+@all -@write -@admin -@dangerous" user reads but SET and CONFIG fail."""
    server, user = redis_acl.server, redis_acl.reader
    async with redis_client(
        server.host, server.client_port, username=user.name, password=user.password
    ) as client:
        assert await client.type("missing") == b"none"
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.set("k", "v")
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.config_get("maxmemory")


async def test_redis_acl_narrow_user_gets_noperm_on_type_and_info(
    redis_acl: AclRedis,
) -> None:
    """The narrow user may GET but TYPE and INFO answer NOPERM."""
    server, user = redis_acl.server, redis_acl.narrow
    async with redis_client(
        server.host, server.client_port, username=user.name, password=user.password
    ) as client:
        assert await client.get("missing") is None
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.type("missing")
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.info()


async def test_redis_acl_default_user_is_disabled(redis_acl: AclRedis) -> None:
    """Without a username nothing is allowed; the admin user may do everything."""
    server = redis_acl.server
    async with redis_client(server.host, server.client_port) as anonymous:
        with pytest.raises(redis.exceptions.AuthenticationError):
            await anonymous.get("k")
    async with redis_client(
        server.host,
        server.client_port,
        username=redis_acl.admin.name,
        password=redis_acl.admin.password,
    ) as admin:
        assert await admin.config_get("save") == {"save": ""}


async def test_redis_tls_accepts_client_trusting_the_ca(
    redis_tls: RedisServer, tls_certs: TlsCertSet
) -> None:
    """A TLS client that trusts `tls_ca` talks to the TLS-only server."""
    assert redis_tls.port is None
    assert redis_tls.url == f"rediss://127.0.0.1:{redis_tls.tls_port}"
    async with redis_client(
        redis_tls.host,
        redis_tls.client_port,
        ssl=True,
        ssl_ca_certs=str(tls_certs.ca.cert_file),
    ) as client:
        assert await client.ping() is True


async def test_redis_tls_port_rejects_plain_connection(redis_tls: RedisServer) -> None:
    """Plain RESP to the TLS port fails instead of answering."""
    async with redis_client(
        redis_tls.host, redis_tls.client_port, socket_timeout=1.0
    ) as client:
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()


async def test_redis_tls_rejects_untrusted_client_view(
    redis_tls: RedisServer, tls_certs: TlsCertSet
) -> None:
    """A client trusting only the unrelated CA fails certificate verification."""
    with pytest.raises(ssl.SSLCertVerificationError):
        async with raw_connection(
            redis_tls.host,
            redis_tls.client_port,
            ssl=tls_context(tls_certs.untrusted_ca.cert_file),
        ):
            pass


async def test_redis_tls_client_auth_refuses_client_without_certificate(
    redis_tls_client_auth: RedisServer, tls_certs: TlsCertSet
) -> None:
    """tls-auth-clients yes: no client certificate, no PING; with one, PONG."""
    server = redis_tls_client_auth
    common: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(tls_certs.ca.cert_file)}
    async with redis_client(
        server.host, server.client_port, socket_timeout=1.0, **common
    ) as client:
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()
    async with redis_client(
        server.host,
        server.client_port,
        ssl_certfile=str(tls_certs.client.cert_file),
        ssl_keyfile=str(tls_certs.client.key_file),
        **common,
    ) as client:
        assert await client.ping() is True


async def test_expiring_certificate_is_served_with_its_short_not_after(
    make_redis: MakeRedis, tls_certs: TlsCertSet
) -> None:
    """The 3-day certificate expires in 3 days, and a server presents exactly it."""
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    not_after = tls_certs.expiring_soon.not_after
    assert abs(not_after - expected) < dt.timedelta(minutes=5)
    server = make_redis(tls=RedisTls(server=tls_certs.expiring_soon))
    async with raw_connection(
        server.host, server.client_port, ssl=tls_context(tls_certs.ca.cert_file)
    ) as (_, writer):
        peer = writer.get_extra_info("peercert")
    served = dt.datetime.fromtimestamp(
        ssl.cert_time_to_seconds(peer["notAfter"]), dt.UTC
    )
    assert served == not_after.replace(microsecond=0)


@pytest.mark.parametrize(
    ("cert_name", "message"),
    [("wrong_host", "mismatch"), ("expired", "expired")],
)
async def test_bad_server_certificates_fail_verification(
    make_redis: MakeRedis, tls_certs: TlsCertSet, cert_name: str, message: str
) -> None:
    """A server with the wrong-host or expired certificate fails verification."""
    server = make_redis(tls=RedisTls(server=getattr(tls_certs, cert_name)))
    with pytest.raises(ssl.SSLCertVerificationError, match=message):
        async with raw_connection(
            server.host, server.client_port, ssl=tls_context(tls_certs.ca.cert_file)
        ):
            pass


def test_make_redis_applies_settings_and_stops_its_servers(
    make_redis: MakeRedis,
) -> None:
    """The factory passes maxmemory settings through and stop() ends the process."""
    server = make_redis(maxmemory=10_000_000, maxmemory_policy="allkeys-lru")
    with server.admin() as admin:
        assert admin.config_get("maxmemory") == {"maxmemory": "10000000"}
        assert admin.config_get("maxmemory-policy") == {
            "maxmemory-policy": "allkeys-lru"
        }
    server.stop()
    assert server.process.returncode is not None


def test_start_redis_reports_log_tail_when_server_cannot_start(tmp_path: Path) -> None:
    """A bad option fails fast with redis-server's own complaint in the error."""
    with pytest.raises(RedisStartError, match="no-such-option"):
        start_redis(tmp_path, extra_args=["--no-such-option", "1"])


def test_start_redis_gives_up_when_the_port_stays_taken(
    tmp_path: Path, blackhole: BlackholeServer
) -> None:
    """A port in use is retried, then reported with redis-server's own message."""
    with pytest.raises(RedisStartError, match="Address already in use"):
        start_redis(tmp_path, extra_args=["--port", str(blackhole.port)])


# --- moto ------------------------------------------------------------------------


def test_moto_table_holds_metadata_and_membership(clean_moto: MotoServer) -> None:
    """A correct table takes the metadata and membership items in the SDK layout."""
    url = clean_moto.endpoint_url
    create_bigsegment_table(url, "segments")
    put_metadata(url, "segments", "env-1", 1_700_000_000_000)
    put_membership(
        url, "segments", "env-1", "hash1", included=["seg.g1"], excluded=["x"]
    )
    with closing(dynamodb_client(url)) as client:
        table = client.describe_table(TableName="segments")["Table"]
        meta = client.get_item(
            TableName="segments",
            Key={
                "namespace": {"S": "env-1:big_segments_metadata"},
                "key": {"S": "env-1:big_segments_metadata"},
            },
        )["Item"]
        member = client.get_item(
            TableName="segments",
            Key={"namespace": {"S": "env-1:big_segments_user"}, "key": {"S": "hash1"}},
        )["Item"]
    assert table["TableStatus"] == "ACTIVE"
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
        "namespace": "HASH",
        "key": "RANGE",
    }
    assert meta["synchronizedOn"] == {"N": "1700000000000"}
    assert member["included"] == {"SS": ["seg.g1"]}
    assert member["excluded"] == {"SS": ["x"]}


def test_moto_metadata_variants_for_schema_checks(clean_moto: MotoServer) -> None:
    """Empty prefix drops "prefix:", attr_type S stores a string, None omits it."""
    url = clean_moto.endpoint_url
    create_bigsegment_table(url, "t")
    put_metadata(url, "t", "", "1700000000000", attr_type="S")
    put_metadata(url, "t", "nosync", None)
    with closing(dynamodb_client(url)) as client:
        bare = client.get_item(
            TableName="t",
            Key={
                "namespace": {"S": "big_segments_metadata"},
                "key": {"S": "big_segments_metadata"},
            },
        )["Item"]
        nosync = client.get_item(
            TableName="t",
            Key={
                "namespace": {"S": "nosync:big_segments_metadata"},
                "key": {"S": "nosync:big_segments_metadata"},
            },
        )["Item"]
    assert bare["synchronizedOn"] == {"S": "1700000000000"}
    assert "synchronizedOn" not in nosync


@pytest.mark.parametrize(
    ("key_schema", "expected"),
    [
        ("wrong_names", {"pk": ("HASH", "S"), "sk": ("RANGE", "S")}),
        ("wrong_types", {"namespace": ("HASH", "S"), "key": ("RANGE", "N")}),
        ("hash_only", {"namespace": ("HASH", "S")}),
    ],
)
def test_moto_wrong_key_schemas(
    clean_moto: MotoServer, key_schema: Any, expected: dict[str, tuple[str, str]]
) -> None:
    """Each broken key schema variant creates the table it names."""
    create_bigsegment_table(clean_moto.endpoint_url, "bad", key_schema=key_schema)
    with closing(dynamodb_client(clean_moto.endpoint_url)) as client:
        table = client.describe_table(TableName="bad")["Table"]
    types = {
        a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]
    }
    schema = {
        k["AttributeName"]: (k["KeyType"], types[k["AttributeName"]])
        for k in table["KeySchema"]
    }
    assert schema == expected


def test_moto_reset_drops_tables(clean_moto: MotoServer) -> None:
    """reset() empties moto."""
    create_bigsegment_table(clean_moto.endpoint_url, "gone")
    clean_moto.reset()
    with closing(dynamodb_client(clean_moto.endpoint_url)) as client:
        assert client.list_tables()["TableNames"] == []


def _denied_code(call: Callable[[], object]) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_moto_iam_enforcement_denies_actions_outside_the_policy(
    clean_moto: MotoServer,
) -> None:
    """With enforcement on, each user may do only what its policy allows."""
    url = clean_moto.endpoint_url
    create_bigsegment_table(url, "t")
    put_metadata(url, "t", "p", 1)
    key = {
        "namespace": {"S": "p:big_segments_metadata"},
        "key": {"S": "p:big_segments_metadata"},
    }
    reader = make_iam_user(url, ["dynamodb:DescribeTable", "dynamodb:GetItem"])
    describer = make_iam_user(url, ["dynamodb:DescribeTable"])
    with clean_moto.iam_enforced():
        with closing(
            dynamodb_client(url, access_key_id=reader[0], secret_access_key=reader[1])
        ) as client:
            assert client.get_item(TableName="t", Key=key)["Item"][
                "synchronizedOn"
            ] == {"N": "1"}
            assert (
                _denied_code(lambda: client.scan(TableName="t"))
                == "AccessDeniedException"
            )
        with closing(
            dynamodb_client(
                url, access_key_id=describer[0], secret_access_key=describer[1]
            )
        ) as client:
            assert (
                client.describe_table(TableName="t")["Table"]["TableStatus"] == "ACTIVE"
            )
            assert (
                _denied_code(lambda: client.get_item(TableName="t", Key=key))
                == "AccessDeniedException"
            )
        with closing(dynamodb_client(url)) as client:
            assert (
                _denied_code(lambda: client.describe_table(TableName="t"))
                == "UnrecognizedClientException"
            )
        with closing(
            dynamodb_client(url, access_key_id=reader[0], secret_access_key="wrong")
        ) as client:
            assert (
                _denied_code(lambda: client.describe_table(TableName="t"))
                == "InvalidSignatureException"
            )
    with closing(dynamodb_client(url)) as client:
        assert client.describe_table(TableName="t")["Table"]["TableStatus"] == "ACTIVE"


def test_aws_env_gives_fake_credentials_and_region(aws_env: None) -> None:
    """boto3's default chain finds the fake keys and region and no config files."""
    session = boto3.session.Session()
    credentials = session.get_credentials()
    assert credentials is not None
    assert credentials.access_key == "testing"
    assert session.region_name == "us-east-1"
    # boto3 exposes the resolved config file only on its botocore session.
    config_file = session._session.get_config_variable("config_file")
    assert not Path(config_file).exists()


async def test_aioboto3_reaches_moto_through_fault_proxy(
    clean_moto: MotoServer, aws_env: None, fault_proxy: MakeFaultProxy
) -> None:
    """aioboto3 reaches moto through the proxy; in blackhole mode it times out."""
    create_bigsegment_table(clean_moto.endpoint_url, "via-proxy")
    proxy = await fault_proxy(clean_moto.host, clean_moto.port)
    config = botocore.config.Config(
        connect_timeout=QUICK_TIMEOUT, read_timeout=0.2, retries={"max_attempts": 1}
    )
    async with aioboto3.Session().client(
        "dynamodb", endpoint_url=f"http://{proxy.address}", config=config
    ) as client:
        tables = await client.list_tables()
        assert tables["TableNames"] == ["via-proxy"]
    proxy.blackhole()
    async with aioboto3.Session().client(
        "dynamodb", endpoint_url=f"http://{proxy.address}", config=config
    ) as client:
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            await client.list_tables()


# --- bad endpoints ----------------------------------------------------------------


async def test_blackhole_accepts_and_never_answers(blackhole: BlackholeServer) -> None:
    """Connects succeed; a RESP client's read times out."""
    async with raw_connection(blackhole.host, blackhole.port) as (reader, writer):
        writer.write(b"PING\r\n")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), QUICK_TIMEOUT)
    async with redis_client(
        blackhole.host, blackhole.port, socket_timeout=QUICK_TIMEOUT
    ) as client:
        with pytest.raises(redis.exceptions.TimeoutError):
            await client.ping()


async def test_closed_port_refuses(closed_port: int) -> None:
    """Nothing listens on the closed port: connect is refused at once."""
    with pytest.raises(ConnectionRefusedError):
        async with raw_connection("127.0.0.1", closed_port):
            pass


def test_unresolvable_host_does_not_resolve() -> None:
    """The .invalid name fails DNS resolution."""
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(UNRESOLVABLE_HOST, 6379)


# --- fault proxy in front of redis-server -------------------------------------------


async def test_fault_proxy_pass_forwards_both_ways(
    redis_plain: RedisServer, fault_proxy: MakeFaultProxy
) -> None:
    """pass: commands through the proxy reach redis and replies come back."""
    proxy = await fault_proxy(redis_plain.host, redis_plain.client_port)
    assert proxy.mode is Mode.PASS
    async with redis_client(proxy.host, proxy.port) as client:
        await client.set("k", "v")
    async with redis_plain.admin_client() as admin:
        assert await admin.get("k") == b"v"
    assert proxy.connections_accepted == 1


async def test_fault_proxy_delay_slows_each_chunk(
    redis_plain: RedisServer, fault_proxy: MakeFaultProxy
) -> None:
    """delay: a PING round trip takes at least the delay in each direction."""
    proxy = await fault_proxy(redis_plain.host, redis_plain.client_port)
    proxy.delay(0.04)
    async with redis_client(proxy.host, proxy.port) as client:
        await client.ping()  # connection setup is delayed too; measure one command
        started = time.monotonic()
        assert await client.ping() is True
        elapsed = time.monotonic() - started
    assert elapsed >= 0.08


async def test_fault_proxy_blackhole_never_answers_nor_connects_upstream(
    redis_plain: RedisServer, fault_proxy: MakeFaultProxy
) -> None:
    """blackhole: the client times out and redis never sees a connection."""
    proxy = await fault_proxy(redis_plain.host, redis_plain.client_port)
    before = await connections_received(redis_plain)
    proxy.blackhole()
    async with redis_client(
        proxy.host, proxy.port, socket_timeout=QUICK_TIMEOUT
    ) as client:
        with pytest.raises(redis.exceptions.TimeoutError):
            await client.ping()
    assert proxy.connections_accepted == 1
    assert (
        await connections_received(redis_plain) == before + 1
    )  # the stats call itself


async def test_fault_proxy_reset_sends_rst(
    redis_plain: RedisServer, fault_proxy: MakeFaultProxy
) -> None:
    """reset: the connection is reset (RST), not closed cleanly."""
    proxy = await fault_proxy(redis_plain.host, redis_plain.client_port)
    proxy.reset()
    async with raw_connection(proxy.host, proxy.port) as (reader, writer):
        writer.write(b"PING\r\n")
        with pytest.raises(ConnectionResetError):
            await reader.read(100)
    async with redis_client(proxy.host, proxy.port) as client:
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()


async def test_fault_proxy_close_after_cuts_the_reply(
    redis_plain: RedisServer, fault_proxy: MakeFaultProxy
) -> None:
    """close_after(n): exactly n reply bytes arrive, then EOF."""
    proxy = await fault_proxy(redis_plain.host, redis_plain.client_port)
    proxy.close_after(3)
    async with raw_connection(proxy.host, proxy.port) as (reader, writer):
        writer.write(b"PING\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 1.0) == b"+PO"
    async with redis_client(proxy.host, proxy.port) as client:
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()


async def test_fault_proxy_accept_hang_keeps_connection_silent(
    redis_plain: RedisServer, fault_proxy: MakeFaultProxy
) -> None:
    """accept_hang: accepted, nothing read or forwarded, the client times out."""
    proxy = await fault_proxy(redis_plain.host, redis_plain.client_port)
    before = await connections_received(redis_plain)
    proxy.accept_hang()
    async with redis_client(
        proxy.host, proxy.port, socket_timeout=QUICK_TIMEOUT
    ) as client:
        with pytest.raises(redis.exceptions.TimeoutError):
            await client.ping()
    assert proxy.connections_accepted == 1
    assert await connections_received(redis_plain) == before + 1


async def test_fault_proxy_mode_switch_applies_to_open_connections(
    redis_plain: RedisServer, fault_proxy: MakeFaultProxy
) -> None:
    """An open connection stops getting replies once the mode turns to blackhole."""
    proxy = await fault_proxy(redis_plain.host, redis_plain.client_port)
    async with raw_connection(proxy.host, proxy.port) as (reader, writer):
        writer.write(b"PING\r\n")
        assert await asyncio.wait_for(reader.readline(), 1.0) == b"+PONG\r\n"
        proxy.blackhole()
        writer.write(b"PING\r\n")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readline(), QUICK_TIMEOUT)
        proxy.pass_through()
        writer.write(b"PING\r\n")
        assert await asyncio.wait_for(reader.readline(), 1.0) == b"+PONG\r\n"


async def test_fault_proxy_close_drops_open_connections(
    redis_plain: RedisServer,
) -> None:
    """Closing the proxy ends its open connections and stops listening."""
    async with FaultProxy(redis_plain.host, redis_plain.client_port) as proxy:
        proxy.accept_hang()
        async with raw_connection(proxy.host, proxy.port) as (reader, _):
            await proxy.aclose()
            assert await asyncio.wait_for(reader.read(), 1.0) == b""
        with pytest.raises(ConnectionRefusedError):
            async with raw_connection(proxy.host, proxy.port):
                pass

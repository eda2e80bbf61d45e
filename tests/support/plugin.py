"""Pytest fixtures for real stores: redis-server variants, moto, TLS, faulty endpoints.

Expensive, read-mostly servers live for the session; the function-scoped
fixtures in front of them (`redis_plain`, `redis_acl`, ...) FLUSHALL before
each test, so every test starts from an empty store. Tests that need to
stop, reconfigure or break a server use `make_redis` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from devtools.servers.fault_proxy import FaultProxy
from devtools.servers.moto_server import MotoServer, start_moto_server
from devtools.servers.proxy_process import ProxyProcess
from devtools.servers.redis_server import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    MONITOR_USER,
    NARROW_USER,
    READER_USER,
    STANDARD_ACL_USERS,
    AclUser,
    RedisCluster,
    RedisServer,
    RedisTls,
    start_redis,
    start_redis_cluster,
)
from devtools.servers.tls import CertAuthority, TlsCertSet, make_cert_set
from tests.support.endpoints import BlackholeServer
from tests.support.endpoints import closed_port as _closed_port

REDIS_PASSWORD = "default-user-secret"

MakeRedis = Callable[..., RedisServer]
MakeFaultProxy = Callable[[str, int], Awaitable[FaultProxy]]
MakeProxyProcess = Callable[[str, int], Awaitable[ProxyProcess]]
P = TypeVar("P")


@dataclass(frozen=True)
class AclRedis:
    """A redis-server with the standard ACL users, and those users."""

    server: RedisServer
    monitor: AclUser
    reader: AclUser
    narrow: AclUser
    admin: AclUser


# --- TLS ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCertSet:
    """Every test certificate: CAs, server, client, expiring, expired, wrong host."""
    return make_cert_set(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tls_ca(tls_certs: TlsCertSet) -> CertAuthority:
    """The CA that signed the test servers' certificates."""
    return tls_certs.ca


@pytest.fixture(scope="session")
def untrusted_ca(tls_certs: TlsCertSet) -> CertAuthority:
    """A CA no test server trusts or is signed by (for "untrusted certificate")."""
    return tls_certs.untrusted_ca


# --- redis-server --------------------------------------------------------------


def _session_redis(
    tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs: Any
) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp(name), **kwargs)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _redis_plain_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisServer]:
    yield from _session_redis(tmp_path_factory, "redis-plain")


@pytest.fixture(scope="session")
def _redis_password_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisServer]:
    yield from _session_redis(
        tmp_path_factory, "redis-password", password=REDIS_PASSWORD
    )


@pytest.fixture(scope="session")
def _redis_acl_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisServer]:
    yield from _session_redis(
        tmp_path_factory, "redis-acl", acl_users=STANDARD_ACL_USERS
    )


@pytest.fixture(scope="session")
def _redis_tls_session(
    tmp_path_factory: pytest.TempPathFactory, tls_certs: TlsCertSet
) -> Iterator[RedisServer]:
    yield from _session_redis(
        tmp_path_factory, "redis-tls", tls=RedisTls(server=tls_certs.server)
    )


@pytest.fixture(scope="session")
def _redis_tls_client_auth_session(
    tmp_path_factory: pytest.TempPathFactory, tls_certs: TlsCertSet
) -> Iterator[RedisServer]:
    tls = RedisTls(server=tls_certs.server, auth_clients=True, client=tls_certs.client)
    yield from _session_redis(tmp_path_factory, "redis-tls-client-auth", tls=tls)


@pytest.fixture
def redis_plain(_redis_plain_session: RedisServer) -> RedisServer:
    """An empty redis-server without authentication."""
    _redis_plain_session.flushall()
    return _redis_plain_session


@pytest.fixture
def redis_password(_redis_password_session: RedisServer) -> RedisServer:
    """An empty redis-server whose default user needs `REDIS_PASSWORD` (requirepass)."""
    _redis_password_session.flushall()
    return _redis_password_session


@pytest.fixture
def redis_acl(_redis_acl_session: RedisServer) -> AclRedis:
    """An empty redis-server with the ACL users; the default user is disabled."""
    _redis_acl_session.flushall()
    return AclRedis(
        server=_redis_acl_session,
        monitor=MONITOR_USER,
        reader=READER_USER,
        narrow=NARROW_USER,
        admin=AclUser(ADMIN_USERNAME, ADMIN_PASSWORD, "+@all"),
    )


@pytest.fixture
def redis_tls(_redis_tls_session: RedisServer) -> RedisServer:
    """An empty TLS-only redis-server (certificate from `tls_ca`, no client certs)."""
    _redis_tls_session.flushall()
    return _redis_tls_session


@pytest.fixture
def redis_tls_client_auth(_redis_tls_client_auth_session: RedisServer) -> RedisServer:
    """An empty TLS-only redis-server that demands a client certificate."""
    _redis_tls_client_auth_session.flushall()
    return _redis_tls_client_auth_session


@pytest.fixture
def make_redis(tmp_path: Path) -> Iterator[MakeRedis]:
    """Factory: `make_redis(**start_redis_kwargs)`; stops every server it started."""
    started: list[RedisServer] = []

    def make(**kwargs: Any) -> RedisServer:
        server = start_redis(tmp_path, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A three-master Redis Cluster on loopback, every slot assigned; stopped
    (processes and directories) after the test."""
    cluster = start_redis_cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


# --- moto ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the session; call `reset()` or use `clean_moto`."""
    server = start_moto_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clean_moto(moto_server: MotoServer) -> MotoServer:
    """The session moto server, emptied and with IAM enforcement off."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake AWS credentials and region; no real AWS config files or metadata service."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv(
        "AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials")
    )
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# --- bad endpoints and the fault proxy -------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test."""
    with _closed_port() as port:
        yield port


@pytest.fixture
def blackhole() -> Iterator[BlackholeServer]:
    """A loopback listener that accepts connections and never answers."""
    with BlackholeServer() as server:
        yield server


@asynccontextmanager
async def _proxies(
    kind: Callable[[str, int], AbstractAsyncContextManager[P]],
) -> AsyncIterator[Callable[[str, int], Awaitable[P]]]:
    """A factory of started `kind(upstream_host, upstream_port)`; all closed after."""
    async with AsyncExitStack() as stack:

        async def make(upstream_host: str, upstream_port: int) -> P:
            return await stack.enter_async_context(kind(upstream_host, upstream_port))

        yield make


@pytest.fixture
async def fault_proxy() -> AsyncIterator[MakeFaultProxy]:
    """Factory: `await fault_proxy(host, port)` starts an in-process proxy; all closed after."""
    async with _proxies(FaultProxy) as make:
        yield make


@pytest.fixture
async def proxy_process() -> AsyncIterator[MakeProxyProcess]:
    """Factory: `await proxy_process(host, port)` starts a proxy child; all stopped after.

    A child process, unlike `fault_proxy`, keeps forwarding while the test's
    event loop is blocked.
    """
    async with _proxies(ProxyProcess) as make:
        yield make

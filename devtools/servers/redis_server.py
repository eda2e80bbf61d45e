"""Start real `redis-server` processes (plain, password, ACL, TLS) on free ports."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff

from devtools.servers.ports import LOOPBACK, free_port
from devtools.servers.tls import CertPair

REDIS_SERVER = "redis-server"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-secret"

_START_TIMEOUT = 5.0
_POLL_INTERVAL = 0.02
_STOP_TIMEOUT = 5.0
_START_ATTEMPTS = 3
_LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class AclUser:
    """A Redis ACL user: name, password and the command rules after `on >pw ~*`."""

    name: str
    password: str
    rules: str
    keys: str = "~*"

    def directive(self) -> str:
        """Render the `user` line for redis.conf."""
        return f"user {self.name} reset on >{self.password} {self.keys} {self.rules}"


# The user the monitor is documented to need: reads and connection setup, no more.
MONITOR_USER = AclUser(
    "ldmon", "ldmon-secret", "-@all +@read +ping +auth +hello +client|setname +info"
)
# A typical "read-only" user handed out by operators.
READER_USER = AclUser(
    "ldreader", "ldreader-secret", "+@all -@write -@admin -@dangerous"
)
# Too narrow for the monitor: TYPE and INFO answer NOPERM.
NARROW_USER = AclUser("ldnarrow", "ldnarrow-secret", "-@all +get +auth +hello +ping")
STANDARD_ACL_USERS = (MONITOR_USER, READER_USER, NARROW_USER)


@dataclass(frozen=True)
class RedisTls:
    """TLS settings: the server certificate and whether client certs are required."""

    server: CertPair
    auth_clients: bool = False
    # The certificate the fixtures' admin connection presents when auth_clients is on.
    client: CertPair | None = None


class RedisStartError(RuntimeError):
    """redis-server exited or never answered PING."""


@dataclass
class RedisServer:
    """A running redis-server and how to reach it with full rights."""

    host: str
    port: int | None
    tls_port: int | None
    password: str | None
    acl_users: tuple[AclUser, ...]
    tls: RedisTls | None
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def log_file(self) -> Path:
        """The server's combined stdout/stderr log."""
        return self.directory / "redis.log"

    @property
    def client_port(self) -> int:
        """The port clients use: the TLS port on TLS servers, else the plain one."""
        port = self.tls_port if self.tls is not None else self.port
        if port is None:
            raise RuntimeError("redis-server listens on no port")
        return port

    @property
    def address(self) -> str:
        """`host:port` of the client port."""
        return f"{self.host}:{self.client_port}"

    @property
    def url(self) -> str:
        """`redis://` or `rediss://` URL of the client port, without credentials."""
        scheme = "rediss" if self.tls is not None else "redis"
        return f"{scheme}://{self.address}"

    def url_with_auth(
        self, username: str | None = None, password: str | None = None
    ) -> str:
        """The URL with credentials embedded (test passwords are URL-safe)."""
        scheme = "rediss" if self.tls is not None else "redis"
        userinfo = f"{username or ''}:{password}@" if password is not None else ""
        return f"{scheme}://{userinfo}{self.address}"

    @property
    def admin_credentials(self) -> tuple[str | None, str | None]:
        """Username and password of a connection with every right."""
        if self.acl_users and self.password is None:
            return ADMIN_USERNAME, ADMIN_PASSWORD
        return None, self.password

    def client_kwargs(self, *, verify: bool = True) -> dict[str, Any]:
        """Connection keywords (host, port, TLS files) for sync and async clients."""
        kwargs: dict[str, Any] = {"host": self.host, "port": self.client_port}
        if self.tls is not None:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.server.ca_file))
            if not verify:
                kwargs.update(ssl_cert_reqs="none", ssl_check_hostname=False)
            if self.tls.client is not None:
                kwargs.update(
                    ssl_certfile=str(self.tls.client.cert_file),
                    ssl_keyfile=str(self.tls.client.key_file),
                )
        return kwargs

    def _admin_kwargs(self) -> dict[str, Any]:
        # No certificate verification: servers with deliberately bad
        # certificates (expired, wrong host, unknown CA) still need setup.
        username, password = self.admin_credentials
        return self.client_kwargs(verify=False) | {
            "username": username,
            "password": password,
        }

    def admin_client(self, **overrides: Any) -> redis.asyncio.Redis:
        """An asyncio client with full rights, no retries; the caller `aclose`s it."""
        kwargs = self._admin_kwargs() | {
            "retry": redis.asyncio.retry.Retry(NoBackoff(), 0)
        }
        return redis.asyncio.Redis(**(kwargs | overrides))

    def admin(self, **overrides: Any) -> redis.Redis:
        """A sync client with full rights, no retries; the caller closes it."""
        kwargs = self._admin_kwargs() | {"retry": redis.retry.Retry(NoBackoff(), 0)}
        return redis.Redis(**(kwargs | overrides))

    def flushall(self) -> None:
        """Delete every key, failing loudly when the server has died."""
        self.ensure_running()
        with self.admin() as client:
            client.flushall()

    def ensure_running(self) -> None:
        """Raise with the log tail when the process has exited."""
        if self.process.poll() is not None:
            raise RedisStartError(
                f"redis-server exited with {self.process.returncode}\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the server log."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the process and wait for it (kill if it ignores SIGTERM)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_redis(
    tmp_dir: Path,
    *,
    password: str | None = None,
    acl_users: Sequence[AclUser] = (),
    tls: RedisTls | None = None,
    maxmemory: int | None = None,
    maxmemory_policy: str | None = None,
    extra_args: Sequence[str] = (),
) -> RedisServer:
    """Start redis-server on a free loopback port and wait until it answers PING."""
    if tls is not None and tls.auth_clients and tls.client is None:
        raise ValueError("tls.auth_clients needs tls.client for the admin connection")
    last_error: RedisStartError | None = None
    # A port picked by free_port() can be taken before redis binds it; retry.
    for _ in range(_START_ATTEMPTS):
        directory = Path(tempfile.mkdtemp(prefix="redis-", dir=tmp_dir))
        server = _launch(
            directory,
            password=password,
            acl_users=tuple(acl_users),
            tls=tls,
            maxmemory=maxmemory,
            maxmemory_policy=maxmemory_policy,
            extra_args=extra_args,
        )
        try:
            _wait_ready(server)
        except BaseException as err:
            # Never leave a half-started server behind, whatever went wrong.
            server.stop()
            if not isinstance(err, RedisStartError):
                raise
            if "Address already in use" not in server.log_tail():
                raise
            last_error = err
        else:
            return server
    assert last_error is not None
    raise last_error


def _launch(
    directory: Path,
    *,
    password: str | None,
    acl_users: tuple[AclUser, ...],
    tls: RedisTls | None,
    maxmemory: int | None,
    maxmemory_policy: str | None,
    extra_args: Sequence[str],
) -> RedisServer:
    port = None if tls is not None else free_port()
    tls_port = free_port() if tls is not None else None
    lines = [
        f"bind {LOOPBACK}",
        f"port {port or 0}",
        'save ""',
        "appendonly no",
        f"dir {directory}",
        "daemonize no",
        'logfile ""',
        "protected-mode no",
    ]
    if tls is not None:
        lines += [
            f"tls-port {tls_port}",
            f"tls-cert-file {tls.server.cert_file}",
            f"tls-key-file {tls.server.key_file}",
            f"tls-ca-cert-file {tls.server.ca_file}",
            f"tls-auth-clients {'yes' if tls.auth_clients else 'no'}",
        ]
    if password is not None:
        lines.append(f"requirepass {password}")
    if acl_users:
        lines.append(f"user {ADMIN_USERNAME} reset on >{ADMIN_PASSWORD} ~* &* +@all")
        lines += [user.directive() for user in acl_users]
        if password is None:
            lines.append("user default off")
    if maxmemory is not None:
        lines.append(f"maxmemory {maxmemory}")
    if maxmemory_policy is not None:
        lines.append(f"maxmemory-policy {maxmemory_policy}")
    config = directory / "redis.conf"
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o600)
    log_file = directory / "redis.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [REDIS_SERVER, str(config), *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return RedisServer(
        host=LOOPBACK,
        port=port,
        tls_port=tls_port,
        password=password,
        acl_users=acl_users,
        tls=tls,
        directory=directory,
        process=process,
    )


def _wait_ready(server: RedisServer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        server.ensure_running()
        try:
            with server.admin(socket_timeout=1.0, socket_connect_timeout=1.0) as client:
                if client.ping():
                    return
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as err:
            last_error = err
        time.sleep(_POLL_INTERVAL)
    server.ensure_running()
    raise RedisStartError(
        f"redis-server on {server.address} did not answer PING within "
        f"{_START_TIMEOUT} s (last error: {last_error!r})\n{server.log_tail()}"
    )

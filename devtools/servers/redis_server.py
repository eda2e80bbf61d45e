"""Start real `redis-server` processes (plain, password, ACL, TLS) on free ports."""

from __future__ import annotations

import shutil
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


# --- Redis Cluster ---------------------------------------------------------------

_CLUSTER_SLOTS = 16384
_CLUSTER_READY_TIMEOUT = 15.0


@dataclass
class RedisCluster:
    """Masters of a Redis Cluster on loopback, every slot assigned."""

    nodes: tuple[RedisServer, ...]

    def node_id(self, node: RedisServer) -> str:
        """The cluster node id of `node`."""
        with node.admin() as client:
            node_id: bytes = client.execute_command("CLUSTER", "MYID")
            return node_id.decode()

    def owner(self, key: str) -> RedisServer:
        """The master that serves `key`'s slot."""
        with self.nodes[0].admin() as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(master[1])
                    return next(n for n in self.nodes if n.client_port == port)
        raise RuntimeError(f"no node serves the slot of {key}")

    def others(self, node: RedisServer) -> list[RedisServer]:
        """Every master but `node`."""
        return [n for n in self.nodes if n is not node]

    def set(self, key: str, value: str) -> RedisServer:
        """SET `key` on the master that owns it; return that master."""
        owner = self.owner(key)
        with owner.admin() as client:
            client.set(key, value)
        return owner

    def migrating(self, key: str, value: str) -> tuple[RedisServer, RedisServer]:
        """Put `key`'s slot in migration from its owner to another master, with
        `key` (set to `value`) already moved: the owner answers `-ASK` for it.

        Returns (owner, importing node).
        """
        owner = self.owner(key)
        target = self.others(owner)[0]
        with owner.admin() as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            client.delete(key)
        owner_id, target_id = self.node_id(owner), self.node_id(target)
        with target.admin() as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", owner_id)
            with client.pipeline(transaction=False) as pipe:
                pipe.execute_command("ASKING")
                pipe.set(key, value)
                pipe.execute()
        with owner.admin() as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        return owner, target

    def stop(self) -> None:
        """Stop every node and delete its directory."""
        for node in self.nodes:
            node.stop()
            shutil.rmtree(node.directory, ignore_errors=True)


def start_redis_cluster(
    tmp_dir: Path,
    *,
    masters: int = 3,
    password: str | None = None,
    tls: RedisTls | None = None,
) -> RedisCluster:
    """Start `masters` cluster-enabled redis-servers, share the slots, join them.

    With `tls`, the nodes listen on TLS only, the cluster bus is TLS too, and
    redirects name the TLS ports. The bus verifies both ends, so `tls.client`
    (a client certificate of the same CA) is required.
    """
    bus_tls: tuple[str, ...] = ()
    if tls is not None:
        if tls.client is None:
            raise ValueError("a TLS cluster needs tls.client for its bus")
        bus_tls = (
            "--tls-cluster",
            "yes",
            "--tls-client-cert-file",
            str(tls.client.cert_file),
            "--tls-client-key-file",
            str(tls.client.key_file),
        )
    nodes: list[RedisServer] = []
    bus_ports = [free_port() for _ in range(masters)]
    try:
        for bus_port in bus_ports:
            nodes.append(
                start_redis(
                    tmp_dir,
                    password=password,
                    tls=tls,
                    extra_args=(
                        *bus_tls,
                        "--cluster-enabled",
                        "yes",
                        # The bus port would be port + 10000, maybe above 65535.
                        "--cluster-port",
                        str(bus_port),
                    ),
                )
            )
        cluster = RedisCluster(tuple(nodes))
        share = _CLUSTER_SLOTS // masters
        for index, node in enumerate(nodes):
            end = (
                _CLUSTER_SLOTS - 1 if index == masters - 1 else (index + 1) * share - 1
            )
            with node.admin() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * share, end)
        with nodes[0].admin() as client:
            for node, bus_port in zip(nodes[1:], bus_ports[1:], strict=True):
                client.execute_command(
                    "CLUSTER", "MEET", node.host, node.client_port, bus_port
                )
        _wait_cluster_ready(cluster)
    except BaseException:
        RedisCluster(tuple(nodes)).stop()
        raise
    return cluster


def _wait_cluster_ready(cluster: RedisCluster) -> None:
    deadline = time.monotonic() + _CLUSTER_READY_TIMEOUT
    while time.monotonic() < deadline:
        ready = True
        for node in cluster.nodes:
            node.ensure_running()
            with node.admin() as client:
                info = client.execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            fields = dict(
                line.split(":", 1) for line in text.splitlines() if ":" in line
            )
            if fields.get("cluster_state") != "ok" or int(
                fields.get("cluster_known_nodes", "0")
            ) != len(cluster.nodes):
                ready = False
        if ready:
            return
        time.sleep(0.1)
    raise RedisStartError(
        f"the Redis Cluster did not reach cluster_state:ok within "
        f"{_CLUSTER_READY_TIMEOUT} s"
    )

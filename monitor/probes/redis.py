"""Redis probe: what an SDK beside the monitor would read, measured directly.

Each probe opens its own connection (so TLS and authentication are proven
every round), times TCP connect, TLS handshake and authentication apart,
sends `TYPE` and `GET` of `{prefix}:big_segments_synchronized_on` in one
round trip, and closes the connection however it went. One attempt per
round: redis-py's default retries would turn a refused connection or a TLS
failure into a timeout and hide the real reason. Only read commands are sent.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio.connection as redis_connection
import structlog
from redis.event import EventDispatcher
from redis.exceptions import (
    AuthenticationError,
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from monitor.errors import Reason
from monitor.layout import redis_synchronized_on_key
from monitor.probes import CanaryResult, ProbeResult, Recorder, RedisHealth
from monitor.probes.redis_health import (
    canary_commands,
    canary_results,
    health_from_info,
    parse_info,
    sample_membership,
)
from monitor.targets import RedisEndpoint, Target, TlsSettings


class _ProbeConnection(redis_connection.Connection):
    """A redis-py connection whose TCP connect and TLS handshake are timed apart."""

    def __init__(
        self,
        recorder: Recorder,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._recorder = recorder
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname
        self.transport: asyncio.WriteTransport | None = None
        self.tls_not_after: float | None = None

    async def _connect(self) -> None:
        # Replaces redis-py's _connect (one open_connection with ssl=...) so
        # that connect and TLS are separate phases with separate failures.
        recorder = self._recorder
        recorder.begin("connect")
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.transport = writer.transport
        recorder.end()
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ssl_context is not None:
            recorder.begin("tls")
            await writer.start_tls(
                self._ssl_context, server_hostname=self._server_hostname
            )
            self.transport = writer.transport
            recorder.end()
            ssl_object = writer.get_extra_info("ssl_object")
            self.tls_not_after = earliest_not_after(ssl_object, _peer_chain(ssl_object))
        self._reader = reader
        self._writer = writer

    async def open(self) -> None:
        """Connect, handshake and authenticate, each phase timed."""
        await self._connect()
        self._recorder.begin("auth")
        await self.on_connect()
        self._recorder.end()

    async def abort(self) -> None:
        """Drop the connection at once: no graceful TLS shutdown to wait for."""
        if self.transport is not None:
            self.transport.abort()
        await self.disconnect(nowait=True)


def _peer_chain(ssl_object: Any) -> list[Any]:
    """The certificates the server presented.

    Python 3.13 makes `get_unverified_chain` public; 3.11 and 3.12 have it on
    the private `_sslobj`. Without it, the leaf alone is used.
    """
    for holder in (ssl_object, getattr(ssl_object, "_sslobj", None)):
        getter = getattr(holder, "get_unverified_chain", None)
        if getter is not None:
            try:
                return list(getter() or [])
            except (ssl.SSLError, ValueError):
                return []
    return []


def earliest_not_after(ssl_object: Any, chain: list[Any]) -> float | None:
    """The earliest notAfter (epoch seconds) in the presented chain."""
    dates: list[str] = []
    for cert in chain:
        info = cert.get_info() if hasattr(cert, "get_info") else {}
        if isinstance(info, dict) and info.get("notAfter"):
            dates.append(info["notAfter"])
    if not dates and ssl_object is not None:
        leaf = ssl_object.getpeercert()  # empty without verification
        if leaf and leaf.get("notAfter"):
            dates.append(str(leaf["notAfter"]))
    parsed = []
    for date in dates:
        try:
            parsed.append(float(ssl.cert_time_to_seconds(date)))
        except ValueError:
            continue
    return min(parsed) if parsed else None


def _walk(err: BaseException) -> list[BaseException]:
    """The exception and its causes and contexts, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify(err: BaseException, *, tls: bool, replied: bool) -> tuple[Reason, str]:
    """Map a failure to its reason and a message for people."""
    chain = _walk(err)
    for item in chain:
        if isinstance(item, socket.gaierror):
            return Reason.DNS, f"cannot resolve the host: {item.strerror or item}"
        if isinstance(item, ConnectionRefusedError):
            return Reason.REFUSED, "connection refused: nothing listens on that port"
        if isinstance(item, ssl.SSLCertVerificationError):
            return (
                Reason.TLS_VERIFY,
                f"certificate not trusted: {item.verify_message or item}",
            )
        if isinstance(item, ssl.SSLError):
            hint = (
                " (is the port plain Redis, not TLS?)"
                if "WRONG_VERSION" in str(item).upper()
                else ""
            )
            return (
                Reason.TLS_HANDSHAKE,
                f"TLS handshake failed: {item.reason or item}{hint}",
            )
        if isinstance(item, NoPermissionError):
            return (
                Reason.NO_PERMISSION,
                f"the monitor's Redis user lacks a permission: {item}",
            )
        if isinstance(item, AuthenticationError):
            return Reason.AUTH, f"authentication failed: {item}"
        if isinstance(item, TimeoutError | RedisTimeoutError):
            return Reason.TIMEOUT, "no answer in time"
    closed = any(
        isinstance(
            item,
            RedisConnectionError
            | ConnectionResetError
            | asyncio.IncompleteReadError
            | BrokenPipeError,
        )
        for item in chain
    )
    if closed and not replied:
        hint = "does it require a client certificate?" if tls else "is it a TLS port?"
        return (
            Reason.TLS_HANDSHAKE,
            f"the server closed the connection before replying ({hint})",
        )
    if closed:
        return Reason.OTHER, f"the connection was closed mid-conversation: {err}"
    return Reason.OTHER, f"{type(err).__name__}: {err}"


@dataclass(frozen=True, slots=True)
class _Health:
    """The last INFO and membership sample of one target."""

    fetched: float  # monotonic
    info: RedisHealth | None
    membership: bool | None


class RedisProbe:
    """Probes Redis big segment stores."""

    def __init__(
        self,
        logger: structlog.stdlib.BoundLogger,
        *,
        health_interval: float = 300.0,
        clock: Any = time.time,
    ) -> None:
        self._log = logger
        self._clock = clock
        self.health_interval = health_interval
        # Building an SSLContext loads the CA store; do it once per settings.
        self._contexts: dict[TlsSettings, ssl.SSLContext] = {}
        self._health: dict[str, _Health] = {}
        self._warned: set[tuple[str, str]] = set()
        self._events = EventDispatcher()

    def ssl_context(self, tls: TlsSettings) -> ssl.SSLContext:
        """A cached client context for these TLS settings."""
        context = self._contexts.get(tls)
        if context is None:
            context = ssl.create_default_context(
                cafile=str(tls.ca_file) if tls.ca_file else None
            )
            if tls.cert_file is not None and tls.key_file is not None:
                context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
            if tls.insecure_skip_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[tls] = context
        return context

    def forget_tls(self) -> None:
        """Drop cached contexts (after a reload, certificates may have changed)."""
        self._contexts.clear()

    async def close(self) -> None:
        """Nothing shared to release: every probe owns its connection."""

    async def run(self, target: Target, recorder: Recorder) -> ProbeResult:
        """Probe `target` once; store trouble comes back as a result, never raised."""
        endpoint = target.endpoint
        assert isinstance(endpoint, RedisEndpoint)  # noqa: S101 -- the runner dispatches by kind
        key = redis_synchronized_on_key(target.prefix)
        conn = self._connection(endpoint, recorder)
        replied = False
        health_due = self._health_due(target.id)
        canary_reads = canary_commands(target.prefix, target.canaries)
        commands: list[tuple[str, ...]] = [("TYPE", key), ("GET", key), *canary_reads]
        if health_due:
            commands.append(("INFO",))
        try:
            await conn.open()
            if endpoint.password:
                replied = recorder.authenticated = True  # AUTH answered OK
            recorder.begin("read")
            await conn.send_packed_command(conn.pack_commands(commands))
            kind = await _reply(conn)
            replied = recorder.authenticated = True
            replies = [kind, *[await _reply(conn) for _ in commands[1:]]]
            recorder.end()
            result = self._interpret(key, replies[0], replies[1], recorder, conn)
            canaries = canary_results(
                target.canaries, replies[2 : 2 + len(canary_reads)]
            )
            if health_due:
                await self._refresh_health(target, conn, replies[-1], recorder)
            return self._with_health(target.id, result, canaries)
        except (RedisError, OSError, asyncio.IncompleteReadError) as err:
            reason, message = classify(
                err, tls=endpoint.tls is not None, replied=replied
            )
            recorder.end(ok=False, detail=message)
            return ProbeResult(
                finished_at=self._clock(),
                duration=recorder.elapsed(),
                up=recorder.authenticated,
                read_ok=False,
                schema_ok=None,
                synchronized_on_ms=None,
                reason=reason,
                error=message,
                phases=tuple(recorder.phases.items()),
                steps=tuple(recorder.steps),
                tls_not_after=conn.tls_not_after,
            )
        finally:
            await conn.abort()

    # -- health: INFO and the membership sample, every health_interval ---------

    def _health_due(self, target_id: str) -> bool:
        cached = self._health.get(target_id)
        return (
            cached is None or time.monotonic() - cached.fetched >= self.health_interval
        )

    async def _refresh_health(
        self, target: Target, conn: _ProbeConnection, info: Any, recorder: Recorder
    ) -> None:
        health = None
        if isinstance(info, bytes):
            health = health_from_info(parse_info(info))
        else:
            self._once(target.id, "info", "redis.info_denied", error=str(info))
        recorder.begin("membership")
        membership: bool | None = None
        try:
            membership = await sample_membership(conn, target.prefix)
            recorder.end(detail=f"present={membership}")
        except ResponseError as err:
            recorder.end(ok=False, detail=str(err))
            self._once(target.id, "scan", "redis.scan_denied", error=str(err))
        self._health[target.id] = _Health(time.monotonic(), health, membership)

    def _once(self, target_id: str, what: str, event: str, **fields: Any) -> None:
        """Log a missing permission once per target, not every round."""
        if (target_id, what) not in self._warned:
            self._warned.add((target_id, what))
            self._log.info(event, integration_id=target_id, **fields)

    def _with_health(
        self, target_id: str, result: ProbeResult, canaries: tuple[CanaryResult, ...]
    ) -> ProbeResult:
        cached = self._health.get(target_id)
        if cached is None and not canaries:
            return result
        return replace(
            result,
            redis=cached.info if cached else None,
            membership_present=cached.membership if cached else None,
            canaries=canaries,
        )

    def _connection(
        self, endpoint: RedisEndpoint, recorder: Recorder
    ) -> _ProbeConnection:
        tls = endpoint.tls
        return _ProbeConnection(
            recorder,
            self.ssl_context(tls) if tls is not None else None,
            (tls.server_name or endpoint.host) if tls is not None else None,
            host=endpoint.host,
            port=endpoint.port,
            username=endpoint.username,
            password=endpoint.password.get_secret_value()
            if endpoint.password
            else None,
            db=endpoint.db,
            # RESP2 and no CLIENT SETINFO: nothing beyond AUTH and reads, so a
            # minimal read-only ACL user and old servers both work.
            protocol=2,
            driver_info=None,
            # No retry= and no retry_on_error: redis-py then uses
            # Retry(NoBackoff(), 0), one attempt, without deep-copying a
            # Retry object per connection.
            event_dispatcher=self._events,  # one dispatcher, not one per probe
            socket_timeout=None,  # the runner's per-probe deadline bounds everything
            socket_connect_timeout=None,
            health_check_interval=0,
        )

    def _interpret(
        self,
        key: str,
        kind: Any,
        value: Any,
        recorder: Recorder,
        conn: _ProbeConnection,
    ) -> ProbeResult:
        """Apply the SDK's reading of GET; TYPE tells schema problems apart."""
        reason: Reason | None = None
        error: str | None = None
        read_ok = True
        schema_ok: bool | None = True
        synchronized_on: int | None = None
        if isinstance(value, NoPermissionError) or isinstance(kind, NoPermissionError):
            reason, error = (
                Reason.NO_PERMISSION,
                f"the monitor's Redis user lacks a permission: {value or kind}",
            )
            read_ok = not isinstance(value, Exception)
            schema_ok = None
        elif isinstance(value, Exception):
            read_ok = False
            schema_ok = False
            kind_name = kind.decode() if isinstance(kind, bytes) else str(kind)
            if isinstance(value, ResponseError) and str(value).startswith("WRONGTYPE"):
                reason, error = (
                    Reason.SCHEMA,
                    f"{key} is a {kind_name}; the SDKs expect a string",
                )
            else:
                reason, error = Reason.OTHER, f"GET {key} failed: {value}"
        if read_ok and isinstance(value, bytes):
            try:
                # int() exactly as the Python SDK parses it.
                synchronized_on = int(value)
            except ValueError:
                read_ok = False
                schema_ok = False
                reason = Reason.PARSE
                error = f"{key} holds {value[:40]!r}, not Unix milliseconds"
        return ProbeResult(
            finished_at=self._clock(),
            duration=recorder.elapsed(),
            up=True,
            read_ok=read_ok,
            schema_ok=schema_ok,
            synchronized_on_ms=synchronized_on,
            reason=reason,
            error=error,
            phases=tuple(recorder.phases.items()),
            steps=tuple(recorder.steps),
            tls_not_after=conn.tls_not_after,
        )


async def _reply(conn: _ProbeConnection) -> Any:
    """One pipelined reply; a Redis error reply is returned, not raised."""
    try:
        return await conn.read_response()
    except ResponseError as err:
        if isinstance(err, AuthenticationError):
            raise
        return err

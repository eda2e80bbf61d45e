"""Redis probe: what an SDK beside the monitor would read, measured directly.

Each probe opens its own connection (so TLS and authentication are proven
every round), times TCP connect, TLS handshake and authentication apart,
sends `TYPE` and `GET` of `{prefix}:big_segments_synchronized_on` and the
membership read an SDK makes for an evaluation (`SMEMBERS` of the include
set of a context no one uses), plus any canary and health reads, in one
round trip, and drops the connection
however it went. One attempt per round: a retry would turn a refused
connection or a TLS failure into a timeout and hide the real reason. Only
read commands are sent; the RESP exchange is `monitor/probes/resp.py`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Set
from dataclasses import dataclass, replace
from typing import Any

import structlog

from monitor.config import ProbeConfig
from monitor.probes.failures import causes, classify_transport
from monitor.probes.profiles import RawMetadata, profile_of
from monitor.probes.redis.info import (
    canary_commands,
    canary_results,
    health_from_info,
    parse_info,
    sample_membership,
)
from monitor.probes.redis.resp import (
    RespConnection,
    RespError,
    RespProtocolError,
    pack,
)
from monitor.probes.redis.tls import TlsContexts, earliest_not_after
from monitor.probes.refresh import EveryInterval
from monitor.probes.result import (
    CanaryResult,
    ProbeError,
    ProbeResult,
    Reason,
    Recorder,
    RedisHealth,
)
from monitor.sanitize import clamp_int64, describe_int, int64
from monitor.store_keys import (
    membership_probe_hash,
    redis_include_key,
    redis_synchronized_on_key,
)
from monitor.targets import RedisEndpoint, Target
from monitor.targets.model import CanaryCheck

# Error codes of replies that mean the credentials were refused.
_AUTH_CODES = frozenset({"WRONGPASS", "NOAUTH"})
# After a failed verification, a second handshake reads the certificate's
# expiry: within this share of the time left before the probe's deadline,
# and only when that is at least UNVERIFIED_READ_MIN seconds.
UNVERIFIED_READ_SHARE = 0.8
UNVERIFIED_READ_MIN = 0.02


def _auth_error(reply: RespError) -> bool:
    """WRONGPASS/NOAUTH, and Redis 5's `ERR invalid password` and friends."""
    text = str(reply).lower()
    return reply.code in _AUTH_CODES or (
        reply.code == "ERR" and ("password" in text or "auth" in text)
    )


def _refuse_unauthenticated(first: Any) -> None:
    """NOAUTH on the first command: no password was sent to a store that needs one."""
    if isinstance(first, RespError) and _auth_error(first):
        raise ProbeError(Reason.AUTH, f"authentication failed: {first}")


def _handshake(endpoint: RedisEndpoint) -> list[tuple[str | int, ...]]:
    """AUTH (when there is a password) and SELECT (for a database other than 0)."""
    commands: list[tuple[str | int, ...]] = []
    if endpoint.password is not None:
        secret = endpoint.password.get_secret_value()
        commands.append(
            ("AUTH", endpoint.username, secret)
            if endpoint.username
            else ("AUTH", secret)
        )
    if endpoint.db:
        commands.append(("SELECT", endpoint.db))
    return commands


@dataclass(frozen=True, slots=True)
class _Request:
    """What one probe of a target sends, built once per target layout."""

    key: str  # the sync marker
    member_key: str  # the include set the membership read asks for
    handshake: tuple[tuple[str | int, ...], ...]
    commands: tuple[tuple[str, ...], ...]  # the reads, without INFO
    canary_count: int
    payload: bytes  # handshake and reads, packed for one write


_INFO = pack(("INFO",))


@functools.lru_cache(maxsize=16_384)
def _request(
    endpoint: RedisEndpoint,
    prefix: str,
    canaries: tuple[CanaryCheck, ...],
    empty: str,
) -> _Request:
    """The commands a probe sends, packed once (per-probe formatting showed in
    bench/redis_round.py profiles). Bounded, so gone targets fall out."""
    key = redis_synchronized_on_key(prefix, empty)
    member_key = redis_include_key(prefix, membership_probe_hash(), empty)
    canary_reads = canary_commands(prefix, canaries, empty)
    commands = (("TYPE", key), ("GET", key), ("SMEMBERS", member_key), *canary_reads)
    handshake = tuple(_handshake(endpoint))
    return _Request(
        key=key,
        member_key=member_key,
        handshake=handshake,
        commands=commands,
        canary_count=len(canary_reads),
        payload=pack(*handshake, *commands),
    )


def _check_handshake(command: str | int, reply: Any) -> None:
    """A refused AUTH is reason auth; a refused SELECT is other."""
    if isinstance(reply, RespError):
        if command == "AUTH":
            reason = Reason.AUTH if _auth_error(reply) else Reason.OTHER
            raise ProbeError(reason, f"authentication failed: {reply}")
        raise ProbeError(Reason.OTHER, f"{command} failed: {reply}")


def _with_membership(result: ProbeResult, key: str, reply: Any) -> ProbeResult:
    """`result` plus how the SDKs' membership read (SMEMBERS) went.

    A failed membership read is the probe's reason when the metadata read
    left none: NOPERM is no_permission, WRONGTYPE schema, anything else other.
    """
    if isinstance(reply, list):
        return replace(result, membership_read_ok=True)
    error = f"SMEMBERS {key} failed: {reply}"
    code = reply.code if isinstance(reply, RespError) else ""
    reason = {"NOPERM": Reason.NO_PERMISSION, "WRONGTYPE": Reason.SCHEMA}.get(
        code, Reason.OTHER
    )
    return replace(
        result,
        membership_read_ok=False,
        membership_error=error,
        reason=result.reason or reason,
        error=error if result.error is None else f"{result.error}; {error}",
        schema_ok=False if reason is Reason.SCHEMA else result.schema_ok,
    )


_REDIRECT_CODES = frozenset({"MOVED", "ASK"})


@dataclass(frozen=True, slots=True)
class _Redirect:
    """A Redis Cluster node's `-MOVED <slot> <host>:<port>` or `-ASK ...` reply."""

    kind: str  # MOVED or ASK
    host: str
    port: int

    @property
    def address(self) -> str:
        """`host:port` of the node the reply names."""
        return f"{self.host}:{self.port}"


def _redirect(reply: Any, default_host: str) -> _Redirect | None:
    """The redirect `reply` carries, if any; an empty host is the node asked."""
    if not isinstance(reply, RespError) or reply.code not in _REDIRECT_CODES:
        return None
    parts = str(reply).split()
    if len(parts) != 3:
        return None
    host, _, port = parts[2].rpartition(":")
    if not port.isdigit():
        return None
    return _Redirect(reply.code, host.strip("[]") or default_host, int(port))


def classify(err: BaseException, *, tls: bool, replied: bool) -> tuple[Reason, str]:
    """Map a transport failure to its reason and a message for people."""
    chain = causes(err)
    for item in chain:
        if isinstance(item, ProbeError):
            return item.reason, str(item)
    failure = classify_transport(err)
    if failure is not None:
        return failure.reason, failure.message
    if any(isinstance(item, TimeoutError) for item in chain):
        return Reason.TIMEOUT, "no answer in time"
    closed = any(
        isinstance(
            item, ConnectionResetError | asyncio.IncompleteReadError | BrokenPipeError
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
        return Reason.OTHER, "the connection was closed mid-conversation"
    return Reason.OTHER, f"{type(err).__name__}: {err}"


@dataclass(frozen=True, slots=True)
class _Health:
    """The last INFO and membership sample of one target."""

    info: RedisHealth | None
    membership: bool | None


@dataclass
class _Session:
    """One probe's connection and what it learnt on the way."""

    conn: RespConnection | None = None
    transport: asyncio.WriteTransport | None = None
    tls_not_after: float | None = None
    replied: bool = False  # the server answered at least once


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
        self._tls = TlsContexts()
        self._health: EveryInterval[_Health] = EveryInterval(health_interval)
        self._warned: set[tuple[str, str]] = set()

    @property
    def health_interval(self) -> float:
        """Seconds between INFO and membership reads of a target."""
        return self._health.interval

    @health_interval.setter
    def health_interval(self, seconds: float) -> None:
        self._health.interval = seconds

    def reconfigure(self, settings: ProbeConfig) -> None:
        """Take reloaded settings; drop TLS contexts (certificates may have changed)."""
        self._tls.clear()
        self.health_interval = settings.health_interval

    async def close(self) -> None:
        """Nothing shared to release: every probe owns its connection."""

    def prune(self, present: Set[str]) -> None:
        """Forget the INFO samples and permission warnings of departed targets."""
        self._health.prune(present)
        self._warned = {w for w in self._warned if w[0] in present}

    async def run(self, target: Target, recorder: Recorder) -> ProbeResult:
        """Probe `target` once; store trouble comes back as a result, never raised."""
        endpoint = target.endpoint
        assert isinstance(endpoint, RedisEndpoint)  # noqa: S101 -- the runner dispatches by kind
        # An empty prefix is laid out as the target's SDK lays it out.
        request = _request(
            endpoint,
            target.prefix,
            target.canaries,
            profile_of(target.sdk).redis_empty_prefix,
        )
        commands = request.commands
        handshake = request.handshake
        session = _Session()
        health_due = self._health.due(target.id)
        if health_due:
            commands = (*commands, ("INFO",))
        try:
            conn = await self._open(endpoint, recorder, session)
            # AUTH (and SELECT) go in the same write as the reads: one round
            # trip per probe. The auth phase ends with AUTH's reply.
            conn.send_packed(request.payload + _INFO if health_due else request.payload)
            recorder.begin("auth")
            for command in handshake:
                _check_handshake(command[0], await conn.read())
                session.replied = True
            if handshake:
                recorder.authenticated = True
            recorder.end(detail=None if handshake else "no password: nothing sent")
            recorder.begin("read")
            first = await conn.read()
            session.replied = True
            _refuse_unauthenticated(first)
            recorder.authenticated = True
            replies = [first, *[await conn.read() for _ in commands[1:]]]
            recorder.end()
            replies = await self._redirected(
                target, endpoint, commands, replies, recorder
            )
            canaries = canary_results(
                target.canaries, replies[3 : 3 + request.canary_count]
            )
            if health_due:
                await self._refresh_health(target, conn, replies[-1], recorder)
            result = self._interpret(
                request.key,
                replies[0],
                replies[1],
                recorder,
                session,
                target_id=target.id,
                canaries=canaries,
                membership_read_ok=isinstance(replies[2], list),
            )
            if result.membership_read_ok:
                return result
            return _with_membership(result, request.member_key, replies[2])
        except (
            ProbeError,
            OSError,
            asyncio.IncompleteReadError,
            RespProtocolError,
        ) as err:
            reason, message = classify(
                err, tls=endpoint.tls is not None, replied=session.replied
            )
            recorder.end(ok=False, detail=message)
            if reason == Reason.TLS_VERIFY and session.tls_not_after is None:
                # An expired (or untrusted) certificate still has an expiry
                # worth exporting: ld_store_tls_cert_expiry_timestamp_seconds.
                session.tls_not_after = await self._unverified_not_after(
                    endpoint, recorder
                )
            return recorder.failure(
                reason, message, self._clock(), tls_not_after=session.tls_not_after
            )
        finally:
            # Abort, not close: no graceful TLS shutdown to wait for.
            if session.transport is not None:
                session.transport.abort()

    async def _open(
        self, endpoint: RedisEndpoint, recorder: Recorder, session: _Session
    ) -> RespConnection:
        """Connect, handshake and authenticate, each phase timed apart."""
        recorder.begin("connect")
        reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        session.transport = writer.transport
        recorder.end()
        # asyncio already sets TCP_NODELAY on its TCP transports.
        if endpoint.tls is not None:
            recorder.begin("tls")
            await writer.start_tls(
                self._tls.get(endpoint.tls),
                server_hostname=endpoint.tls.server_name or endpoint.host,
            )
            session.transport = writer.transport
            recorder.end()
            session.tls_not_after = earliest_not_after(
                writer.get_extra_info("ssl_object")
            )
        conn = session.conn = RespConnection(reader, writer)
        return conn

    async def _unverified_not_after(
        self, endpoint: RedisEndpoint, recorder: Recorder
    ) -> float | None:
        """The presented chain's earliest notAfter, after verification failed.

        A second handshake with verification off, that only reads the
        certificate and drops the connection: nothing is sent over it. It runs
        within what is left of the probe's deadline (with a margin, so that
        the failure is still reported as `tls_verify`, not as a timeout), and
        gives up quietly: the expiry is then unknown, as before.
        """
        assert endpoint.tls is not None  # noqa: S101 -- only TLS fails verification
        remaining = recorder.remaining()
        budget = 0.0 if remaining is None else remaining * UNVERIFIED_READ_SHARE
        if budget < UNVERIFIED_READ_MIN:
            return None
        transport: asyncio.WriteTransport | None = None
        try:
            async with asyncio.timeout(budget):
                _reader, writer = await asyncio.open_connection(
                    endpoint.host, endpoint.port
                )
                transport = writer.transport
                await writer.start_tls(
                    self._tls.unverified(endpoint.tls),
                    server_hostname=endpoint.tls.server_name or endpoint.host,
                )
                transport = writer.transport
                return earliest_not_after(writer.get_extra_info("ssl_object"))
        except (OSError, TimeoutError):  # ssl.SSLError is an OSError
            return None
        finally:
            if transport is not None:
                transport.abort()

    # -- Redis Cluster: MOVED and ASK, as the target's SDK meets them ----------

    async def _redirected(
        self,
        target: Target,
        endpoint: RedisEndpoint,
        commands: tuple[tuple[str, ...], ...],
        replies: list[Any],
        recorder: Recorder,
    ) -> list[Any]:
        """`replies` with any MOVED/ASK followed once, or the SDK's failure.

        A cluster-aware client (the profile's `follows_cluster_redirects`)
        sends the command again to the node named, with the same credentials
        and TLS settings (after `ASKING` for ASK); a second redirect is a
        failure. A plain client returns the error reply: the SDK's read fails.
        """
        moves = {
            index: move
            for index, reply in enumerate(replies)
            if (move := _redirect(reply, endpoint.host)) is not None
        }
        if not moves:
            return replies
        index, move = next(iter(moves.items()))
        if not profile_of(target.sdk).follows_cluster_redirects:
            raise ProbeError(
                Reason.CLUSTER_REDIRECT,
                f"the store is a Redis Cluster node that redirected "
                f"{commands[index][-1]} to {move.address} ({move.kind}); the "
                f"{target.sdk} SDK does not follow cluster redirects, so its "
                "reads fail",
            )
        by_node: dict[_Redirect, list[int]] = {}
        for index, move in moves.items():
            if not endpoint.may_send_to(move.host, move.port):
                raise ProbeError(
                    Reason.CLUSTER_REDIRECT,
                    f"the Redis Cluster node redirected {commands[index][-1]} to "
                    f"{move.address} ({move.kind}), which matches none of the "
                    "credential's hosts: not followed, the credential withheld",
                )
            by_node.setdefault(move, []).append(index)
        followed = list(replies)
        for node, indexes in by_node.items():
            answers = await self._follow(
                endpoint, node, [commands[i] for i in indexes], recorder
            )
            for index, answer in zip(indexes, answers, strict=True):
                again = _redirect(answer, node.host)
                if again is not None:
                    raise ProbeError(
                        Reason.CLUSTER_REDIRECT,
                        f"the Redis Cluster node {node.address} redirected "
                        f"{commands[index][-1]} again, to {again.address} "
                        f"({again.kind}); the monitor follows one redirect, "
                        "so the cluster's slots are moving or its nodes disagree",
                    )
                followed[index] = answer
        return followed

    async def _follow(
        self,
        endpoint: RedisEndpoint,
        node: _Redirect,
        commands: list[tuple[str, ...]],
        recorder: Recorder,
    ) -> list[Any]:
        """`commands`' replies from the node a redirect names (one connection)."""
        recorder.begin("redirect")
        transport: asyncio.WriteTransport | None = None
        try:
            reader, writer = await asyncio.open_connection(node.host, node.port)
            transport = writer.transport
            if endpoint.tls is not None:
                await writer.start_tls(
                    self._tls.get(endpoint.tls),
                    server_hostname=endpoint.tls.server_name or node.host,
                )
                transport = writer.transport
            conn = RespConnection(reader, writer)
            handshake = _handshake(endpoint)
            asking = node.kind == "ASK"
            sent = [
                part
                for command in commands
                for part in ((("ASKING",), command) if asking else (command,))
            ]
            conn.send(*handshake, *sent)
            for command in handshake:
                _check_handshake(command[0], await conn.read())
            answers = [await conn.read() for _ in sent]
            recorder.end(detail=f"{node.kind} to {node.address}")
            return answers[1::2] if asking else answers
        finally:
            if transport is not None:
                transport.abort()

    # -- health: INFO and the membership sample, every health_interval ---------

    async def _refresh_health(
        self, target: Target, conn: RespConnection, info: Any, recorder: Recorder
    ) -> None:
        health = None
        if isinstance(info, bytes):
            health = health_from_info(parse_info(info))
        else:
            self._once(target.id, "info", "redis.info_denied", error=str(info))
        recorder.begin("membership")
        membership: bool | None = None
        try:
            membership = await sample_membership(
                conn, target.prefix, profile_of(target.sdk).redis_empty_prefix
            )
            recorder.end(detail=f"present={membership}")
        except RespError as err:
            recorder.end(ok=False, detail=str(err))
            self._once(target.id, "scan", "redis.scan_denied", error=str(err))
        self._health.put(target.id, _Health(health, membership))

    def _once(self, target_id: str, what: str, event: str, **fields: Any) -> None:
        """Log a missing permission once per target, not every round."""
        if (target_id, what) not in self._warned:
            self._warned.add((target_id, what))
            self._log.info(event, integration_id=target_id, **fields)

    def _interpret(
        self,
        key: str,
        kind: Any,
        value: Any,
        recorder: Recorder,
        session: _Session,
        *,
        target_id: str,
        canaries: tuple[CanaryResult, ...],
        membership_read_ok: bool | None = None,
    ) -> ProbeResult:
        """Apply the SDK's reading of GET; TYPE tells schema problems apart."""
        cached = self._health.get(target_id)
        reason: Reason | None = None
        error: str | None = None
        read_ok = True
        schema_ok: bool | None = True
        synchronized_on: int | None = None
        raw: RawMetadata | None = None
        denied = next(
            (
                r
                for r in (kind, value)
                if isinstance(r, RespError) and r.code == "NOPERM"
            ),
            None,
        )
        if denied is not None:
            reason, error = (
                Reason.NO_PERMISSION,
                f"the monitor's Redis user lacks a permission: {denied}",
            )
            read_ok = not isinstance(value, RespError)
            schema_ok = None
        elif isinstance(value, RespError):
            read_ok = False
            schema_ok = False
            kind_name = (
                kind.decode("utf-8", "replace")
                if isinstance(kind, bytes)
                else str(kind)
            )
            if value.code == "WRONGTYPE":
                reason, error = (
                    Reason.SCHEMA,
                    f"{key} is a {kind_name}; the SDKs expect a string",
                )
            else:
                reason, error = Reason.OTHER, f"GET {key} failed: {value}"
        if read_ok and (value is None or isinstance(value, bytes)):
            # Kept for the target's SDK profile, which may parse it otherwise.
            raw = RawMetadata(
                "redis",
                None if value is None else value.decode("utf-8", "surrogateescape"),
            )
        if read_ok and value is not None and not isinstance(value, bytes):
            # Not what GET returns: a broken or hostile server.
            read_ok = False
            reason, error = Reason.PARSE, f"GET {key} returned {type(value).__name__}"
        if read_ok and isinstance(value, bytes):
            try:
                # int() exactly as the Python SDK parses it.
                synchronized_on = int(value)
            except ValueError:
                read_ok = False
                schema_ok = False
                reason = Reason.PARSE
                error = f"{key} holds {value[:40]!r}, not Unix milliseconds"
            else:
                if int64(synchronized_on) is None:
                    # The SDK may still read it (the profile judges the raw
                    # value); what the monitor shows is clamped to 64 bits.
                    reason = Reason.PARSE
                    error = (
                        f"{key} holds {describe_int(synchronized_on)}, "
                        "not Unix milliseconds"
                    )
                    synchronized_on = clamp_int64(synchronized_on)
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
            tls_not_after=session.tls_not_after,
            redis=cached.info if cached else None,
            membership_present=cached.membership if cached else None,
            canaries=canaries,
            raw=raw,
            membership_read_ok=membership_read_ok,
        )

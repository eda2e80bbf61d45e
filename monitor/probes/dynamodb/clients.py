"""AWS clients for the DynamoDB probe: shared, credentialed once, closed together.

Credentials come from the standard chain (environment, shared files, web
identity / IRSA, container and instance roles), resolved once per process
by one aiobotocore session; refreshable chain credentials (IRSA, instance
roles) renew themselves. A target with a `role_arn` gets that role, assumed
through STS with the chain's credentials and renewed by aiobotocore's
refreshable credentials shortly before they expire (15 minutes ahead, at
the latest 10), never on every probe. STS is reached the standard way
(`AWS_ENDPOINT_URL_STS` or the config file's `services` section can point it
elsewhere), not through the target's DynamoDB `endpoint_url`, which may be a
VPC endpoint that serves DynamoDB only.

One client per (region, endpoint_url, role, external id): probes of many
tables behind one endpoint share its connection pool. Exceptions are not
translated here; `probes/dynamodb.py` does that at its boundary.

aiobotocore reads a reply's whole body before parsing it, with no limit of
its own: the clients here read it through `BoundedResponse`, which refuses
a `Content-Length` above `MAX_REPLY_BYTES` before reading anything and stops
a body without one once it grows past the bound (`ReplyTooLargeError`, the
probe's reason `reply_too_large`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.credentials import (
    AioCredentialResolver,
    AioDeferredRefreshableCredentials,
)
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession
from botocore.config import Config
from botocore.exceptions import NoCredentialsError

from monitor.targets import DynamoDBEndpoint

ROLE_SESSION_NAME = "ld-store-monitor"


@dataclass(frozen=True, slots=True)
class ClientKey:
    """What makes two targets' clients interchangeable."""

    region: str | None
    endpoint_url: str | None
    role_arn: str | None
    external_id: str | None

    @classmethod
    def of(cls, endpoint: DynamoDBEndpoint) -> ClientKey:
        """The key of the client that reaches `endpoint`."""
        return cls(
            endpoint.region,
            endpoint.endpoint_url,
            endpoint.role_arn,
            endpoint.external_id if endpoint.role_arn else None,
        )


# The largest reply body a probe reads. The probe's calls return one table
# description (a few KiB) or one item (DynamoDB caps an item at 400 KB).
MAX_REPLY_BYTES = 1024 * 1024
_READ_CHUNK = 64 * 1024


class ReplyTooLargeError(Exception):
    """A DynamoDB reply body larger than MAX_REPLY_BYTES (announced or read)."""


class BoundedResponse(aiohttp.ClientResponse):
    """An aiohttp response whose body is read up to MAX_REPLY_BYTES, never more."""

    async def read(self) -> bytes:
        """The body, or ReplyTooLargeError (the connection is then dropped)."""
        if self._body is None:
            length = self.content_length
            if length is not None and length > MAX_REPLY_BYTES:
                self.close()
                raise ReplyTooLargeError(
                    f"a reply of {length} bytes (the limit is {MAX_REPLY_BYTES})"
                )
            try:
                self._body = await self._read_bounded()
            except BaseException:
                self.close()
                raise
        return await super().read()

    async def _read_bounded(self) -> bytes:
        body = bytearray()
        async for chunk in self.content.iter_chunked(_READ_CHUNK):
            body += chunk
            if len(body) > MAX_REPLY_BYTES:
                raise ReplyTooLargeError(
                    f"a reply of more than {MAX_REPLY_BYTES} bytes"
                )
        return bytes(body)


class BoundedHttpSession(AIOHTTPSession):  # type: ignore[misc]  # untyped base
    """aiobotocore's aiohttp session, reading replies through BoundedResponse."""

    async def _get_session(self, proxy_url: Any) -> aiohttp.ClientSession:
        session: aiohttp.ClientSession = await super()._get_session(proxy_url)
        session._response_class = BoundedResponse  # no public hook
        return session


# botocore's standard retry mode waits up to this long before its retry.
RETRY_WAIT = 1.0


def client_config(timeout: float, max_connections: int) -> AioConfig:
    """botocore settings for a probe that must finish within `timeout` seconds.

    Two attempts in all (botocore's `max_attempts` would count retries, so
    `max_attempts=2` means three), so a throttled table costs one short retry,
    not a round; but only when both attempts and the retry's wait (up to
    RETRY_WAIT) fit before the runner's deadline. With a shorter probe timeout
    there is one attempt, so a quick failure keeps its own reason instead of
    turning into a timeout. Connect and read timeouts share the rest.
    """
    attempts = 2 if timeout >= 2 * RETRY_WAIT + 1.0 else 1
    per_attempt = max((timeout - (attempts - 1) * RETRY_WAIT) / (2 * attempts), 0.05)
    return AioConfig(
        http_session_cls=BoundedHttpSession,
        connect_timeout=per_attempt,
        read_timeout=per_attempt,
        retries={"total_max_attempts": attempts, "mode": "standard"},
        max_pool_connections=max_connections,
        user_agent_appid="ld-store-monitor",
    )


class _RoleProvider:
    """A credential provider that hands out one role's refreshable credentials."""

    METHOD = "assume-role"
    CANONICAL_NAME = "ld-store-monitor-assume-role"

    def __init__(self, credentials: AioDeferredRefreshableCredentials) -> None:
        self._credentials = credentials

    async def load(self) -> AioDeferredRefreshableCredentials:
        """The role's credentials (STS is called when they are first used)."""
        return self._credentials


class AssumedRole:
    """One role's credentials: assumed through STS, renewed before they expire."""

    def __init__(
        self,
        base: AioSession,
        key: ClientKey,
        config: Config,
        logger: structlog.stdlib.BoundLogger,
        clock: Callable[[], float],
    ) -> None:
        self._base = base
        self._key = key
        self._config = config
        self._log = logger
        self.calls = 0  # AssumeRole requests sent, for tests and /status
        self.credentials = AioDeferredRefreshableCredentials(
            refresh_using=self._assume,
            method="assume-role",
            time_fetcher=lambda: dt.datetime.fromtimestamp(clock(), tz=dt.UTC),
        )

    async def _assume(self) -> dict[str, Any]:
        """Call STS AssumeRole with the chain's credentials (the refresh callback)."""
        params: dict[str, Any] = {
            "RoleArn": self._key.role_arn,
            "RoleSessionName": ROLE_SESSION_NAME,
        }
        if self._key.external_id:
            params["ExternalId"] = self._key.external_id
        self.calls += 1
        async with self._base.create_client(
            "sts", region_name=self._key.region, config=self._config
        ) as sts:
            response = await sts.assume_role(**params)
        credentials = response["Credentials"]
        expiration: dt.datetime = credentials["Expiration"]
        self._log.info(
            "dynamodb.role_assumed",
            role_arn=self._key.role_arn,
            expires=expiration.isoformat(),
        )
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiration.isoformat(),
        }


class AwsClients:
    """DynamoDB clients shared by every probe, created on first use, closed together."""

    def __init__(
        self,
        config: Config,
        logger: structlog.stdlib.BoundLogger,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._log = logger
        self._clock = clock
        self._base = AioSession()
        self._clients: dict[ClientKey, Any] = {}
        self._roles: dict[ClientKey, AssumedRole] = {}
        self._sessions: dict[ClientKey, AioSession] = {}
        self._locks: dict[ClientKey, asyncio.Lock] = {}

    def cached(self, key: ClientKey) -> Any | None:
        """The client for `key` if it exists already."""
        return self._clients.get(key)

    @property
    def open_clients(self) -> int:
        """How many DynamoDB clients are open."""
        return len(self._clients)

    @property
    def assume_role_calls(self) -> int:
        """AssumeRole requests sent since start, over every role."""
        return sum(role.calls for role in self._roles.values())

    async def client(self, key: ClientKey) -> Any:
        """The client for `key`, creating it (and resolving credentials) if needed.

        Credentials are resolved before the client exists, so a missing
        credential or a refused AssumeRole leaves nothing half-made behind and
        the next probe simply tries again.
        """
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            existing = self._clients.get(key)
            if existing is not None:
                return existing
            session = self._session(key)
            credentials = await session.get_credentials()
            if credentials is None:
                raise NoCredentialsError
            await credentials.get_frozen_credentials()  # AssumeRole, once, now
            client = await session.create_client(
                "dynamodb",
                region_name=key.region,
                endpoint_url=key.endpoint_url,
                config=self._config,
            ).__aenter__()
            self._clients[key] = client
            self._log.debug(
                "dynamodb.client_created",
                region=client.meta.region_name,
                endpoint_url=client.meta.endpoint_url,
                role_arn=key.role_arn,
            )
            return client

    def _session(self, key: ClientKey) -> AioSession:
        if key.role_arn is None:
            return self._base
        role_key = ClientKey(key.region, None, key.role_arn, key.external_id)
        session = self._sessions.get(role_key)
        if session is None:
            role = AssumedRole(
                self._base, role_key, self._config, self._log, self._clock
            )
            session = AioSession()
            session.register_component(
                "credential_provider",
                AioCredentialResolver(providers=[_RoleProvider(role.credentials)]),
            )
            self._roles[role_key] = role
            self._sessions[role_key] = session
        return session

    async def close(self) -> None:
        """Close every client; later probes start afresh."""
        clients = list(self._clients.values())
        self._clients.clear()
        self._roles.clear()
        self._sessions.clear()
        self._locks.clear()
        for client in clients:
            await client.__aexit__(None, None, None)

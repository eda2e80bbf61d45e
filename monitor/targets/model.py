"""The resolved target model: one store to probe, where it is and how it is labelled.

Plain frozen values, built by `targets.resolve` and read by the probes, the
service and the exporters; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import SecretStr

from monitor.config import Sdk, TlsConfig
from monitor.store_keys import segment_ref


@dataclass(frozen=True, slots=True)
class Labels:
    """The labels every per-integration series carries.

    `kind` (redis or dynamodb) is exported under the public label name
    `integration`, as the metric contract has it.
    """

    project: str
    environment: str
    kind: str
    integration_id: str

    def values(self) -> tuple[str, str, str, str]:
        """Label values in LABEL_NAMES order."""
        return (self.project, self.environment, self.kind, self.integration_id)


LABEL_NAMES = ("project", "environment", "integration", "integration_id")


Source = Literal["api", "static"]


def host_matches(patterns: tuple[str, ...], host: str, port: int) -> bool:
    """True when a glob of `patterns` matches `host` or `host:port`
    (case-insensitive; an IPv6 host also as `[host]:port`)."""
    host = host.lower()
    candidates = (host, f"{host}:{port}", f"[{host}]:{port}")
    return any(
        fnmatchcase(candidate, pattern.lower())
        for pattern in patterns
        for candidate in candidates
    )


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """Where and how to reach a Redis store."""

    host: str
    port: int
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsConfig | None = None
    db: int = 0
    # The credential's `hosts` patterns: a Cluster redirect to a node none of
    # them matches is not followed with the credential (None: no pin).
    hosts: tuple[str, ...] | None = None

    def may_send_to(self, host: str, port: int) -> bool:
        """May this endpoint's credential go to host:port? (`hosts` globs of
        `host` or `host:port`, case-insensitive; always without `hosts`)."""
        return self.hosts is None or host_matches(self.hosts, host, port)

    @property
    def address(self) -> str:
        """host:port, for people."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def host_key(self) -> str:
        """The server the store lives on; stores sharing it share its fate and limit."""
        return f"redis:{self.address}"


@dataclass(frozen=True, slots=True)
class DynamoDBEndpoint:
    """Where and how to reach a DynamoDB table."""

    table: str
    region: str | None
    endpoint_url: str | None = None
    role_arn: str | None = None
    external_id: str | None = None

    @property
    def address(self) -> str:
        """table (region), for people."""
        return f"{self.table} ({self.region})" if self.region else self.table

    @property
    def host_key(self) -> str:
        """The service endpoint the table is reached through (URL, or the region)."""
        return f"dynamodb:{self.endpoint_url or self.region or ''}"


@dataclass(frozen=True, slots=True)
class CanaryCheck:
    """A canary bound to a target: which membership to read and what to expect."""

    name: str
    context_hash: str
    segment_key: str
    expect: str  # "included" or "excluded"
    generation: int | None
    problem: str | None = None

    @property
    def segment_ref(self) -> str | None:
        """The member the SDKs look for, once the generation is known."""
        return (
            None
            if self.generation is None
            else segment_ref(self.segment_key, self.generation)
        )


SegmentKey = tuple[str, str, str]  # project, environment, segment key


@dataclass(frozen=True, slots=True)
class Target:
    """One store to probe, or a known store that cannot be probed yet (`problem`)."""

    id: str
    source: Source
    labels: Labels
    name: str
    prefix: str
    endpoint: RedisEndpoint | DynamoDBEndpoint | None
    problem: str | None = None
    on: bool = True
    canaries: tuple[CanaryCheck, ...] = ()
    # Whose reading of the store the status follows, and its stale threshold
    # (resolved: the store's own setting, the profile's default, probe.stale_after;
    # None only on a target built by hand: probe.stale_after).
    sdk: Sdk = Sdk.PYTHON
    stale_after: float | None = None
    # The matching credential was not sent: the API named a host outside its
    # `hosts` (the target then has a `problem` and is never probed).
    credential_withheld: bool = False

    @property
    def kind(self) -> str:
        """`redis` or `dynamodb`."""
        return self.labels.kind

    @property
    def address(self) -> str | None:
        """Where the store is, for people."""
        return None if self.endpoint is None else self.endpoint.address

    @property
    def probeable(self) -> bool:
        """True when everything needed to probe is known."""
        return self.endpoint is not None and self.problem is None

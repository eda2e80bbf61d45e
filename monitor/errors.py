"""The monitor's own error types; library errors are translated at the boundary."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class MonitorError(Exception):
    """Base of every error the monitor raises on purpose."""


class ConfigError(MonitorError):
    """A configuration that cannot be used; carries every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid configuration:\n" + "\n".join(self.problems))


class ApiErrorKind(StrEnum):
    """Why a LaunchDarkly REST call failed."""

    AUTH = "auth"  # 401: the token is wrong, expired or revoked
    FORBIDDEN = "forbidden"  # 403: the token lacks a role, or the beta header was lost
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"  # 5xx
    CLIENT = "client"  # any other 4xx
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    MALFORMED = "malformed"  # a reply that is not the JSON we expect
    TOO_LARGE = "too_large"


class ApiError(MonitorError):
    """A LaunchDarkly REST call that did not produce a usable reply."""

    def __init__(
        self,
        kind: ApiErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class Reason(StrEnum):
    """Closed set of probe failure reasons; each maps to a metric label value."""

    DNS = "dns"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    TLS_HANDSHAKE = "tls_handshake"
    TLS_VERIFY = "tls_verify"
    AUTH = "auth"
    NO_PERMISSION = "no_permission"
    NOT_FOUND = "not_found"
    SCHEMA = "schema"
    PARSE = "parse"
    THROTTLED = "throttled"
    OTHER = "other"


class ProbeError(MonitorError):
    """A probe step that failed for a known reason."""

    def __init__(self, reason: Reason, message: str) -> None:
        self.reason = reason
        super().__init__(message)

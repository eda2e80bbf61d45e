"""Why a LaunchDarkly REST call failed, as the client reports it."""

from __future__ import annotations

from enum import StrEnum


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


class ApiError(Exception):
    """A LaunchDarkly REST call that did not produce a usable reply."""

    def __init__(
        self,
        kind: ApiErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        api_message: str | None = None,
    ) -> None:
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        # The `message` of LaunchDarkly's own error reply, when it sent one
        # (kept for the calls that show it: `create`'s 400).
        self.api_message = api_message
        super().__init__(message)

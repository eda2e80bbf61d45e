"""Discovery owns its back-off: when the next round runs after each kind of outcome."""

from __future__ import annotations

import pytest

from monitor.config import ApiConfig
from monitor.launchdarkly.discovery import RoundOutcome
from monitor.launchdarkly.errors import ApiError, ApiErrorKind

API = ApiConfig.model_validate({"interval": 60, "auth_failure_interval": 900})


def failed(kind: ApiErrorKind, retry_after: float | None = None) -> RoundOutcome:
    """A round whose list call failed with `kind`."""
    return RoundOutcome(ok=False, error=ApiError(kind, "x", retry_after=retry_after))


def test_a_good_round_keeps_the_normal_interval() -> None:
    """Nothing pending, no error: None, the loop's own interval."""
    assert RoundOutcome(ok=True, integrations=3).next_delay(API) is None


@pytest.mark.parametrize("kind", [ApiErrorKind.AUTH, ApiErrorKind.FORBIDDEN])
def test_a_refused_token_backs_off_to_the_auth_failure_interval(
    kind: ApiErrorKind,
) -> None:
    """401 and 403 wait api.auth_failure_interval, whatever Retry-After says."""
    outcome = failed(kind, retry_after=5)
    assert outcome.auth_failed
    assert outcome.next_delay(API) == 900


def test_a_rate_limited_list_honours_retry_after_at_least_a_second() -> None:
    """429 with Retry-After waits that long, never less than one second."""
    assert failed(ApiErrorKind.RATE_LIMITED, 30).next_delay(API) == 30
    assert failed(ApiErrorKind.RATE_LIMITED, 0.2).next_delay(API) == 1.0


def test_pending_details_behind_a_rate_limit_come_back_after_it() -> None:
    """A good list with detail fetches left behind a 429 retries after Retry-After."""
    error = ApiError(ApiErrorKind.RATE_LIMITED, "x", retry_after=12)
    assert RoundOutcome(ok=True, pending=2, error=error).next_delay(API) == 12
    assert RoundOutcome(ok=True, pending=0, error=error).next_delay(API) is None


def test_other_failures_keep_the_normal_interval() -> None:
    """A 5xx or a timeout without Retry-After retries at the normal interval."""
    assert failed(ApiErrorKind.SERVER).next_delay(API) is None
    assert not failed(ApiErrorKind.SERVER).auth_failed

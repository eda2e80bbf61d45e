"""LaunchDarkly REST client: the few read calls discovery needs, politely,
and the one write `ld-store-monitor create` makes (never the daemon).

- `Authorization: <token>` (no `Bearer`); `LD-API-Version: beta` *set* on the
  big segment store routes (a second value would make LaunchDarkly treat the
  call as non-beta and refuse it), the dated version elsewhere.
- 429: no call before `Retry-After` / `X-Ratelimit-Reset` has passed: on that
  route alone when the reply says only the route's budget is spent, else on
  every route.
- Remaining budget low: wait for the window to reset before the next call.
  LaunchDarkly counts a global budget and one per route; each call is paced
  by the global budget and its own route's (one endpoint is one route), so a
  spent environments route does not hold back the integration list.
- 5xx and transport errors: a few retries with capped, jittered backoff.
- Replies larger than `max_response_bytes` are refused, not buffered; a reply
  with more than MAX_JSON_VALUES values or nested deeper than MAX_JSON_DEPTH
  is malformed. Replies are decoded and the list parsed in a worker thread
  (the C decoder holds the GIL: the value bound keeps that under ~0.25 s).
- Waits the API asks for are capped at MAX_RATE_LIMIT_WAIT; a 429 without a
  usable wait waits `api.interval`. A reload (`with_settings`) clears a 429's
  wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from monitor import __version__
from monitor.config import ApiConfig
from monitor.launchdarkly.counters import ApiCounters
from monitor.launchdarkly.errors import ApiError, ApiErrorKind
from monitor.launchdarkly.models import (
    Environment,
    Integration,
    IntegrationKind,
    Problems,
    Segment,
    parse_environment,
    parse_integration,
    parse_integration_list,
    parse_segment,
)

API_VERSION = "20240415"
BETA = "beta"
INTEGRATIONS_PATH = "/api/v2/integration-capabilities/big-segment-store"
# Keep this many calls of the window's budget in reserve for other tools that
# share the account's global limit.
RATE_LIMIT_RESERVE = 2
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
_CHUNK = 64 * 1024
# The most a 429 (`Retry-After`, `X-Ratelimit-Reset`) or a spent budget may
# hold discovery back; a larger value is taken as this.
MAX_RATE_LIMIT_WAIT = 900.0
# Bounds on one decoded reply. Values are counted before decoding, as the
# commas in the body (those inside strings too), so a reply of millions of
# tiny items is refused before it costs memory; depth is checked after.
MAX_JSON_VALUES = 1_000_000
MAX_JSON_DEPTH = 32
# `ld_store_api_rate_limit_remaining{scope}`: the account-wide budget, and one
# per route named after the client's endpoint ("route:list_integrations").
GLOBAL_SCOPE = "global"

Sleep = Callable[[float], Awaitable[None]]


def route_scope(endpoint: str) -> str:
    """The rate-limit scope of one route: `route:<endpoint>`."""
    return f"route:{endpoint}"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when `value` nests containers more than `limit` deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = (
            node.values()
            if isinstance(node, dict)
            else node
            if isinstance(node, list)
            else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


# The longest error `message` of LaunchDarkly's kept (`ApiError.api_message`).
MAX_API_MESSAGE = 500


def _error_message(body: bytes) -> str | None:
    """The `message` of an error reply (`{"code", "message"}`), cut; None when
    the body is not one."""
    try:
        doc = json.loads(body[: 64 * 1024])
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    message = doc.get("message") if isinstance(doc, dict) else None
    return message[:MAX_API_MESSAGE] if isinstance(message, str) else None


class LaunchDarklyClient:
    """Reads big segment store integrations, environments and segments."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: ApiConfig,
        logger: structlog.stdlib.BoundLogger,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        retries: int = 2,
        rng: random.Random | None = None,
    ) -> None:
        token = settings.token.get_secret_value() if settings.token else ""
        self._session = session
        self._settings = settings
        self._log = logger
        self._clock = clock
        self._sleep = sleep
        self._retries = retries
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        self._headers = {
            "Authorization": token,
            "Accept": "application/json",
            "User-Agent": f"ld-store-monitor/{__version__}",
        }
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self.counters = ApiCounters()
        # rate-limit scope -> when its window resets (epoch seconds)
        self._reset_at: dict[str, float] = {}
        # rate-limit scope -> no call before this time (after a 429)
        self._not_before: dict[str, float] = {}

    @property
    def requests(self) -> Counter[tuple[str, str]]:
        """Requests made, by (endpoint, status code)."""
        return self.counters.requests

    @property
    def rate_limit_remaining(self) -> dict[str, int]:
        """Requests left per rate-limit scope, from the last reply."""
        return self.counters.rate_limit_remaining

    def with_settings(self, settings: ApiConfig) -> LaunchDarklyClient:
        """This client with new settings; counters and rate limits carry over."""
        fresh = LaunchDarklyClient(
            self._session,
            settings,
            self._log,
            clock=self._clock,
            sleep=self._sleep,
            retries=self._retries,
            rng=self._rng,
        )
        fresh.counters = self.counters
        # The budget windows carry over (capped at MAX_RATE_LIMIT_WAIT); the
        # waits a 429 asked for do not: a reload is the operator's way to try
        # again now, so a bogus Retry-After never outlives it.
        fresh._reset_at = dict(self._reset_at)
        return fresh

    # -- public calls -----------------------------------------------------

    async def list_integrations(self, problems: Problems) -> list[Integration]:
        """Every big segment store integration the token can see."""
        body = await self._get_json("list_integrations", INTEGRATIONS_PATH, beta=True)
        # Up to MAX_LIST_ITEMS items: parsed off the event loop.
        return await asyncio.to_thread(parse_integration_list, body, problems)

    async def get_integration(
        self,
        project: str,
        environment: str,
        kind: IntegrationKind,
        integration_id: str,
        problems: Problems,
    ) -> Integration:
        """One integration with its `config`; ApiError(NOT_FOUND) once deleted."""
        path = "/".join(
            (
                INTEGRATIONS_PATH,
                _segment(project),
                _segment(environment),
                _segment(kind),
                _segment(integration_id),
            )
        )
        body = await self._get_json("get_integration", path, beta=True)
        integration = parse_integration(body, "integration", problems)
        if integration is None:
            raise ApiError(
                ApiErrorKind.MALFORMED, "the integration reply cannot be identified"
            )
        return integration

    async def get_environment(
        self, project: str, environment: str, problems: Problems
    ) -> Environment:
        """The environment's client-side ID, which is the store key prefix."""
        path = (
            f"/api/v2/projects/{_segment(project)}/environments/{_segment(environment)}"
        )
        body = await self._get_json("get_environment", path, beta=False)
        parsed = parse_environment(body, project, environment, problems)
        if parsed is None:
            raise ApiError(ApiErrorKind.MALFORMED, "the environment reply has no _id")
        return parsed

    async def get_segment(
        self, project: str, environment: str, key: str, problems: Problems
    ) -> Segment:
        """A segment's generation and context kind, for canary checks."""
        path = "/".join(
            (
                "/api/v2/segments",
                _segment(project),
                _segment(environment),
                _segment(key),
            )
        )
        body = await self._get_json("get_segment", path, beta=False)
        parsed = parse_segment(body, key, problems)
        if parsed is None:
            raise ApiError(ApiErrorKind.MALFORMED, "the segment reply is not an object")
        return parsed

    async def create_integration(
        self, project: str, environment: str, kind: str, body: dict[str, Any]
    ) -> Any:
        """POST a new integration (`IntegrationDeliveryConfigurationPost`); the
        201 reply's JSON. Sent once: no retry (a 429's wait is the caller's to
        honour, `retry_after`); an error reply's own `message` is kept in
        `ApiError.api_message`."""
        path = "/".join(
            (
                INTEGRATIONS_PATH,
                _segment(project),
                _segment(environment),
                _segment(kind),
            )
        )
        await self._pace("create_integration")
        return await self._attempt(
            "create_integration", path, beta=True, method="POST", body=body
        )

    def retry_after(self, endpoint: str | None = None) -> float:
        """Seconds until LaunchDarkly accepts calls again (0 when it does now).

        For `endpoint`: its route's wait and the account's; without one, the
        longest wait of any scope.
        """
        scopes = (
            list(self._not_before)
            if endpoint is None
            else [GLOBAL_SCOPE, route_scope(endpoint)]
        )
        latest = max((self._not_before.get(s, 0.0) for s in scopes), default=0.0)
        return max(0.0, latest - self._clock())

    # -- plumbing -----------------------------------------------------------

    async def _get_json(self, endpoint: str, path: str, *, beta: bool) -> Any:
        attempt = 0
        while True:
            await self._pace(endpoint)
            try:
                return await self._attempt(endpoint, path, beta=beta)
            except ApiError as err:
                retryable = err.kind in {
                    ApiErrorKind.SERVER,
                    ApiErrorKind.TIMEOUT,
                    ApiErrorKind.CONNECTION,
                }
                if not retryable or attempt >= self._retries:
                    raise
                delay = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) * self._rng.uniform(
                    0.5, 1.0
                )
                self._log.info(
                    "api.retry",
                    endpoint=endpoint,
                    kind=err.kind,
                    attempt=attempt + 1,
                    delay=round(delay, 3),
                )
                attempt += 1
                await self._sleep(delay)

    async def _pace(self, endpoint: str) -> None:
        """Refuse while rate limited; wait for a new window when nearly spent.

        Only the global budget and `endpoint`'s own route budget count.
        """
        wait = self.retry_after(endpoint)
        if wait > 0:
            raise ApiError(
                ApiErrorKind.RATE_LIMITED,
                f"rate limited for {wait:.1f}s more",
                retry_after=wait,
            )
        now = self._clock()
        waits = {
            scope: self._reset_at[scope] - now
            for scope in (GLOBAL_SCOPE, route_scope(endpoint))
            if self.rate_limit_remaining.get(scope, RATE_LIMIT_RESERVE + 1)
            <= RATE_LIMIT_RESERVE
            and scope in self._reset_at
        }
        wait = max(waits.values(), default=0.0)
        if wait <= 0:
            return
        if wait > self._settings.timeout:
            raise ApiError(
                ApiErrorKind.RATE_LIMITED,
                f"rate limit budget spent for {wait:.1f}s",
                retry_after=wait,
            )
        self._log.debug(
            "api.pacing",
            endpoint=endpoint,
            wait=round(wait, 3),
            remaining={scope: self.rate_limit_remaining[scope] for scope in waits},
        )
        await self._sleep(wait)

    async def _attempt(
        self,
        endpoint: str,
        path: str,
        *,
        beta: bool,
        method: str = "GET",
        body: Any = None,
    ) -> Any:
        headers = {**self._headers, "LD-API-Version": BETA if beta else API_VERSION}
        url = self._settings.base_url + path
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                **({} if body is None else {"json": body}),
            ) as resp:
                self.requests[(endpoint, str(resp.status))] += 1
                self._log.debug(
                    "api.request", endpoint=endpoint, path=path, status=resp.status
                )
                self._note_rate_limit(endpoint, resp.headers)
                if resp.status in {200, 201}:
                    data = await self._read_capped(resp)
                    return await asyncio.to_thread(self._decode, data)
                # Drained so the connection is reused; its `message` kept.
                error = self._status_error(endpoint, resp.status, resp.headers)
                error.api_message = _error_message(await self._read_capped(resp))
                raise error
        except TimeoutError as err:
            self.requests[(endpoint, "timeout")] += 1
            raise ApiError(
                ApiErrorKind.TIMEOUT, f"no reply within {self._settings.timeout}s"
            ) from err
        except aiohttp.ClientError as err:
            self.requests[(endpoint, "error")] += 1
            raise ApiError(
                ApiErrorKind.CONNECTION, f"{type(err).__name__}: {err}"
            ) from err

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        cap = self._settings.max_response_bytes
        if resp.content_length is not None and resp.content_length > cap:
            raise ApiError(
                ApiErrorKind.TOO_LARGE,
                f"reply of {resp.content_length} bytes exceeds {cap}",
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > cap:
                raise ApiError(ApiErrorKind.TOO_LARGE, f"reply exceeds {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _decode(body: bytes) -> Any:
        """The JSON value of a reply, within MAX_JSON_VALUES and MAX_JSON_DEPTH."""
        values = body.count(b",") + 1
        if values > MAX_JSON_VALUES:
            raise ApiError(
                ApiErrorKind.MALFORMED,
                f"the reply holds more than {MAX_JSON_VALUES} values",
            )
        try:
            value = json.loads(body)
        except RecursionError as err:
            raise ApiError(
                ApiErrorKind.MALFORMED,
                f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels",
            ) from err
        except (ValueError, UnicodeDecodeError) as err:
            raise ApiError(ApiErrorKind.MALFORMED, f"invalid JSON: {err}") from err
        if _depth_exceeds(value, MAX_JSON_DEPTH):
            raise ApiError(
                ApiErrorKind.MALFORMED,
                f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels",
            )
        return value

    def _note_rate_limit(self, endpoint: str, headers: Any) -> None:
        reset = headers.get("X-Ratelimit-Reset")
        reset_at = (
            min(int(reset) / 1000.0, self._clock() + MAX_RATE_LIMIT_WAIT)
            if reset is not None and reset.strip().isdigit()
            else None
        )
        for scope, header in (
            (GLOBAL_SCOPE, "X-Ratelimit-Global-Remaining"),
            (route_scope(endpoint), "X-Ratelimit-Route-Remaining"),
        ):
            value = headers.get(header)
            if value is not None and value.strip().isdigit():
                self.rate_limit_remaining[scope] = int(value)
                if reset_at is not None:
                    self._reset_at[scope] = reset_at

    def _status_error(self, endpoint: str, status: int, headers: Any) -> ApiError:
        if status == 429:
            wait = self._rate_limit_wait(headers)
            self._not_before[self._limited_scope(endpoint, headers)] = (
                self._clock() + wait
            )
            return ApiError(
                ApiErrorKind.RATE_LIMITED,
                f"HTTP 429: retry in {wait:.1f}s",
                status=status,
                retry_after=wait,
            )
        if status == 401:
            return ApiError(
                ApiErrorKind.AUTH,
                "HTTP 401: the API token is invalid, expired or revoked",
                status=status,
            )
        if status == 403:
            return ApiError(
                ApiErrorKind.FORBIDDEN,
                "HTTP 403: the token may not read integrations (needs a reader role) "
                "or the beta API version was refused",
                status=status,
            )
        if status == 404:
            return ApiError(
                ApiErrorKind.NOT_FOUND, "HTTP 404: not found", status=status
            )
        if status >= 500:
            return ApiError(
                ApiErrorKind.SERVER, f"HTTP {status} from LaunchDarkly", status=status
            )
        return ApiError(ApiErrorKind.CLIENT, f"HTTP {status}", status=status)

    @staticmethod
    def _limited_scope(endpoint: str, headers: Any) -> str:
        """The scope a 429 holds back: the route alone when only its budget is
        spent (the account's has calls left), else everything."""
        route = headers.get("X-Ratelimit-Route-Remaining")
        account = headers.get("X-Ratelimit-Global-Remaining")
        if (
            route is not None
            and route.strip() == "0"
            and account is not None
            and account.strip().isdigit()
            and int(account) > 0
        ):
            return route_scope(endpoint)
        return GLOBAL_SCOPE

    def _rate_limit_wait(self, headers: Any) -> float:
        """Seconds to wait after a 429, from Retry-After or X-Ratelimit-Reset.

        At most MAX_RATE_LIMIT_WAIT; `api.interval` when neither header gives
        a usable (finite, positive) wait, so a 429 never makes the monitor
        call more often than it would anyway.
        """
        waits: list[float] = []
        retry_after = headers.get("Retry-After")
        if retry_after is not None:
            # An HTTP date is rare here, and X-Ratelimit-Reset covers it.
            with contextlib.suppress(ValueError):
                waits.append(float(retry_after))
        reset = headers.get("X-Ratelimit-Reset")
        if reset is not None and reset.strip().isdigit():
            waits.append(int(reset) / 1000.0 - self._clock())
        usable = [w for w in waits if w > 0 and not math.isnan(w)]
        wait = (
            min(max(*usable, 1.0), MAX_RATE_LIMIT_WAIT)
            if usable
            else self._settings.interval
        )
        # Jitter so that replicas sharing a token do not return in lockstep.
        return wait + self._rng.uniform(0.0, 0.5)

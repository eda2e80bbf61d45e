"""The simulator: REST routes behind auth, beta header, rate limits and faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from devtools.ldsim.control import add_control_routes
from devtools.ldsim.endpoints import (
    BETA_ENDPOINTS,
    ROUTES,
    ApiError,
    ApiHandler,
    Endpoints,
    json_response,
)
from devtools.ldsim.faults import Failure, Faults
from devtools.ldsim.firstsync import FirstSync
from devtools.ldsim.ratelimit import RateLimiter
from devtools.ldsim.scenario import DEFAULT_TOKEN, Scenario
from devtools.ldsim.state import Integration, SimulatorState
from devtools.ldsim.stats import Stats

# A stalled request notices its client leaving, or the stall lifting, this fast.
_STALL_POLL_SECONDS: Final = 0.02


class _Lifecycle:
    """Tells stalled and slow replies that the app is shutting down."""

    def __init__(self) -> None:
        self.closing = False

    async def close(self, _app: web.Application) -> None:
        """Mark the app as closing (an `on_shutdown` hook)."""
        self.closing = True


class Simulator(SimulatorState):
    """An in-process LaunchDarkly REST API for big segment store integrations."""

    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        token: str | None = None,
        writer_token: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        scenario = scenario or Scenario()
        super().__init__(scenario, clock)
        self.scenario = scenario
        self.token = token or scenario.token or DEFAULT_TOKEN
        # With a writer token, only it may create integrations (as a Writer
        # role); the read token then gets 403 there. It reads everything too.
        self.writer_token = writer_token
        self.first_sync = FirstSync(self)
        self.forbidden_tokens: set[str] = set(scenario.forbidden_tokens)
        self.faults = Faults()
        self.stats = Stats()
        self.rate_limiter = RateLimiter(scenario.rate_limit, clock)
        self._handlers = Endpoints(self).handlers

    def make_app(self) -> web.Application:
        """Return an aiohttp application serving the API and the `/_sim` routes."""
        lifecycle = _Lifecycle()
        names: dict[object, str] = {}

        @web.middleware
        async def api_middleware(
            request: web.Request, handler: Handler
        ) -> web.StreamResponse:
            if request.path.startswith("/_sim/"):
                return await handler(request)
            endpoint = names.get(request.match_info.route, "unknown")
            self.stats.enter()
            try:
                return await self._serve(request, endpoint, lifecycle)
            finally:
                self.stats.leave()

        app = web.Application(middlewares=[api_middleware])
        app.on_shutdown.append(lifecycle.close)
        app.on_shutdown.append(self._close_first_sync)
        for method, path, endpoint in ROUTES:
            route = app.router.add_route(method, path, self._handlers[endpoint])
            names[route] = endpoint
        add_control_routes(app, self)
        return app

    def created(self, integration: Integration) -> None:
        """Schedule the simulated first sync of a new integration (when on)."""
        self.first_sync.schedule(integration)

    async def _close_first_sync(self, _app: web.Application) -> None:
        await self.first_sync.close()

    async def _serve(
        self, request: web.Request, endpoint: str, lifecycle: _Lifecycle
    ) -> web.StreamResponse:
        """Answer one API request, applying faults, and count it."""
        counted = False
        if self.faults.stall:
            # Counted on arrival so a test can see the request that never got a reply.
            self.stats.record(endpoint, 0)
            counted = True
            while self.faults.stall:
                if lifecycle.closing or _client_gone(request):
                    return ApiError(503, "simulator stopped while stalled").response()
                await asyncio.sleep(_STALL_POLL_SECONDS)
        if self.faults.delay > 0:
            await asyncio.sleep(self.faults.delay)
        failure = self.faults.take_failure(endpoint)
        if failure is not None:
            response = _failure_response(failure)
        else:
            response = await self._answer(request, endpoint)
        for name, value in self.rate_limiter.headers(endpoint).items():
            response.headers.setdefault(name, value)
        response = self._distort(response)
        if not counted:
            self.stats.record(endpoint, response.status)
        body = response.body
        if self.faults.slow_body > 0 and isinstance(body, bytes) and body:
            return await self._send_slowly(request, response, body, lifecycle)
        return response

    async def _answer(self, request: web.Request, endpoint: str) -> web.Response:
        """Check token, budget and beta header, then run the endpoint's handler."""
        try:
            handler = self._admit(request, endpoint)
            return await handler(request)
        except ApiError as err:
            return err.response()

    def _admit(self, request: web.Request, endpoint: str) -> ApiHandler:
        """Return the endpoint's handler, or raise the 401/403/429/404 it gets first."""
        supplied = request.headers.get("Authorization")
        if supplied is not None and supplied in self.forbidden_tokens:
            raise ApiError(403, "Access to the requested resource was denied")
        if supplied != self.token and (
            self.writer_token is None or supplied != self.writer_token
        ):
            raise ApiError(401, "Invalid access token")
        if (
            endpoint == "create_integration"
            and self.writer_token is not None
            and supplied != self.writer_token
        ):
            raise ApiError(
                403,
                "Access to the requested resource was denied: the token's role "
                "lacks the createIntegration action",
            )
        if not self.rate_limiter.take(endpoint):
            raise ApiError(429, "Rate limit exceeded; retry after X-Ratelimit-Reset")
        if endpoint in BETA_ENDPOINTS:
            _require_beta(request)
        handler = self._handlers.get(endpoint)
        if handler is None:
            problem = request.match_info.http_exception
            status = problem.status if problem is not None else 404
            raise ApiError(status, f"No route for {request.method} {request.path}")
        return handler

    def _distort(self, response: web.Response) -> web.Response:
        """Apply a pending malformed-JSON or padding fault to a reply with a body."""
        body = response.body
        if not isinstance(body, bytes) or not body:
            return response
        if response.status == 200 and self.faults.take_malformed():
            # Our bodies are objects without trailing space: any prefix is invalid.
            return _with_body(response, body[: len(body) // 2])
        size = self.faults.take_pad()
        if size is None:
            return response
        padding = b" " * max(0, size - len(body))
        if body[:1] in {b"{", b"["}:
            return _with_body(response, body[:1] + padding + body[1:])
        return _with_body(response, body + padding)

    async def _send_slowly(
        self,
        request: web.Request,
        response: web.Response,
        body: bytes,
        lifecycle: _Lifecycle,
    ) -> web.StreamResponse:
        """Send the headers now, then the body in small chunks with pauses."""
        stream = web.StreamResponse(
            status=response.status, reason=response.reason, headers=_headers(response)
        )
        stream.content_length = len(body)
        await stream.prepare(request)
        size = max(1, self.faults.chunk_size)
        try:
            for start in range(0, len(body), size):
                if lifecycle.closing:
                    return stream
                await asyncio.sleep(self.faults.slow_body)
                await stream.write(body[start : start + size])
            await stream.write_eof()
        except ConnectionError:
            pass  # the client gave up on the slow body, which is what this fault tests
        return stream


def _require_beta(request: web.Request) -> None:
    """Raise 403 unless the first `LD-API-Version` value is `beta` (LD honours it)."""
    values = request.headers.getall("LD-API-Version", [])
    first = values[0].split(",")[0].strip() if values else ""
    if first.lower() != "beta":
        raise ApiError(403, "This is a beta resource: send LD-API-Version: beta")


def _failure_response(failure: Failure) -> web.Response:
    """Return the reply a `fail_next` fault asked for."""
    body = failure.body
    if body is None:
        response = ApiError(failure.status, "Simulated failure").response()
    elif isinstance(body, bytes | str):
        raw = body.encode() if isinstance(body, str) else body
        response = web.Response(
            status=failure.status, body=raw, content_type="text/plain"
        )
    else:
        response = json_response(failure.status, body)
    for name, value in failure.headers.items():
        response.headers[name] = value
    return response


def _with_body(response: web.Response, body: bytes) -> web.Response:
    """Return a copy of `response` with another body."""
    return web.Response(
        status=response.status,
        reason=response.reason,
        body=body,
        headers=_headers(response),
    )


def _headers(response: web.StreamResponse) -> dict[str, str]:
    """Return the headers of a reply, minus the length aiohttp recomputes."""
    return {k: v for k, v in response.headers.items() if k.lower() != "content-length"}


def _client_gone(request: web.Request) -> bool:
    """Return whether the client closed the connection."""
    transport = request.transport
    return transport is None or transport.is_closing()

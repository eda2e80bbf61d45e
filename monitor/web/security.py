"""TLS, basic auth and extra headers of the HTTP endpoints, from the web config.

One `WebGuard` serves every listener (`server.listen` and
`server.status_listen`) and is updated in place on reload:

- TLS: the listeners are created with a `TlsSwitch`, a server context that
  hands each new connection to the context of the settings in force, so new
  certificates, CAs and client-auth policies apply to the next connection
  without rebinding the port. Turning TLS on or off needs a restart.
- Basic auth: checked on every request but the liveness and readiness
  endpoints (a kubelet probe cannot carry a password). bcrypt is slow by
  design, so a check runs in a worker thread and a successful one is
  remembered (by a digest of user, hash and password, never the password
  itself), as exporter-toolkit does.
- Headers: `http_server_config.headers` on every response, 401s included.

Whether or not a web config is given, every response carries
`SECURITY_HEADERS` and a Content-Security-Policy (the page sets its own,
`page.PAGE_POLICY`; everything else allows nothing); headers from the web
config replace them.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import ssl
from base64 import b64decode
from collections.abc import Awaitable, Callable
from typing import Any

import bcrypt
from aiohttp import web

from monitor.config.web import WebSettings

# Paths that never ask for credentials: the kubelet's probes.
OPEN_PATHS = frozenset({"/-/healthy", "/-/ready"})
CACHE_LIMIT = 1024  # successful checks remembered
# A hash to compare unknown users against, so that a wrong user name costs
# the same time as a wrong password (cost 10, of a random throwaway password).
_DUMMY_HASH = b"$2b$10$YDhBSJZxaSKvGsAUVGYec.jIQV4dABjOyWglAjnONaQoxpaX5QWMm"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # JSON and text: nothing in them may run, load or be framed.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


async def add_security_headers(
    request: web.Request, response: web.StreamResponse
) -> None:
    """`on_response_prepare`: SECURITY_HEADERS, unless the response set its own."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def cross_site(request: web.Request) -> bool:
    """True when a browser sent the request from another site.

    `Sec-Fetch-Site` (every current browser) must be `same-origin` or `none`
    (typed, bookmarked); without it, an `Origin` must be this server's.
    Scripts and curl send neither and pass.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is not None and origin != f"{request.scheme}://{request.host}"


class TlsSwitch(ssl.SSLContext):
    """A server context whose connections use whichever context is current.

    asyncio wraps each accepted connection with the listener's context's
    `wrap_bio`; this one delegates to the current context, so replacing it
    changes the certificate and client checks of the next connection.
    Connections already open keep theirs.
    """

    current: ssl.SSLContext

    def __new__(cls, current: ssl.SSLContext) -> TlsSwitch:
        """A server-side context (its own settings are never used)."""
        del current  # __init__'s
        return super().__new__(cls, ssl.PROTOCOL_TLS_SERVER)

    def __init__(self, current: ssl.SSLContext) -> None:
        super().__init__()
        self.current = current

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        """Wrap with the current context."""
        return self.current.wrap_bio(
            incoming, outgoing, server_side, server_hostname, session
        )


class WebGuard:
    """The web config in force, applied to every request of every listener."""

    def __init__(self, settings: WebSettings | None) -> None:
        self.settings = settings
        self._verified: dict[bytes, None] = {}
        self.tls: TlsSwitch | None = (
            TlsSwitch(settings.ssl_context)
            if settings is not None and settings.ssl_context is not None
            else None
        )

    def update(self, settings: WebSettings | None) -> list[str]:
        """Apply reloaded settings; return what only a restart can change."""
        restart: list[str] = []
        context = settings.ssl_context if settings is not None else None
        if (context is None) != (self.tls is None):
            restart.append("tls_server_config (TLS on or off)")
        elif context is not None and self.tls is not None:
            self.tls.current = context
        self.settings = settings
        self._verified.clear()
        return restart

    def install(self, app: web.Application) -> None:
        """Guard `app`: authentication, client certificate names, headers."""
        app.middlewares.append(self._middleware)
        app.on_response_prepare.append(self._add_headers)

    async def _add_headers(
        self, request: web.Request, response: web.StreamResponse
    ) -> None:
        if self.settings is not None:
            response.headers.update(self.settings.headers)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> Any:
        settings = self.settings
        if settings is None:
            return await handler(request)
        if settings.allowed_sans and not _san_allowed(request, settings.allowed_sans):
            return web.Response(status=403, text="Forbidden\n")
        if (
            settings.users
            and request.path not in OPEN_PATHS
            and not await self._authenticated(settings, request)
        ):
            return web.Response(
                status=401,
                text="Unauthorized\n",
                headers={"WWW-Authenticate": "Basic"},
            )
        return await handler(request)

    async def _authenticated(self, settings: WebSettings, request: web.Request) -> bool:
        credentials = _basic_credentials(request.headers.get("Authorization", ""))
        if credentials is None:
            return False
        user, password = credentials
        hashed = settings.users.get(user)
        key = hashlib.sha256(
            b"\0".join((user.encode(), hashed or b"", password))
        ).digest()
        if hashed is not None and key in self._verified:
            return True
        ok = await asyncio.to_thread(_check, password, hashed or _DUMMY_HASH)
        if not ok or hashed is None or settings is not self.settings:
            return False
        if len(self._verified) >= CACHE_LIMIT:
            self._verified.clear()
        self._verified[key] = None
        return True


def _check(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a password longer than bcrypt's 72 bytes, a bad hash
        return False


def _basic_credentials(header: str) -> tuple[str, bytes] | None:
    """(user, password) of a `Basic` Authorization header, else None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


def _san_allowed(request: web.Request, allowed: frozenset[str]) -> bool:
    """True when the client certificate names one of `allowed` (DNS, IP, email, URI)."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return False
    names = {value for _, value in cert.get("subjectAltName", ())}
    return bool(names & allowed)

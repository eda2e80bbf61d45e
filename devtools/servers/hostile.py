"""Hostile stores on loopback: a Redis and a DynamoDB endpoint that send what
no real one would, for the hostile-input tests and `bench/hostile.py`.

`HostileRedis(mode)` answers every connection the way its mode says:

| mode | what it sends |
|---|---|
| `healthy` | AUTH +OK, TYPE string, GET a fresh marker, empty sets, INFO |
| `huge_bulk` | `$2000000000` and then bytes as fast as the socket takes them |
| `huge_array` | `*100000000` and then `:1` elements, endlessly |
| `deep` | 100,000 nested `*1` |
| `int_garbage` | `:abc` for every command |
| `long_error` | `-ERR a.a.a.…` (60 KB) for every command |
| `bigint` | GET returns a 400-digit integer |
| `info_bigint` | INFO says `used_memory:` and 400 digits |
| `future` | GET returns a synchronizedOn ten years ahead |
| `fat` | a 500 KiB bulk string for every command (the connection budget ends it) |

`HostileDynamoDB(mode)` is an HTTP endpoint speaking DynamoDB's JSON protocol
(DescribeTable, GetItem, Query):

| mode | what it sends |
|---|---|
| `healthy` | an ACTIVE table and a fresh synchronizedOn |
| `huge` | `Content-Length: 3000000000` and then bytes, endlessly |
| `endless` | a chunked body that never ends |
| `bigint` | ItemCount, Count and the synchronizedOn N as 400-digit integers |
| `nan` | ItemCount `NaN` (a JSON extension json.loads accepts) and N `"NaN"` |

Each server counts the bytes it sent, so a test can tell how much of a
stream the monitor read before it hung up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any, TypeVar

from aiohttp import web

BIG = "1" + "0" * 400
_Server = TypeVar("_Server", "HostileRedis", "HostileDynamoDB", "HostileApi")
TEN_YEARS_MS = 10 * 365 * 86_400_000
_CHUNK = 64 * 1024

REDIS_MODES = (
    "healthy",
    "huge_bulk",
    "huge_array",
    "deep",
    "int_garbage",
    "long_error",
    "bigint",
    "info_bigint",
    "future",
    "fat",
)
DYNAMODB_MODES = ("healthy", "huge", "endless", "bigint", "nan")


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _info(used_memory: str) -> bytes:
    text = (
        "# Server\r\nredis_version:7.2.4\r\n# Memory\r\n"
        f"used_memory:{used_memory}\r\nmaxmemory:0\r\n"
        "maxmemory_policy:noeviction\r\n# Persistence\r\naof_enabled:1\r\n"
    )
    return _bulk(text.encode())


async def _command(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One RESP array of bulk strings, as clients send commands; None at EOF."""
    try:
        header = await reader.readuntil(b"\r\n")
        if not header.startswith(b"*"):
            return None
        args = []
        for _ in range(int(header[1:-2])):
            size = int((await reader.readuntil(b"\r\n"))[1:-2])
            args.append((await reader.readexactly(size + 2))[:-2])
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        return None
    return args


class HostileRedis:
    """A TCP server on loopback answering as `mode` says (see the module)."""

    def __init__(self, mode: str) -> None:
        assert mode in REDIS_MODES, mode
        self.mode = mode
        self.sent = 0
        self.commands: list[list[bytes]] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> HostileRedis:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def url(self, password: str | None = None, db: int = 0) -> str:
        """`redis://` URL of this server (with `password`, user `ldmon`)."""
        auth = f"ldmon:{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        self.sent += len(data)
        await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, unit: bytes) -> None:
        """`unit` again and again, as fast as the peer reads, until it hangs up."""
        chunk = unit * max(1, _CHUNK // len(unit))
        while not writer.is_closing():
            await self._write(writer, chunk)

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        mode = self.mode
        while True:
            command = await _command(reader)
            if command is None:
                return
            self.commands.append(command)
            name = command[0].upper()
            if mode == "huge_bulk":
                await self._write(writer, b"$2000000000\r\n")
                await self._stream(writer, b"x")
            elif mode == "huge_array":
                await self._write(writer, b"*100000000\r\n")
                await self._stream(writer, b":1\r\n")
            elif mode == "deep":
                await self._write(writer, b"*1\r\n" * 100_000 + b":1\r\n")
            elif mode == "int_garbage":
                await self._write(writer, b":abc\r\n")
            elif mode == "fat":
                await self._write(writer, _bulk(b"x" * 500 * 1024))
            elif mode == "long_error":
                await self._write(writer, b"-ERR " + b"a." * 30_000 + b"\r\n")
            else:
                await self._write(writer, self._reply(name))

    def _reply(self, name: bytes) -> bytes:
        """A well-formed reply, with the mode's one bad value."""
        now_ms = int(time.time() * 1000)
        if name in (b"AUTH", b"SELECT", b"PING"):
            return b"+OK\r\n"
        if name == b"TYPE":
            return b"+string\r\n"
        if name == b"GET":
            value = {
                "bigint": BIG,
                "future": str(now_ms + TEN_YEARS_MS),
            }.get(self.mode, str(now_ms))
            return _bulk(value.encode())
        if name == b"SMEMBERS":
            return b"*0\r\n"
        if name == b"SCAN":
            return b"*2\r\n$1\r\n0\r\n*0\r\n"
        if name == b"INFO":
            return _info(BIG if self.mode == "info_bigint" else "1048576")
        return b"-ERR unknown command\r\n"


class _HttpServer:
    """An aiohttp application on a free loopback port (the subclasses' routes)."""

    def __init__(self) -> None:
        self.port = 0
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        """Add the server's routes to `app`."""
        raise NotImplementedError

    async def start(self) -> None:
        """Listen on a free port."""
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server  # the port chosen by the OS
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


class HostileDynamoDB(_HttpServer):
    """An HTTP endpoint on loopback speaking DynamoDB's JSON protocol badly."""

    def __init__(self, mode: str) -> None:
        assert mode in DYNAMODB_MODES, mode
        super().__init__()
        self.mode = mode
        self.sent = 0
        self.requests = 0

    @property
    def url(self) -> str:
        """The endpoint_url of a target served by this endpoint."""
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        """DynamoDB's JSON protocol: every call is a POST to /."""
        app.router.add_post("/", self._handle)

    async def __aenter__(self) -> HostileDynamoDB:
        await self.start()
        return self

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.read()
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        if self.mode in ("huge", "endless"):
            return await self._stream(request)
        body = self._body(operation)
        self.sent += len(body)
        return web.Response(
            body=body.encode(), content_type="application/x-amz-json-1.0"
        )

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "application/x-amz-json-1.0"}
        )
        if self.mode == "huge":
            response.content_length = 3_000_000_000
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b'{"Table": {"TableName": "' + b"x" * _CHUNK
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                await response.write(chunk)
                self.sent += len(chunk)
        return response

    def _body(self, operation: str) -> str:
        """The reply to `operation`, with the mode's bad numbers spliced in as text."""
        now_ms = int(time.time() * 1000)
        count, sync = {
            "bigint": (BIG, f'"{BIG}"'),
            "nan": ("NaN", '"NaN"'),
        }.get(self.mode, ("3", f'"{now_ms}"'))
        if operation == "DescribeTable":
            table: dict[str, Any] = {
                "TableName": "t",
                "TableStatus": "ACTIVE",
                "KeySchema": [
                    {"AttributeName": "namespace", "KeyType": "HASH"},
                    {"AttributeName": "key", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": "namespace", "AttributeType": "S"},
                    {"AttributeName": "key", "AttributeType": "S"},
                ],
                "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
            }
            text = json.dumps({"Table": table})
            return text[:-2] + f', "ItemCount": {count}}}}}'
        if operation == "GetItem":
            return (
                '{"Item": {"namespace": {"S": "m"}, "key": {"S": "m"}, '
                f'"synchronizedOn": {{"N": {sync}}}}}}}'
            )
        if operation == "Query":
            return f'{{"Count": {count}, "Items": []}}'
        return '{"__type": "com.amazon.coral.validate#ValidationException"}'


API_PREFIX = "/api/v2/integration-capabilities/big-segment-store"


class HostileApi(_HttpServer):
    """A LaunchDarkly API on loopback serving the given integration documents
    verbatim (json.dumps: a 400-digit integer, NaN and a lone surrogate pass
    through as JSON text), one environment `_id` per project/environment."""

    def __init__(self, items: list[dict[str, Any]], client_side_id: str) -> None:
        super().__init__()
        self.items = items
        self.client_side_id = client_side_id

    @property
    def url(self) -> str:
        """The api.base_url of a config that reads this API."""
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        """The list, the detail and the environment routes the monitor reads."""
        app.router.add_get(API_PREFIX, self._list)
        app.router.add_get(API_PREFIX + "/{project}/{env}/{kind}/{id}", self._detail)
        app.router.add_get("/api/v2/projects/{project}/environments/{env}", self._env)

    async def __aenter__(self) -> HostileApi:
        await self.start()
        return self

    @staticmethod
    def _json(doc: Any, status: int = 200) -> web.Response:
        return web.Response(
            status=status,
            body=json.dumps(doc).encode(),
            content_type="application/json",
        )

    async def _list(self, _request: web.Request) -> web.Response:
        return self._json({"items": self.items, "totalCount": len(self.items)})

    async def _detail(self, request: web.Request) -> web.Response:
        for item in self.items:
            if item.get("_id") == request.match_info["id"]:
                return self._json(item)
        return self._json({"code": "not_found", "message": "Unknown"}, 404)

    async def _env(self, request: web.Request) -> web.Response:
        return self._json(
            {"_id": self.client_side_id, "key": request.match_info["env"]}
        )


class ServerThread:
    """The servers above on an event loop of their own, in a thread: a hostile
    peer is another process, and must not share the monitor's event loop.

    `await thread.start(server)` enters a server's context there and returns
    it; `await thread.aclose()` exits them all and stops the loop.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="hostile-servers", daemon=True
        )
        self._entered: list[Any] = []
        self._thread.start()

    async def _run(self, coroutine: Any) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return await asyncio.wrap_future(future)

    async def start(self, server: _Server) -> _Server:
        """Enter `server` on the thread's loop; it is served from there."""
        await self._run(server.__aenter__())
        self._entered.append(server)
        return server

    async def aclose(self) -> None:
        """Close every server, stop the loop and join the thread."""
        for server in reversed(self._entered):
            with contextlib.suppress(Exception):
                await self._run(server.__aexit__(None, None, None))
        self._entered.clear()
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 10)
        self._loop.close()

"""The stores the benchmarks probe: four password-protected redis-servers, and moto.

Redis: real `redis-server` processes (`devtools.servers.redis_server`), each
holding `{prefix}:big_segments_synchronized_on` (and one include set, so the
membership sample finds data) for the prefixes assigned to it.
`command_counts()` reads INFO commandstats, so a benchmark can check that the
monitor and its floor sent exactly the same commands.

DynamoDB: moto's server in a child process (`python -m bench.stores`), never
in a thread of the benchmark: moto's request handling would otherwise take
the GIL from the event loop being measured. A WSGI layer counts requests by
`X-Amz-Target` for the same check.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from devtools.servers.redis_server import RedisServer, start_redis
from monitor.store_keys import (
    context_hash,
    redis_include_key,
    redis_synchronized_on_key,
)

# The repository root: the moto child runs `python -m bench.stores` there.
ROOT = Path(__file__).resolve().parent.parent

REDIS_PASSWORD = "bench-redis-password-7d1c"
REDIS_STORES = 4
REGION = "us-east-1"
# moto accepts any keys; these keep the SDK away from real credential sources.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_COUNTS_PATH = "/_bench/counts"
_RESET_PATH = "/_bench/reset"


class RedisStores:
    """Password-protected redis-servers on loopback; stops them on exit."""

    def __init__(self, directory: Path, count: int = REDIS_STORES) -> None:
        self.servers: list[RedisServer] = []
        self._admins: list[redis.Redis] = []
        try:
            for _ in range(count):
                self.servers.append(start_redis(directory, password=REDIS_PASSWORD))
        except BaseException:
            self.stop()
            raise

    @property
    def ports(self) -> list[int]:
        """The client port of each server."""
        return [s.client_port for s in self.servers]

    def populate(self, prefixes: Iterable[tuple[str, int]]) -> None:
        """Write synchronizedOn (now) and one include set for each (prefix, port)."""
        now_ms = str(int(time.time() * 1000))
        member = context_hash("bench-context")
        by_port: dict[int, list[str]] = {}
        for prefix, port in prefixes:
            by_port.setdefault(port, []).append(prefix)
        for server in self.servers:
            with server.admin() as client:
                pipe = client.pipeline(transaction=False)
                for prefix in by_port.get(server.client_port, []):
                    pipe.set(redis_synchronized_on_key(prefix), now_ms)
                    pipe.sadd(redis_include_key(prefix, member), "bench-segment.g1")
                pipe.execute()

    def reset_stats(self) -> None:
        """Zero every server's command statistics."""
        for client in self._admin_clients():
            client.config_resetstat()

    def command_counts(self) -> Counter[str]:
        """Calls per command over all servers since `reset_stats()`.

        Call it once per reset: INFO does not count itself, but a second
        call would see the first one's INFO. Our own RESETSTAT is left out.
        """
        total: Counter[str] = Counter()
        for client in self._admin_clients():
            stats: dict[str, Any] = client.info("commandstats")
            for name, value in stats.items():
                total[name.removeprefix("cmdstat_")] += int(value["calls"])
        total["config|resetstat"] -= len(self.servers)  # our own reset
        return +total

    def _admin_clients(self) -> list[redis.Redis]:
        # Connected once, before any reset, so their HELLO is never counted.
        if not self._admins:
            self._admins = [server.admin() for server in self.servers]
            for client in self._admins:
                client.ping()
        return self._admins

    def stop(self) -> None:
        """Stop every server."""
        for client in self._admins:
            client.close()
        self._admins = []
        for server in self.servers:
            server.stop()


class MotoProcess:
    """moto's server in a child process; it exits when our end of its stdin closes."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.stores"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"moto did not start: {line!r}")
        self.port = int(line)
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

    def counts(self) -> Counter[str]:
        """DynamoDB requests by operation since the last reset."""
        with urllib.request.urlopen(self.endpoint_url + _COUNTS_PATH) as reply:  # noqa: S310 -- our own loopback server
            return Counter(json.loads(reply.read()))

    def reset_counts(self) -> None:
        """Forget the request counts."""
        request = urllib.request.Request(  # noqa: S310 -- our own loopback server
            self.endpoint_url + _RESET_PATH, data=b"", method="POST"
        )
        with urllib.request.urlopen(request):  # noqa: S310 -- our own loopback server
            pass

    def create_tables(self, tables: Sequence[tuple[str, str]]) -> None:
        """Create each (table, prefix) with its metadata item (synchronizedOn now)."""
        import boto3  # noqa: PLC0415 -- only the DynamoDB benchmark needs boto3

        client: Any = boto3.session.Session().client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        now_ms = str(int(time.time() * 1000))
        with contextlib.closing(client):
            for table, prefix in tables:
                client.create_table(
                    TableName=table,
                    AttributeDefinitions=[
                        {"AttributeName": "namespace", "AttributeType": "S"},
                        {"AttributeName": "key", "AttributeType": "S"},
                    ],
                    KeySchema=[
                        {"AttributeName": "namespace", "KeyType": "HASH"},
                        {"AttributeName": "key", "KeyType": "RANGE"},
                    ],
                    BillingMode="PAY_PER_REQUEST",
                )
                key = f"{prefix}:big_segments_metadata"
                client.put_item(
                    TableName=table,
                    Item={
                        "namespace": {"S": key},
                        "key": {"S": key},
                        "synchronizedOn": {"N": now_ms},
                    },
                )

    def stop(self) -> None:
        """Close the child's stdin and wait for it to exit."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


class _Counting:
    """WSGI layer: count DynamoDB requests by operation; serve and reset the counts."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self.counts: Counter[str] = Counter()

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Count, or answer the /_bench routes."""
        path = environ.get("PATH_INFO", "")
        if path == _COUNTS_PATH:
            body = json.dumps(dict(self.counts)).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if path == _RESET_PATH:
            self.counts.clear()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target:
            self.counts[target.rpartition(".")[2]] += 1
        return self._app(environ, start_response)


def serve_moto() -> None:
    """The child: moto on a free loopback port (printed) until stdin closes."""
    from devtools.servers.moto_server import start_moto_server  # noqa: PLC0415 -- the child's own imports

    server = start_moto_server(wrap=_Counting)
    print(server.port, flush=True)
    sys.stdin.read()  # returns when the parent closes our stdin (or dies)
    server.stop()


if __name__ == "__main__":
    serve_moto()

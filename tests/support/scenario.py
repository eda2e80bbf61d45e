"""The rich scenario: every store state the dashboard panels and alert rules know.

Real stores on loopback, a simulated LaunchDarkly API, and the daemon watching
them as a separate process (`python -m monitor run`). Fourteen targets:

| target            | store                                     | LaunchDarkly says                     | shows up as |
|-------------------|-------------------------------------------|---------------------------------------|-------------|
| HEALTHY           | Redis, fresh, members, two canaries       | available, synced 10 s ago            | healthy; canary `beta-member-lost` fails |
| STALE             | Redis, synchronizedOn 15 min old          | potentially stale, synced 15 min ago  | stale |
| NEVER_SYNCED      | Redis, no keys under its prefix           | available, synced 10 s ago            | stale, disagreement, no membership data |
| WRONG_TYPE        | Redis, metadata key is a hash             | available                             | schema invalid, unavailable |
| SWITCHED_OFF      | Redis, 2 days old, no members             | integration off, unavailable, errors  | excluded from every alert (`on="false"`) |
| WRONG_PASSWORD    | Redis with requirepass; wrong password    | available, errors 503/504             | probe down, unavailable, API errors |
| EVICTING          | Redis, allkeys-lru with maxmemory         | available                             | eviction unsafe |
| NEAR_LIMIT        | Redis at maxmemory, evicting TTL'd keys   | available                             | memory near limit |
| DDB_HEALTHY       | DynamoDB table, fresh, members, canary    | available                             | healthy |
| DDB_WRONG_SCHEMA  | table keyed pk/sk                         | unavailable, potentially stale        | schema invalid, unavailable |
| DDB_MISSING       | no table                                  | unavailable, error 400                | unavailable, API errors |
| DDB_UPDATING      | table answering DescribeTable `UPDATING`  | available                             | healthy (UPDATING serves reads) |
| DDB_CREATING      | table answering DescribeTable `CREATING`  | available                             | table not active, schema invalid |
| TLS_EXPIRING      | static TLS Redis, certificate ends in 3 d | (static target: no API)               | TLS expiring (both rules) |
| TLS_OK            | static TLS Redis, certificate for a year  | (static target: no API)               | healthy |

`EXPECTED_ALERTS` lists, for every alert rule, exactly the targets whose
expression must return a series in this scenario.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from botocore.exceptions import BotoCoreError, ClientError

from devtools.servers.moto_server import (
    REGION,
    MotoServer,
    buffered,
    create_bigsegment_table,
    dynamodb_client,
    start_moto_server,
    with_body,
)
from devtools.servers.redis_server import RedisServer, RedisTls, start_redis
from devtools.servers.tls import TlsCertSet
from monitor.store_keys import (
    context_hash,
    dynamodb_membership_namespace,
    dynamodb_metadata_key,
    redis_exclude_key,
    redis_include_key,
    redis_synchronized_on_key,
    segment_ref,
)
from tests.support.clock import now_ms
from tests.support.processes import Service, http_get_ok

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

TOKEN = "e2e-api-token"
WRONG_PASSWORD_ENV = "E2E_WRONG_PASSWORD"
STORE_PASSWORD = "the-real-store-password"
SEGMENT = "beta-users"
GENERATION = 3
SEGMENT_REF = segment_ref(SEGMENT, GENERATION)
RELAY_PREFIX = "launchdarkly"
REFRESH_EVERY = 5.0  # seconds between the scenario's own "LaunchDarkly" writes
# TTL'd entries that keep the near-limit store at its maxmemory (~1.5 MB).
CACHE_ENTRIES = 5000

# Integration ids (static targets: their names).
HEALTHY = "e2e00000000000000000a001"
STALE = "e2e00000000000000000a002"
NEVER_SYNCED = "e2e00000000000000000a003"
WRONG_TYPE = "e2e00000000000000000a004"
SWITCHED_OFF = "e2e00000000000000000a005"
WRONG_PASSWORD = "e2e00000000000000000a006"
EVICTING = "e2e00000000000000000a007"
NEAR_LIMIT = "e2e00000000000000000a008"
DDB_HEALTHY = "e2e00000000000000000b001"
DDB_WRONG_SCHEMA = "e2e00000000000000000b002"
DDB_MISSING = "e2e00000000000000000b003"
DDB_UPDATING = "e2e00000000000000000b004"
DDB_CREATING = "e2e00000000000000000b005"
TLS_EXPIRING = "relay-tls-expiring"
TLS_OK = "relay-tls"

TARGETS = frozenset(
    {
        HEALTHY, STALE, NEVER_SYNCED, WRONG_TYPE, SWITCHED_OFF, WRONG_PASSWORD,
        EVICTING, NEAR_LIMIT, DDB_HEALTHY, DDB_WRONG_SCHEMA, DDB_MISSING,
        DDB_UPDATING, DDB_CREATING, TLS_EXPIRING, TLS_OK,
    }
)  # fmt: skip
REDIS_TARGETS = frozenset(
    {
        HEALTHY, STALE, NEVER_SYNCED, WRONG_TYPE, SWITCHED_OFF, WRONG_PASSWORD,
        EVICTING, NEAR_LIMIT, TLS_EXPIRING, TLS_OK,
    }
)  # fmt: skip
DYNAMODB_TARGETS = TARGETS - REDIS_TARGETS
CANARIES = frozenset({"beta-member", "beta-member-lost", "beta-excluded"})

# Alert -> the targets whose expression returns a series in this scenario.
# SWITCHED_OFF would match LDStoreStale, LDStoreApiUnavailable,
# LDStoreApiPotentiallyStale, LDStoreApiErrors and LDStoreMembershipDataMissing
# but is off in LaunchDarkly, which every per-store rule excludes.
EXPECTED_ALERTS: dict[str, frozenset[str]] = {
    "LDStoreStale": frozenset({STALE, NEVER_SYNCED}),
    "LDStoreUnavailable": frozenset(
        {WRONG_TYPE, WRONG_PASSWORD, DDB_WRONG_SCHEMA, DDB_MISSING}
    ),
    # The membership read fails where the store cannot be read at all, and
    # where the table's key schema rejects the GetItem; a wrong marker type
    # (WRONG_TYPE) leaves it working.
    "LDStoreMembershipReadFailing": frozenset(
        {WRONG_PASSWORD, DDB_WRONG_SCHEMA, DDB_MISSING}
    ),
    "LDStoreProbeDown": frozenset({WRONG_PASSWORD}),
    # DDB_UPDATING is in none: an UPDATING table still serves reads.
    "LDStoreSchemaInvalid": frozenset({WRONG_TYPE, DDB_WRONG_SCHEMA, DDB_CREATING}),
    "LDStoreApiUnavailable": frozenset({DDB_WRONG_SCHEMA, DDB_MISSING}),
    "LDStoreApiPotentiallyStale": frozenset({STALE, DDB_WRONG_SCHEMA, DDB_MISSING}),
    "LDStoreApiErrors": frozenset({WRONG_PASSWORD, DDB_MISSING}),
    "LDStoreSyncDisagreement": frozenset({NEVER_SYNCED}),
    "LDStoreRedisEvictionUnsafe": frozenset({EVICTING}),
    "LDStoreRedisMemoryNearLimit": frozenset({NEAR_LIMIT}),
    "LDStoreTlsCertExpiring": frozenset({TLS_EXPIRING}),
    "LDStoreMembershipDataMissing": frozenset({NEVER_SYNCED}),
    "LDStoreCanaryFailing": frozenset({HEALTHY}),
    "LDStoreDynamoDBTableNotActive": frozenset({DDB_CREATING}),
    # Every credential in the scenario reaches its host: none withheld.
    "LDStoreCredentialWithheld": frozenset(),
    # The monitor itself is healthy: its own alerts stay quiet.
    "LDStoreMonitorApiDown": frozenset(),
    "LDStoreMonitorDiscoveryStale": frozenset(),
    "LDStoreMonitorConfigReloadFailed": frozenset(),
    "LDStoreMonitorAbsent": frozenset(),
    "LDStoreMonitorReplicaDown": frozenset(),
    "LDStoreMonitorShardsMissing": frozenset(),
    "LDStoreMonitorShardingMismatch": frozenset(),
    "LDStoreMonitorSaturated": frozenset(),
    "LDStoreMonitorEventLoopLagging": frozenset(),
}

# (project, environment) -> client-side ID, the store key prefix.
PREFIXES = {
    ("web", "production"): "e2e0000000000000000c0001",
    ("web", "staging"): "e2e0000000000000000c0002",
    ("mobile", "production"): "e2e0000000000000000c0003",
    ("mobile", "staging"): "e2e0000000000000000c0004",
    ("mobile", "legacy"): "e2e0000000000000000c0005",
    ("ops", "production"): "e2e0000000000000000c0006",
    ("ops", "cache"): "e2e0000000000000000c0007",
    ("ops", "batch"): "e2e0000000000000000c0008",
}

TABLES = {
    DDB_HEALTHY: "e2e-ld-web-production",
    DDB_WRONG_SCHEMA: "e2e-ld-mobile-staging",
    DDB_MISSING: "e2e-ld-mobile-production",  # never created
    DDB_UPDATING: "e2e-ld-web-staging",
    DDB_CREATING: "e2e-ld-ops-production",
}
# Tables whose DescribeTable answer says another status than moto's ACTIVE.
TABLE_STATUS_OVERRIDES = {
    TABLES[DDB_UPDATING]: "UPDATING",
    TABLES[DDB_CREATING]: "CREATING",
}

_RECENT = {"available": True, "potentiallyStale": False, "lastSync": "-10s"}


@dataclass(frozen=True)
class ApiIntegration:
    """One integration as the simulated LaunchDarkly API lists it."""

    id: str
    project: str
    environment: str
    kind: str
    name: str
    status: Mapping[str, Any]
    on: bool = True

    @property
    def prefix(self) -> str:
        """The environment's client-side ID: the store key prefix."""
        return PREFIXES[(self.project, self.environment)]


INTEGRATIONS = (
    ApiIntegration(
        HEALTHY, "web", "production", "redis", "Web production Redis", _RECENT
    ),
    ApiIntegration(
        STALE,
        "web",
        "staging",
        "redis",
        "Web staging Redis",
        {"available": True, "potentiallyStale": True, "lastSync": "-15m"},
    ),
    ApiIntegration(
        NEVER_SYNCED, "mobile", "production", "redis", "Mobile Redis (new)", _RECENT
    ),
    ApiIntegration(
        WRONG_TYPE, "mobile", "staging", "redis", "Mobile staging Redis", _RECENT
    ),
    ApiIntegration(
        SWITCHED_OFF,
        "mobile",
        "legacy",
        "redis",
        "Mobile legacy Redis (off)",
        {
            "available": False,
            "potentiallyStale": True,
            "lastSync": "-48h",
            "lastError": "-1h",
            "errors": [{"statusCode": 500, "message": "gone", "timestamp": "-1h"}],
        },
        on=False,
    ),
    ApiIntegration(
        WRONG_PASSWORD,
        "ops",
        "production",
        "redis",
        "Ops Redis (monitor has a wrong password)",
        {
            **_RECENT,
            "lastError": "-90s",
            "errors": [
                {"statusCode": 503, "message": "connection reset", "timestamp": "-90s"},
                {"statusCode": 504, "message": "i/o timeout", "timestamp": "-6m"},
            ],
        },
    ),
    ApiIntegration(EVICTING, "ops", "cache", "redis", "Ops cache Redis", _RECENT),
    ApiIntegration(NEAR_LIMIT, "ops", "batch", "redis", "Ops batch Redis", _RECENT),
    ApiIntegration(
        DDB_HEALTHY, "web", "production", "dynamodb", "Web production DynamoDB", _RECENT
    ),
    ApiIntegration(
        DDB_WRONG_SCHEMA,
        "mobile",
        "staging",
        "dynamodb",
        "Mobile staging DynamoDB (pk/sk)",
        {"available": False, "potentiallyStale": True, "lastSync": "-1h"},
    ),
    ApiIntegration(
        DDB_MISSING,
        "mobile",
        "production",
        "dynamodb",
        "Mobile DynamoDB (no table)",
        {
            "available": False,
            "potentiallyStale": True,
            "lastError": "-5m",
            "errors": [
                {
                    "statusCode": 400,
                    "message": "ResourceNotFoundException",
                    "timestamp": "-5m",
                }
            ],
        },
    ),
    ApiIntegration(
        DDB_UPDATING, "web", "staging", "dynamodb", "Web staging DynamoDB", _RECENT
    ),
    ApiIntegration(
        DDB_CREATING, "ops", "production", "dynamodb", "Ops DynamoDB", _RECENT
    ),
)
BY_ID = {i.id: i for i in INTEGRATIONS}


def simulator_scenario() -> dict[str, Any]:
    """The LaunchDarkly API simulator's scenario document."""
    projects: dict[str, list[dict[str, Any]]] = {}
    for (project, environment), prefix in PREFIXES.items():
        projects.setdefault(project, []).append(
            {"key": environment, "client_side_id": prefix}
        )
    integrations = []
    for item in INTEGRATIONS:
        config: dict[str, Any] = (
            {
                "host": f"redis-{item.project}-{item.environment}.internal",
                "port": "6379",
                "tlsEnabled": False,
            }
            if item.kind == "redis"
            else {"tableName": TABLES[item.id], "region": REGION}
        )
        integrations.append(
            {
                "id": item.id,
                "project": item.project,
                "environment": item.environment,
                "kind": item.kind,
                "name": item.name,
                "on": item.on,
                "config": config,
                "status": dict(item.status),
            }
        )
    return {
        "token": TOKEN,
        "projects": [
            {"key": key, "environments": envs} for key, envs in projects.items()
        ],
        "integrations": integrations,
        "segments": [
            {
                "project": "web",
                "environment": "production",
                "key": SEGMENT,
                "generation": GENERATION,
            }
        ],
    }


@dataclass(frozen=True)
class Stores:
    """The scenario's store processes and tables."""

    plain: RedisServer  # HEALTHY, STALE, NEVER_SYNCED, WRONG_TYPE, SWITCHED_OFF
    locked: RedisServer  # WRONG_PASSWORD
    evicting: RedisServer  # EVICTING
    near_limit: RedisServer  # NEAR_LIMIT
    tls_expiring: RedisServer  # TLS_EXPIRING
    tls_ok: RedisServer  # TLS_OK
    moto: MotoServer
    ca_file: Path
    # Shared with moto's WSGI layer: table -> the status DescribeTable reports.
    table_statuses: dict[str, str]

    def redis_for(self, integration_id: str) -> RedisServer:
        """The server holding an integration's Redis store."""
        return {
            WRONG_PASSWORD: self.locked,
            EVICTING: self.evicting,
            NEAR_LIMIT: self.near_limit,
        }.get(integration_id, self.plain)

    @property
    def servers(self) -> tuple[RedisServer, ...]:
        """Every redis-server process."""
        return (
            self.plain,
            self.locked,
            self.evicting,
            self.near_limit,
            self.tls_expiring,
            self.tls_ok,
        )

    def fresh_redis(self) -> list[tuple[RedisServer, str]]:
        """(server, prefix) of every Redis store kept fresh."""
        fresh = [
            (self.redis_for(i), BY_ID[i].prefix)
            for i in (HEALTHY, WRONG_PASSWORD, EVICTING, NEAR_LIMIT)
        ]
        return [*fresh, (self.tls_expiring, RELAY_PREFIX), (self.tls_ok, RELAY_PREFIX)]

    def fresh_tables(self) -> list[tuple[str, str]]:
        """(table, prefix) of every DynamoDB store kept fresh."""
        return [
            (TABLES[i], BY_ID[i].prefix)
            for i in (DDB_HEALTHY, DDB_UPDATING, DDB_CREATING)
        ]


@dataclass(frozen=True)
class RichScenario:
    """The running scenario: where the daemon and the simulator answer."""

    daemon_url: str
    simulator_url: str
    daemon: Service

    def scrape(self) -> str:
        """The daemon's /metrics, as Prometheus text."""
        body = http_get_ok(f"{self.daemon_url}/metrics")
        assert body is not None, (
            f"/metrics did not answer 200\n{self.daemon.log_tail()}"
        )
        return body.decode()


def start_stores(directory: Path, certs: TlsCertSet) -> Stores:
    """Start every store process; the caller stops them (`stop_stores`)."""
    started: list[RedisServer] = []
    moto: MotoServer | None = None
    table_statuses: dict[str, str] = {}

    def redis_server(**kwargs: Any) -> RedisServer:
        server = start_redis(directory, **kwargs)
        started.append(server)
        return server

    try:
        stores = Stores(
            plain=redis_server(),
            locked=redis_server(password=STORE_PASSWORD),
            evicting=redis_server(
                maxmemory=256 * 1024 * 1024, maxmemory_policy="allkeys-lru"
            ),
            near_limit=redis_server(),
            tls_expiring=redis_server(tls=RedisTls(server=certs.expiring_soon)),
            tls_ok=redis_server(tls=RedisTls(server=certs.server)),
            moto=(moto := start_moto(table_statuses)),
            ca_file=certs.ca.cert_file,
            table_statuses=table_statuses,
        )
        _fill_stores(stores)
    except BaseException:
        for server in started:
            server.stop()
        if moto is not None:
            moto.stop()
        raise
    return stores


def stop_stores(stores: Stores) -> None:
    """Drop the tables (moto's state is process-wide) and stop every server."""
    try:
        with closing(dynamodb_client(stores.moto.endpoint_url)) as client:
            for table in client.list_tables()["TableNames"]:
                if table in TABLES.values():
                    client.delete_table(TableName=table)
    finally:
        stores.moto.stop()
        for server in stores.servers:
            server.stop()


def _members(
    server: RedisServer, prefix: str, *, included: Iterable[str] = ("some-user",)
) -> None:
    """One context included in the segment, so membership data exists."""
    with server.admin() as admin:
        for key in included:
            admin.sadd(redis_include_key(prefix, context_hash(key)), SEGMENT_REF)


def _fill_stores(stores: Stores) -> None:
    """Lay out every store in the state the module docstring gives it."""
    now = now_ms()
    for server, prefix in stores.fresh_redis():
        with server.admin() as admin:
            admin.set(redis_synchronized_on_key(prefix), str(now))
        _members(server, prefix)
    healthy = BY_ID[HEALTHY].prefix
    _members(stores.plain, healthy, included=("canary-in",))
    with stores.plain.admin() as admin:
        admin.sadd(redis_exclude_key(healthy, context_hash("canary-lost")), SEGMENT_REF)
        stale = BY_ID[STALE].prefix
        admin.set(redis_synchronized_on_key(stale), str(now - 15 * 60_000))
        wrong_type = BY_ID[WRONG_TYPE].prefix
        admin.hset(redis_synchronized_on_key(wrong_type), "synchronizedOn", str(now))
        off = BY_ID[SWITCHED_OFF].prefix
        admin.set(redis_synchronized_on_key(off), str(now - 2 * 86_400_000))
    _members(stores.plain, BY_ID[STALE].prefix)
    _members(stores.plain, BY_ID[WRONG_TYPE].prefix)
    # At its limit, safely: cache entries with a TTL fill the server, and
    # maxmemory sits just below what it uses, so Redis keeps evicting those
    # entries (volatile-lru never picks the big segment keys, which have no
    # TTL) and used_memory stays just under maxmemory whatever clients add.
    with stores.near_limit.admin() as admin:
        pipe = admin.pipeline(transaction=False)
        for index in range(CACHE_ENTRIES):
            pipe.set(f"cache:{index}", "x" * 200, ex=3600)
        pipe.execute()
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory-policy", "volatile-lru")
        admin.config_set("maxmemory", str(used - 64 * 1024))
    with closing(dynamodb_client(stores.moto.endpoint_url)) as client:
        _fill_tables(client, stores.moto.endpoint_url, now)
    # Only now: the status is moto's ACTIVE while the tables are created.
    stores.table_statuses.update(TABLE_STATUS_OVERRIDES)


def _put_metadata(client: Any, table: str, prefix: str, synchronized_on: int) -> None:
    key = dynamodb_metadata_key(prefix)
    client.put_item(
        TableName=table,
        Item={
            "namespace": {"S": key},
            "key": {"S": key},
            "synchronizedOn": {"N": str(synchronized_on)},
        },
    )


def _put_membership(
    client: Any, table: str, prefix: str, context_key: str, attribute: str
) -> None:
    client.put_item(
        TableName=table,
        Item={
            "namespace": {"S": dynamodb_membership_namespace(prefix)},
            "key": {"S": context_hash(context_key)},
            attribute: {"SS": [SEGMENT_REF]},
        },
    )


def _fill_tables(client: Any, endpoint_url: str, now: int) -> None:
    """The tables (moto creates them ACTIVE at once), their items through `client`."""
    for integration_id in (DDB_HEALTHY, DDB_UPDATING, DDB_CREATING):
        table, prefix = TABLES[integration_id], BY_ID[integration_id].prefix
        create_bigsegment_table(endpoint_url, table)
        _put_metadata(client, table, prefix, now)
        _put_membership(client, table, prefix, "some-user", "included")
    prefix = BY_ID[DDB_HEALTHY].prefix
    _put_membership(client, TABLES[DDB_HEALTHY], prefix, "canary-out", "excluded")
    create_bigsegment_table(
        endpoint_url, TABLES[DDB_WRONG_SCHEMA], key_schema="wrong_names"
    )


class Refresher:
    """Plays LaunchDarkly's part: rewrites synchronizedOn of the fresh stores."""

    def __init__(self, stores: Stores) -> None:
        """Refresh `stores` every REFRESH_EVERY seconds once started."""
        self._stores = stores
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="e2e-refresher", daemon=True
        )
        self.errors: list[str] = []  # writes that failed: the stores would go stale

    def start(self) -> None:
        """Start refreshing in a thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and join the thread."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with closing(dynamodb_client(self._stores.moto.endpoint_url)) as client:
            while not self._stop.wait(REFRESH_EVERY):
                self._refresh(client)

    def _refresh(self, client: Any) -> None:
        now = now_ms()
        for server, prefix in self._stores.fresh_redis():
            try:
                with server.admin() as admin:
                    admin.set(redis_synchronized_on_key(prefix), str(now))
            except redis.RedisError as err:
                self.errors.append(f"{server.address} {prefix}: {err}")
        for table, prefix in self._stores.fresh_tables():
            try:
                _put_metadata(client, table, prefix, now)
            except (BotoCoreError, ClientError) as err:
                self.errors.append(f"{table} {prefix}: {err}")


def daemon_config(api_url: str, listen: str, stores: Stores) -> dict[str, Any]:
    """The daemon's configuration: short intervals, every target and canary."""
    credentials: list[dict[str, Any]] = []
    for item in INTEGRATIONS:
        if item.kind == "redis":
            section: dict[str, Any] = {"address": stores.redis_for(item.id).address}
            if item.id == WRONG_PASSWORD:
                section["password"] = f"${{{WRONG_PASSWORD_ENV}}}"
            credentials.append({"match": {"integration_id": item.id}, "redis": section})
        else:
            credentials.append(
                {
                    "match": {"integration_id": item.id},
                    "dynamodb": {
                        "region": REGION,
                        "endpoint_url": stores.moto.endpoint_url,
                    },
                }
            )
    targets = [
        {
            "kind": "redis",
            "name": name,
            "url": server.url,
            "prefix": RELAY_PREFIX,
            "project": "relay",
            "environment": environment,
            "tls": {"ca_file": str(stores.ca_file)},
        }
        for name, server, environment in (
            (TLS_EXPIRING, stores.tls_expiring, "production"),
            (TLS_OK, stores.tls_ok, "staging"),
        )
    ]
    canaries = [
        # Generation from the API's segment; the context is included: passes.
        {
            "name": "beta-member",
            "match": {"integration_id": HEALTHY},
            "context_key": "canary-in",
            "segment_key": SEGMENT,
            "expect": "included",
        },
        # The store excludes this context although it should be included: fails.
        {
            "name": "beta-member-lost",
            "match": {"integration_id": HEALTHY},
            "context_key": "canary-lost",
            "segment_key": SEGMENT,
            "expect": "included",
        },
        # DynamoDB, generation given in the config: excluded as expected, passes.
        {
            "name": "beta-excluded",
            "match": {"integration_id": DDB_HEALTHY},
            "context_key": "canary-out",
            "segment_key": SEGMENT,
            "expect": "excluded",
            "generation": GENERATION,
        },
    ]
    return {
        "api": {
            "base_url": api_url,
            "token": "${LD_API_TOKEN}",
            "interval": "2s",
            "timeout": "1s",
        },
        "probe": {"interval": "1s", "timeout": "900ms", "health_interval": "1s"},
        "credentials": credentials,
        "targets": targets,
        "canaries": canaries,
        "server": {"listen": listen},
        "logging": {"format": "json", "level": "info"},
    }


# --- moto, with DescribeTable answering another table status ------------------


class _TableStatusOverride:
    """WSGI layer: DescribeTable of the named tables reports the given status.

    moto creates every table ACTIVE at once and never changes that; real
    tables spend time in CREATING or UPDATING. Only the status field of the
    answer changes (and the CRC that botocore checks the body against).
    """

    def __init__(self, app: WSGIApplication, statuses: dict[str, str]) -> None:
        self._app = app
        self._statuses = statuses  # not a copy: the owner may change it later

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).endswith(".DescribeTable"):
            return self._app(environ, start_response)
        status, headers, body = buffered(self._app, environ)
        if status.startswith("200"):
            document = json.loads(body)
            table = document.get("Table", {})
            override = self._statuses.get(table.get("TableName"))
            if override is not None:
                table["TableStatus"] = override
                body = json.dumps(document).encode()
                headers = with_body(headers, body)
        start_response(status, headers)
        return [body]


def start_moto(statuses: dict[str, str]) -> MotoServer:
    """`devtools.servers.moto_server.start_moto_server`, plus the status override."""
    return start_moto_server(wrap=lambda app: _TableStatusOverride(app, statuses))

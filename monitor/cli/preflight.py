"""`ld-store-monitor preflight`: is this store ready for a big segment integration?

Given a store as the integration would describe it (Redis host, port, TLS,
user, password; or a DynamoDB table, region and role) and the LaunchDarkly
project and environment, it checks from where it runs, with the daemon's own
probes and SDK profiles: one probe of a `Target` built from the options
(INFO and the membership sample included), plus the environment's
client-side ID (the key prefix) and the integrations LaunchDarkly lists for
it, read with the read token of `--config`.

Every finding is `ok`, a `warning` or a `blocker`, and says what to do.
Exit 0 ready (warnings allowed), 1 any blocker, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import aiohttp
import structlog
from pydantic import SecretStr

from monitor.cli.exits import Exit
from monitor.config import Config, Sdk, TlsConfig
from monitor.export.humanize import format_age
from monitor.launchdarkly.client import LaunchDarklyClient
from monitor.launchdarkly.errors import ApiError, ApiErrorKind
from monitor.launchdarkly.models import Integration, Problems
from monitor.log import Redactor
from monitor.probes.profiles import profile_of
from monitor.probes.result import ProbeResult, Reason
from monitor.probes.runner import ProbeRunner
from monitor.service.monitor import make_probe_runner
from monitor.store_keys import dynamodb_metadata_key, redis_synchronized_on_key
from monitor.targets import DynamoDBEndpoint, Labels, RedisEndpoint, Target

Level = Literal["ok", "warning", "blocker"]

# A certificate that expires within this is a blocker: LaunchDarkly's writer
# and the SDKs would lose the store about when the integration goes live.
CERT_BLOCKER_SECONDS = 14 * 86_400.0
# Within this (but after CERT_BLOCKER_SECONDS), a warning: renew it soon.
CERT_WARNING_SECONDS = 30 * 86_400.0
# Redis memory in use above this share of maxmemory: a warning.
MEMORY_WARNING_SHARE = 0.9
# A sync marker older than this is more likely a leftover than a live writer.
LEFTOVER_AGE = 86_400.0

_UNREACHABLE = frozenset(
    {Reason.DNS, Reason.REFUSED, Reason.TIMEOUT, Reason.TLS_HANDSHAKE}
)
PREFLIGHT_ID = "preflight"


class BadInputError(Exception):
    """Options that cannot describe a store, or an API that cannot be used: exit 2."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's outcome, and what to do about it."""

    check: str
    level: Level
    message: str
    action: str = "nothing to do"


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """The store as the options describe it."""

    kind: str  # redis or dynamodb
    endpoint: RedisEndpoint | DynamoDBEndpoint
    sdk: Sdk = Sdk.PYTHON

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be printed."""
        endpoint = self.endpoint
        if isinstance(endpoint, RedisEndpoint) and endpoint.password is not None:
            return (endpoint.password.get_secret_value(),)
        return ()


@dataclass
class Preflight:
    """Everything one preflight established."""

    project: str
    environment: str
    store: StoreSpec
    prefix: str = ""
    findings: list[Finding] = field(default_factory=list)
    listed: list[Integration] = field(default_factory=list)
    result: ProbeResult | None = None

    @property
    def blockers(self) -> list[Finding]:
        """The findings that stop the integration from working."""
        return [f for f in self.findings if f.level == "blocker"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings worth fixing, that do not stop it."""
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ready(self) -> bool:
        """No blocker."""
        return not self.blockers

    @property
    def marker_key(self) -> str:
        """Where the sync marker lives, as the store's SDK names it."""
        profile = profile_of(self.store.sdk)
        if self.store.kind == "redis":
            return redis_synchronized_on_key(self.prefix, profile.redis_empty_prefix)
        return dynamodb_metadata_key(self.prefix, profile.dynamodb_empty_prefix)

    def to_json(self) -> dict[str, Any]:
        """The preflight as a JSON document (no secret in it)."""
        return {
            "ready": self.ready,
            "project": self.project,
            "environment": self.environment,
            "kind": self.store.kind,
            "store": self.store.endpoint.address,
            "prefix": self.prefix,
            "sync_marker": self.marker_key,
            "blockers": len(self.blockers),
            "warnings": len(self.warnings),
            "findings": [asdict(f) for f in self.findings],
        }


# -- options ----------------------------------------------------------------


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """The options that describe a store and its LaunchDarkly environment."""
    parser.add_argument("--config", type=Path, required=True, help="YAML config file")
    parser.add_argument("--project", required=True, help="LaunchDarkly project key")
    parser.add_argument(
        "--environment", required=True, help="LaunchDarkly environment key"
    )
    parser.add_argument("--kind", choices=["redis", "dynamodb"], required=True)
    redis = parser.add_argument_group("redis")
    redis.add_argument("--host")
    redis.add_argument("--port", type=int)
    redis.add_argument("--username")
    secret = redis.add_mutually_exclusive_group()
    secret.add_argument("--password-env", metavar="VAR", help="password from $VAR")
    secret.add_argument(
        "--password-file", type=Path, metavar="F", help="password from a file"
    )
    redis.add_argument("--tls", action="store_true", help="connect with TLS")
    redis.add_argument("--ca-file", type=Path, metavar="F", help="CA bundle (PEM)")
    redis.add_argument("--server-name", metavar="N", help="TLS server name")
    dynamodb = parser.add_argument_group("dynamodb")
    dynamodb.add_argument("--table")
    dynamodb.add_argument("--region")
    dynamodb.add_argument("--endpoint-url", metavar="URL")
    dynamodb.add_argument("--role-arn", metavar="ARN")
    dynamodb.add_argument("--external-id", metavar="X")
    parser.add_argument(
        "--sdk",
        choices=[s.value for s in Sdk],
        help="the SDK profile whose reading counts (default: probe.sdk)",
    )
    parser.add_argument("--format", choices=["table", "json"], default="table")


_REDIS_ONLY = ("host", "port", "username", "password_env", "password_file")
_TLS_ONLY = ("ca_file", "server_name")
_DYNAMODB_ONLY = ("table", "region", "endpoint_url", "role_arn", "external_id")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _password(args: argparse.Namespace) -> SecretStr | None:
    """The password from --password-env or --password-file (BadInputError)."""
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            raise BadInputError(
                f"--password-env: the variable {args.password_env} is not set or empty"
            )
        return SecretStr(value)
    if args.password_file:
        try:
            value = Path(args.password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise BadInputError(
                f"--password-file: cannot read {args.password_file}: "
                f"{type(err).__name__}"
            ) from None
        value = value.rstrip("\r\n")
        if not value:
            raise BadInputError(f"--password-file: {args.password_file} is empty")
        return SecretStr(value)
    return None


def store_from_args(args: argparse.Namespace, config: Config) -> StoreSpec:
    """The store the options describe; BadInputError naming the first problem."""
    sdk = Sdk(args.sdk) if args.sdk else config.probe.sdk
    given = {name for name, value in vars(args).items() if value not in (None, False)}
    if args.kind == "redis":
        wrong = [n for n in _DYNAMODB_ONLY if n in given]
        if wrong:
            raise BadInputError(f"{_flag(wrong[0])} is for --kind dynamodb")
        if not args.host or args.port is None:
            raise BadInputError("--kind redis needs --host and --port")
        if not 0 < args.port < 65536:
            raise BadInputError(f"--port {args.port} is not a TCP port")
        if not args.tls and any(n in given for n in _TLS_ONLY):
            raise BadInputError("--ca-file and --server-name need --tls")
        tls = None
        if args.tls:
            if args.ca_file is not None and not Path(args.ca_file).is_file():
                raise BadInputError(f"--ca-file: {args.ca_file} is not a readable file")
            tls = TlsConfig(ca_file=args.ca_file, server_name=args.server_name)
        endpoint: RedisEndpoint | DynamoDBEndpoint = RedisEndpoint(
            host=args.host,
            port=args.port,
            username=args.username or None,
            password=_password(args),
            tls=tls,
        )
        return StoreSpec("redis", endpoint, sdk)
    wrong = [n for n in (*_REDIS_ONLY, "tls", *_TLS_ONLY) if n in given]
    if wrong:
        raise BadInputError(f"{_flag(wrong[0])} is for --kind redis")
    if not args.table or not args.region:
        raise BadInputError("--kind dynamodb needs --table and --region")
    if args.external_id and not args.role_arn:
        raise BadInputError("--external-id needs --role-arn")
    endpoint = DynamoDBEndpoint(
        table=args.table,
        region=args.region,
        endpoint_url=args.endpoint_url,
        role_arn=args.role_arn,
        external_id=args.external_id,
    )
    return StoreSpec("dynamodb", endpoint, sdk)


# -- running it -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tools:
    """What a preflight (and `create` after it) talks through."""

    session: aiohttp.ClientSession
    runner: ProbeRunner
    log: structlog.stdlib.BoundLogger


@asynccontextmanager
async def tools_for(config: Config) -> AsyncIterator[Tools]:
    """An HTTP session and the daemon's probes, closed on exit."""
    log: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger("monitor")
    runner = make_probe_runner(config, log)
    try:
        async with aiohttp.ClientSession() as session:
            yield Tools(session, runner, log)
    finally:
        await runner.close()


def target_of(check: Preflight) -> Target:
    """The store as the daemon would probe it."""
    store = check.store
    return Target(
        id=PREFLIGHT_ID,
        source="static",
        labels=Labels(check.project, check.environment, store.kind, PREFLIGHT_ID),
        name=PREFLIGHT_ID,
        prefix=check.prefix,
        endpoint=store.endpoint,
        sdk=store.sdk,
    )


def api_client(
    session: aiohttp.ClientSession,
    config: Config,
    log: structlog.stdlib.BoundLogger,
    token: SecretStr | None = None,
) -> LaunchDarklyClient:
    """A client of the config's API; `token` instead of the read token when given."""
    settings = config.api
    if token is not None:
        settings = settings.model_copy(update={"token": token})
    # One attempt per call: a person is waiting.
    return LaunchDarklyClient(session, settings, log.bind(component="api"), retries=0)


def api_problem(err: ApiError, what: str) -> str:
    """A failed read of the API, said for people."""
    if err.kind is ApiErrorKind.AUTH:
        return f"{what}: the read token of --config was refused (HTTP 401)"
    if err.kind is ApiErrorKind.FORBIDDEN:
        return (
            f"{what}: HTTP 403, the read token of --config lacks a role that may "
            "read projects, environments and integrations (Reader)"
        )
    return f"{what}: {err}"


async def read_environment(client: LaunchDarklyClient, check: Preflight) -> None:
    """The prefix (the environment's client-side ID) and the listed integrations."""
    where = f"{check.project}/{check.environment}"
    try:
        environment = await client.get_environment(
            check.project, check.environment, Problems()
        )
    except ApiError as err:
        if err.kind is ApiErrorKind.NOT_FOUND:
            raise BadInputError(
                f"LaunchDarkly has no environment {check.environment!r} in project "
                f"{check.project!r} (or the read token cannot see it)"
            ) from None
        raise BadInputError(
            api_problem(err, f"cannot read environment {where}")
        ) from None
    check.prefix = environment.client_side_id
    try:
        listed = await client.list_integrations(Problems())
    except ApiError as err:
        check.findings.append(
            Finding(
                "integrations",
                "warning",
                api_problem(err, "cannot list the integrations"),
                "give the read token the Reader role to see who else writes here",
            )
        )
        return
    check.listed = [
        i
        for i in listed
        if i.project == check.project and i.environment == check.environment
    ]


async def run_preflight(
    config: Config,
    store: StoreSpec,
    project: str,
    environment: str,
    tools: Tools,
    *,
    clock: Callable[[], float] = time.time,
) -> Preflight:
    """Read the environment, probe the store once, and judge what was found."""
    if not config.api.enabled or config.api.token is None:
        raise BadInputError(
            "the config has no LaunchDarkly API token (api.token or "
            "api.token_file): it is needed to read the environment's prefix"
        )
    check = Preflight(project, environment, store)
    await read_environment(api_client(tools.session, config, tools.log), check)
    result = await tools.runner.probe(target_of(check))
    check.result = result
    judge = _judge_redis if store.kind == "redis" else _judge_dynamodb
    found = [_reachable(check, result)]
    if result.reason not in _UNREACHABLE:
        found += judge(check, result, clock())
    check.findings = [*found, *check.findings]
    return check


# -- judging ----------------------------------------------------------------


def _reachable(check: Preflight, result: ProbeResult) -> Finding:
    address = check.store.endpoint.address
    if result.reason in _UNREACHABLE:
        return Finding(
            "reachable",
            "blocker",
            f"{address}: {result.error}",
            "check the address, DNS, security groups and firewalls between here "
            "and the store; LaunchDarkly's writer must reach it too",
        )
    return Finding("reachable", "ok", f"{address} answered")


def _certificate(result: ProbeResult, now: float) -> Finding | None:
    if result.tls_not_after is None:
        return None
    left = result.tls_not_after - now
    when = time.strftime("%Y-%m-%d", time.gmtime(result.tls_not_after))
    if left <= 0:
        return Finding(
            "certificate",
            "blocker",
            f"the server's certificate expired on {when}",
            "renew the server certificate",
        )
    text = f"the server's certificate expires on {when}, in {format_age(left)}"
    if left <= CERT_BLOCKER_SECONDS:
        return Finding(
            "certificate",
            "blocker",
            text + " (within two weeks)",
            "renew the server certificate before creating the integration",
        )
    if left <= CERT_WARNING_SECONDS:
        return Finding(
            "certificate", "warning", text, "renew the server certificate soon"
        )
    return Finding("certificate", "ok", text)


def _whose(check: Preflight) -> str:
    """Who may have written the sync marker, from what LaunchDarkly lists."""
    if check.listed:
        names = ", ".join(f"{i.name!r} ({i.kind}, id {i.id})" for i in check.listed)
        return (
            f"LaunchDarkly lists {len(check.listed)} integration(s) in this "
            f"environment: {names}; one of them writes here"
        )
    return (
        "LaunchDarkly lists no integration in this environment: a Relay Proxy, "
        "another LaunchDarkly account, or a deleted integration wrote it"
    )


def _prefix(check: Preflight, result: ProbeResult, now: float) -> Finding | None:
    """Data already under the prefix: another writer's sync marker or leftovers."""
    where = f"prefix {check.prefix} ({check.marker_key})"
    if result.synchronized_on_ms is not None:
        age = now - result.synchronized_on_ms / 1000
        when = time.strftime(
            "%Y-%m-%d %H:%M:%SZ", time.gmtime(result.synchronized_on_ms / 1000)
        )
        leftover = " (old enough to be leftovers)" if age > LEFTOVER_AGE else ""
        return Finding(
            "prefix",
            "blocker",
            f"{where} already holds a sync marker written {format_age(age)} ago "
            f"({when}){leftover}; {_whose(check)}",
            "two writers under one prefix corrupt each other's data: use another "
            "store (or database/table) for this environment, or stop the other "
            "writer and delete its keys under the prefix first",
        )
    if result.reason in {Reason.SCHEMA, Reason.PARSE} and result.raw is None:
        return None  # said by the schema finding
    if result.membership_present:
        return Finding(
            "prefix",
            "warning",
            f"{where}: no sync marker, but membership data is present (leftovers "
            "of an earlier writer)",
            "delete the keys under the prefix so that the first sync starts clean",
        )
    if result.read_ok:
        return Finding("prefix", "ok", f"{where}: empty, nothing written there yet")
    return None


def _redis_health(check: Preflight, result: ProbeResult) -> list[Finding]:
    health = result.redis
    if health is None:
        return [
            Finding(
                "info",
                "warning",
                "INFO is not allowed for this user: eviction policy, memory "
                "headroom and persistence were not checked",
                "run preflight with a user that may run INFO, or check "
                "maxmemory-policy, maxmemory and persistence by hand",
            )
        ]
    findings: list[Finding] = []
    policy = health.maxmemory_policy
    if health.eviction_unsafe:
        findings.append(
            Finding(
                "eviction",
                "blocker",
                f"maxmemory-policy {policy} with maxmemory {health.maxmemory} bytes "
                "may evict big segment keys (they have no TTL): SDKs then silently "
                "see contexts as non-members",
                "set maxmemory-policy to noeviction or a volatile-* policy, or "
                "maxmemory to 0",
            )
        )
    else:
        limit = "no maxmemory" if not health.maxmemory else f"maxmemory {policy}"
        findings.append(
            Finding("eviction", "ok", f"{limit}: big segment keys are not evicted")
        )
    if health.maxmemory:
        share = health.used_memory / health.maxmemory
        text = (
            f"{health.used_memory} of {health.maxmemory} bytes used "
            f"({share:.0%}, {health.maxmemory - health.used_memory} bytes free)"
        )
        if share >= MEMORY_WARNING_SHARE:
            findings.append(
                Finding(
                    "memory",
                    "warning",
                    text,
                    "raise maxmemory: the segments need room, and writes fail "
                    "once it is reached",
                )
            )
        else:
            findings.append(Finding("memory", "ok", text))
    if not health.persistence_enabled:
        findings.append(
            Finding(
                "persistence",
                "warning",
                "persistence is off (no AOF, no RDB snapshot since start): a "
                "restart empties the store until the next full sync",
                "enable AOF (appendonly yes) or RDB snapshots",
            )
        )
    else:
        findings.append(Finding("persistence", "ok", "AOF or RDB snapshots on"))
    return findings


def _judge_redis(check: Preflight, result: ProbeResult, now: float) -> list[Finding]:
    findings: list[Finding] = []
    endpoint = check.store.endpoint
    assert isinstance(endpoint, RedisEndpoint)  # noqa: S101 -- kind redis
    if endpoint.tls is not None:
        if result.reason is Reason.TLS_VERIFY:
            findings.append(
                Finding(
                    "tls",
                    "blocker",
                    f"the certificate was not accepted: {result.error}",
                    "use a certificate from a public CA (LaunchDarkly's writer "
                    "trusts only those), or pass --ca-file/--server-name when the "
                    "CA or name given here is the wrong one",
                )
            )
        else:
            findings.append(Finding("tls", "ok", "certificate verified"))
        certificate = _certificate(result, now)
        if certificate is not None:
            findings.append(certificate)
        if result.reason is Reason.TLS_VERIFY:
            return findings
    if result.reason is Reason.AUTH:
        findings.append(
            Finding(
                "auth",
                "blocker",
                f"authentication failed: {result.error}",
                "check the username and password (--password-env/--password-file) "
                "the integration will be given",
            )
        )
        return findings
    user = endpoint.username or "default"
    findings.append(
        Finding(
            "auth",
            "ok",
            f"authenticated as {user}"
            if endpoint.password is not None
            else "no password needed",
        )
    )
    if result.reason is Reason.NO_PERMISSION:
        findings.append(
            Finding(
                "permissions",
                "blocker",
                str(result.error),
                "the integration's user must read and write the keys under the "
                "prefix (e.g. ACL ~<prefix>:* +@read +@write)",
            )
        )
    elif result.reason is Reason.CLUSTER_REDIRECT:
        findings.append(
            Finding(
                "cluster",
                "blocker",
                str(result.error),
                "use a standalone Redis (or a primary with replicas): most SDKs "
                "do not support Redis Cluster",
            )
        )
    elif result.reason in {Reason.SCHEMA, Reason.PARSE}:
        findings.append(
            Finding(
                "prefix",
                "blocker",
                f"{result.error} (another program's data under prefix {check.prefix})",
                "use another store or database, or delete the keys under the prefix",
            )
        )
    elif result.reason is not None:
        findings.append(
            Finding(
                "read",
                "blocker",
                str(result.error),
                "the store must answer the reads the SDKs make",
            )
        )
    prefix = _prefix(check, result, now)
    if prefix is not None:
        findings.append(prefix)
    if result.up:
        findings += _redis_health(check, result)
    return findings


def _judge_dynamodb(check: Preflight, result: ProbeResult, now: float) -> list[Finding]:
    findings: list[Finding] = []
    endpoint = check.store.endpoint
    assert isinstance(endpoint, DynamoDBEndpoint)  # noqa: S101 -- kind dynamodb
    error = result.error or ""
    if result.reason is Reason.AUTH:
        role = f" or assume {endpoint.role_arn}" if endpoint.role_arn else ""
        findings.append(
            Finding(
                "credentials",
                "blocker",
                error,
                f"AWS refused these credentials{role}: check the credentials this "
                "runs with and the role's trust policy (external ID)",
            )
        )
        return findings
    findings.append(
        Finding(
            "credentials",
            "ok",
            "AWS accepted the credentials"
            + (f" (role {endpoint.role_arn})" if endpoint.role_arn else ""),
        )
    )
    if result.reason is Reason.NOT_FOUND:
        findings.append(
            Finding(
                "table",
                "blocker",
                f"table {endpoint.table} does not exist in {endpoint.region}: {error}",
                "create it with partition key namespace (S) and sort key key (S), "
                "or correct --table/--region",
            )
        )
        return findings
    if result.reason is Reason.NO_PERMISSION:
        findings.append(
            Finding(
                "permissions",
                "blocker",
                error,
                "allow dynamodb:DescribeTable and dynamodb:GetItem on the table "
                "(and the writes LaunchDarkly's role needs)",
            )
        )
    table = result.table
    if table is not None:
        if table.readable:
            findings.append(
                Finding("table", "ok", f"{endpoint.table} is {table.table_status}")
            )
        else:
            findings.append(
                Finding(
                    "table",
                    "blocker",
                    f"{endpoint.table} is {table.table_status}: reads fail",
                    "wait until the table is ACTIVE, or use another table",
                )
            )
        schema = [
            part
            for part in error.split("; ")
            if part.startswith(("key schema", "key attribute"))
        ]
        if schema:
            findings.append(
                Finding(
                    "key schema",
                    "blocker",
                    "; ".join(schema),
                    "the SDKs read namespace (S) as partition key and key (S) as "
                    "sort key: create a new table with that key schema (a table's "
                    "key schema cannot be changed)",
                )
            )
        else:
            findings.append(
                Finding("key schema", "ok", "namespace (S) HASH, key (S) RANGE")
            )
    prefix = _prefix(check, result, now)
    if prefix is not None:
        findings.append(prefix)
    return findings


# -- printing ---------------------------------------------------------------

_MARK = {"ok": "ok", "warning": "WARNING", "blocker": "BLOCKER"}


def render_table(check: Preflight) -> str:
    """The preflight for people: one line per check, then what to do."""
    endpoint = check.store.endpoint
    head = (
        f"preflight of {check.store.kind} {endpoint.address} for "
        f"{check.project}/{check.environment} (prefix {check.prefix})"
    )
    rows = [(f.check, _MARK[f.level], f.message) for f in check.findings]
    widths = [
        max([len(h), *(len(r[i]) for r in rows)])
        for i, h in enumerate(("CHECK", "RESULT"))
    ]
    lines = [
        head,
        "",
        f"{'CHECK'.ljust(widths[0])}  {'RESULT'.ljust(widths[1])}  FINDING",
    ]
    lines += [
        f"{c.ljust(widths[0])}  {r.ljust(widths[1])}  {m}".rstrip() for c, r, m in rows
    ]
    todo = [f for f in check.findings if f.level != "ok"]
    if todo:
        lines += ["", "what to do:"]
        lines += [f"  {f.check} ({f.level}): {f.action}" for f in todo]
    blockers, warnings = len(check.blockers), len(check.warnings)
    verdict = "ready" if check.ready else "NOT ready"
    lines += ["", f"{verdict}: {blockers} blocker(s), {warnings} warning(s)"]
    return "\n".join(lines) + "\n"


def printable(text: str) -> str:
    """`text` that any output encoding takes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def emit(check: Preflight, fmt: str, out: TextIO, redactor: Redactor) -> None:
    """Print the preflight, secrets masked."""
    if fmt == "json":
        out.write(json.dumps(redactor.value(check.to_json()), indent=2) + "\n")
    else:
        out.write(printable(redactor.text(render_table(check))))


async def preflight_command(
    args: argparse.Namespace,
    config: Config,
    redactor: Redactor,
    *,
    out: TextIO,
    err: TextIO,
) -> int:
    """`ld-store-monitor preflight`: 0 ready, 1 not ready, 2 bad input."""
    try:
        store = store_from_args(args, config)
        redactor.update(store.secrets)
        async with tools_for(config) as tools:
            check = await run_preflight(
                config, store, args.project, args.environment, tools
            )
    except BadInputError as problem:
        print(printable(redactor.text(f"preflight: {problem}")), file=err)
        return Exit.BAD_INPUT
    emit(check, args.format, out, redactor)
    return Exit.OK if check.ready else Exit.UNHEALTHY

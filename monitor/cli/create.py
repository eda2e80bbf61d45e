"""`ld-store-monitor create`: preflight, then create the integration through the API.

Builds the exact `IntegrationDeliveryConfigurationPost` body (`name`,
`config`, `on`, `tags`; `config` keys as the integration manifests name
them), runs the preflight first, and prints the request with the password
masked. Nothing is sent without `--apply`; with it, one `POST` with
`LD-API-Version: beta` and the *write* token (`LD_API_WRITER_TOKEN` or
`--token-file`, never the read token of `--config`). With `--wait`, it then
watches until the first sync lands: the sync marker appears in the store
under the environment's prefix and LaunchDarkly's `_status.lastSync` is set.

Exit 0 created (and synced, with `--wait`) or, without `--apply`, ready;
1 not ready, not created (409, 429 past its patience) or no first sync in
time; 2 bad input (options, config, tokens; 400, 401, 403, 404).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from monitor.cli.exits import Exit
from monitor.cli.preflight import (
    BadInputError,
    Preflight,
    StoreSpec,
    Tools,
    api_client,
    emit,
    printable,
    run_preflight,
    store_from_args,
    target_of,
    tools_for,
)
from monitor.config import Config, parse_duration
from monitor.export.humanize import format_age
from monitor.launchdarkly.client import INTEGRATIONS_PATH, LaunchDarklyClient
from monitor.launchdarkly.errors import ApiError, ApiErrorKind
from monitor.launchdarkly.models import Problems
from monitor.log import Redactor
from monitor.probes.runner import ProbeRunner
from monitor.targets import DynamoDBEndpoint, RedisEndpoint

WRITER_TOKEN_ENV = "LD_API_WRITER_TOKEN"  # noqa: S105 -- a variable name
# A 429 is honoured (its Retry-After, as the daemon reads it) while the
# waits add up to no more than this; past it, `create` stops and says when
# to try again. Nothing was created on a 429, so sending again is safe.
RATE_LIMIT_PATIENCE = 60.0
MAX_RATE_LIMITED_ATTEMPTS = 4
# How often --wait looks at the store and at the API.
WAIT_POLL = 1.0
DEFAULT_TIMEOUT = "10m"
MASK = "[REDACTED]"  # as the logs and /status mask secrets
SECRET_CONFIG_KEYS = frozenset({"password"})
WRITER_ROLE = (
    "a custom role allowing createIntegration on the environment "
    "(proj/<project>:env/<environment>:integration/*), or the Writer role"
)

Sleep = Callable[[float], Awaitable[None]]


def add_create_options(parser: argparse.ArgumentParser) -> None:
    """`create`'s own options, beside the store options."""
    parser.add_argument("--name", required=True, help="the integration's name")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="T", help="a tag (repeatable)"
    )
    parser.add_argument(
        "--on", action="store_true", help="create it switched on (default: off)"
    )
    parser.add_argument(
        "--apply", action="store_true", help="send the request (default: only print)"
    )
    parser.add_argument(
        "--wait", action="store_true", help="after creating, wait for the first sync"
    )
    parser.add_argument(
        "--timeout",
        default=DEFAULT_TIMEOUT,
        metavar="DURATION",
        help="how long --wait waits (default 10m)",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="F",
        help=f"the write token (default: ${WRITER_TOKEN_ENV})",
    )


def request_body(
    store: StoreSpec, name: str, tags: list[str], *, on: bool
) -> dict[str, Any]:
    """The `IntegrationDeliveryConfigurationPost` for this store.

    `config` holds the manifest's form variables: redis `host`, `port` (a
    string), `username`, `password`, `tlsEnabled`; dynamodb `tableName`,
    `region`, `roleArn`, `externalId` (LaunchDarkly generates one when
    absent). CA file, server name, endpoint URL and SDK are the preflight's
    own: the integration has no such fields.
    """
    endpoint = store.endpoint
    config: dict[str, Any]
    if isinstance(endpoint, RedisEndpoint):
        config = {"host": endpoint.host, "port": str(endpoint.port)}
        if endpoint.username:
            config["username"] = endpoint.username
        if endpoint.password is not None:
            config["password"] = endpoint.password.get_secret_value()
        config["tlsEnabled"] = endpoint.tls is not None
    else:
        config = {"tableName": endpoint.table, "region": endpoint.region}
        if endpoint.role_arn:
            config["roleArn"] = endpoint.role_arn
        if endpoint.external_id:
            config["externalId"] = endpoint.external_id
    return {"name": name, "config": config, "on": on, "tags": list(tags)}


def masked(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with every secret of its `config` masked."""
    config = {
        key: MASK if key in SECRET_CONFIG_KEYS and value else value
        for key, value in body["config"].items()
    }
    return {**body, "config": config}


def create_path(project: str, environment: str, kind: str) -> str:
    """The create endpoint's path."""
    return f"{INTEGRATIONS_PATH}/{project}/{environment}/{kind}"


def writer_token(args: argparse.Namespace, config: Config) -> SecretStr:
    """The write token: --token-file, else $LD_API_WRITER_TOKEN (BadInputError)."""
    if args.token_file is not None:
        try:
            value = Path(args.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise BadInputError(
                f"--token-file: cannot read {args.token_file}: {type(err).__name__}"
            ) from None
        source = f"--token-file {args.token_file}"
    else:
        value = os.environ.get(WRITER_TOKEN_ENV, "").strip()
        source = f"${WRITER_TOKEN_ENV}"
    if not value:
        raise BadInputError(
            f"--apply needs a write token in ${WRITER_TOKEN_ENV} or --token-file "
            f"({WRITER_ROLE}); the read token of --config is never used to write"
        )
    read = config.api.token.get_secret_value() if config.api.token else None
    if value == read:
        raise BadInputError(
            f"the write token ({source}) is the read token of --config: give "
            "`create` its own token, so the daemon's token can stay read-only"
        )
    return SecretStr(value)


@dataclass
class Outcome:
    """What `create` did, for the JSON output and the exit code."""

    code: int = Exit.OK
    sent: bool = False
    status: int | None = None
    message: str | None = None
    integration: dict[str, Any] | None = None
    wait: dict[str, Any] = field(default_factory=dict)


def _refusal(err: ApiError, project: str, environment: str) -> tuple[int, str]:
    """A refused POST as (exit code, message for people)."""
    said = f": {err.api_message}" if err.api_message else ""
    if err.status == 400:
        return Exit.BAD_INPUT, f"LaunchDarkly refused the request (HTTP 400){said}"
    if err.kind is ApiErrorKind.AUTH:
        return (
            Exit.BAD_INPUT,
            "the write token was refused (HTTP 401): it is invalid, expired or revoked",
        )
    if err.kind is ApiErrorKind.FORBIDDEN:
        return (
            Exit.BAD_INPUT,
            f"the write token may not create integrations in {project}/"
            f"{environment} (HTTP 403{said}): it needs the createIntegration "
            f"action, {WRITER_ROLE}",
        )
    if err.kind is ApiErrorKind.NOT_FOUND:
        return (
            Exit.BAD_INPUT,
            f"LaunchDarkly knows no project {project!r} with environment "
            f"{environment!r} (HTTP 404)",
        )
    if err.status == 409:
        return (
            Exit.UNHEALTHY,
            f"the integration already exists (HTTP 409{said}): nothing was created; "
            "pick another --name or use the existing integration",
        )
    if err.kind is ApiErrorKind.RATE_LIMITED:
        wait = err.retry_after or 0.0
        return (
            Exit.UNHEALTHY,
            f"rate limited by LaunchDarkly (HTTP 429): it asks to wait "
            f"{wait:.0f}s, more than {RATE_LIMIT_PATIENCE:.0f}s; nothing was "
            "created, run the same command again later",
        )
    return Exit.UNHEALTHY, f"the request failed: {err}{said}; nothing was created"


async def post(
    client: LaunchDarklyClient,
    check: Preflight,
    body: dict[str, Any],
    *,
    sleep: Sleep = asyncio.sleep,
    err: TextIO,
) -> Outcome:
    """POST the body, honouring 429s within RATE_LIMIT_PATIENCE."""
    kind = check.store.kind
    waited = 0.0
    for attempt in range(1, MAX_RATE_LIMITED_ATTEMPTS + 1):
        try:
            reply = await client.create_integration(
                check.project, check.environment, kind, body
            )
        except ApiError as problem:
            wait = problem.retry_after or 0.0
            if (
                problem.kind is ApiErrorKind.RATE_LIMITED
                and attempt < MAX_RATE_LIMITED_ATTEMPTS
                and waited + wait <= RATE_LIMIT_PATIENCE
            ):
                print(
                    f"rate limited by LaunchDarkly (HTTP 429): waiting {wait:.1f}s "
                    "as it asks, then sending again",
                    file=err,
                )
                waited += wait
                await sleep(wait)
                continue
            code, message = _refusal(problem, check.project, check.environment)
            return Outcome(code=code, sent=True, status=problem.status, message=message)
        integration = reply if isinstance(reply, dict) else {}
        return Outcome(
            sent=True,
            status=201,
            message=(
                f"created {kind} integration {integration.get('_id', '?')!r} "
                f"(version {integration.get('version', '?')}) in "
                f"{check.project}/{check.environment}"
            ),
            integration=integration,
        )
    raise AssertionError("unreachable")  # pragma: no cover


CAUSES = {
    "redis": (
        "LaunchDarkly's writer cannot reach the Redis host (a firewall or "
        "allow-list: LaunchDarkly connects from its own addresses), the "
        "password or TLS setting given to the integration is wrong, or the "
        "integration is off (--on)"
    ),
    "dynamodb": (
        "the role's trust policy does not let LaunchDarkly assume it (principal "
        "or the external ID LaunchDarkly generated), the role lacks write "
        "permissions on the table, or the integration is off (--on)"
    ),
}


async def wait_for_first_sync(
    check: Preflight,
    integration: dict[str, Any],
    *,
    reader: LaunchDarklyClient,
    runner: ProbeRunner,
    within: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> dict[str, Any]:
    """Watch the store and the API until the first sync lands, or `within` seconds."""
    started = clock()
    target = target_of(check)
    marker_at: float | None = None
    api_at: float | None = None
    last_sync_ms: int | None = None
    synchronized_on_ms: int | None = None
    api_problem: str | None = None
    store_problem: str | None = None
    last_error: str | None = None
    integration_id = str(integration.get("_id", ""))
    while True:
        if marker_at is None:
            result = await runner.probe(target)
            store_problem = result.error if result.reason is not None else None
            if result.synchronized_on_ms is not None:
                marker_at = clock() - started
                synchronized_on_ms = result.synchronized_on_ms
        if api_at is None and integration_id:
            try:
                current = await reader.get_integration(
                    check.project,
                    check.environment,
                    check.store.kind,  # type: ignore[arg-type]
                    integration_id,
                    Problems(),
                )
            except ApiError as problem:
                api_problem = str(problem)
            else:
                api_problem = None
                if current.status.last_sync_ms is not None:
                    api_at = clock() - started
                    last_sync_ms = current.status.last_sync_ms
                elif current.status.errors:
                    last_error = current.status.errors[0].message
        if marker_at is not None and api_at is not None:
            return {
                "synced": True,
                "seconds": round(max(marker_at, api_at), 3),
                "store_seconds": round(marker_at, 3),
                "api_seconds": round(api_at, 3),
                "synchronized_on_ms": synchronized_on_ms,
                "last_sync_ms": last_sync_ms,
            }
        if clock() - started >= within:
            break
        await sleep(min(WAIT_POLL, max(0.0, within - (clock() - started))))
    missing = []
    if marker_at is None:
        where = f"no sync marker at {check.marker_key} in the store"
        missing.append(where + (f" ({store_problem})" if store_problem else ""))
    if api_at is None:
        said = "LaunchDarkly reports no lastSync for the integration"
        if last_error:
            said += f" (its last error: {last_error})"
        elif api_problem:
            said += f" (reading it failed: {api_problem})"
        missing.append(said)
    return {
        "synced": False,
        "seconds": None,
        "store_seconds": marker_at,
        "api_seconds": api_at,
        "reason": f"no first sync within {format_age(within)}: " + "; ".join(missing),
        "usual_causes": CAUSES[check.store.kind]
        + f", or the store is read under the wrong prefix (expected {check.prefix}, "
        "the environment's client-side ID)",
    }


def _request_doc(
    config: Config, check: Preflight, body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": config.api.base_url
        + create_path(check.project, check.environment, check.store.kind),
        "headers": {"LD-API-Version": "beta"},
        "token": f"the write token (${WRITER_TOKEN_ENV} or --token-file)",
        "body": masked(body),
    }


def _print_request(request: dict[str, Any], out: TextIO) -> None:
    out.write(
        f"\nrequest:\n  {request['method']} {request['url']}\n"
        "  LD-API-Version: beta\n"
        f"  Authorization: (the write token: ${WRITER_TOKEN_ENV} or --token-file)\n"
    )
    for line in json.dumps(request["body"], indent=2).splitlines():
        out.write(f"  {line}\n")


def _inputs(
    args: argparse.Namespace, config: Config
) -> tuple[StoreSpec, float, SecretStr | None]:
    """The store, the --wait timeout and the write token (with --apply);
    BadInputError naming the first problem."""
    if args.wait and not args.apply:
        raise BadInputError("--wait needs --apply")
    try:
        within = parse_duration(args.timeout)
    except ValueError as err:
        raise BadInputError(f"--timeout: {err}") from None
    if not isinstance(within, float) or within <= 0:
        raise BadInputError(f"--timeout {args.timeout}: not a positive duration")
    store = store_from_args(args, config)
    endpoint = store.endpoint
    if isinstance(endpoint, DynamoDBEndpoint) and not endpoint.role_arn:
        raise BadInputError(
            "--kind dynamodb needs --role-arn: LaunchDarkly writes the table "
            "through a role it assumes"
        )
    token = writer_token(args, config) if args.apply else None
    return store, within, token


async def create_command(
    args: argparse.Namespace,
    config: Config,
    redactor: Redactor,
    *,
    out: TextIO,
    err: TextIO,
    sleep: Sleep = asyncio.sleep,
) -> int:
    """`ld-store-monitor create`; see the module's docstring for the exit codes."""
    as_json = args.format == "json"
    try:
        store, within, token = _inputs(args, config)
        redactor.update(store.secrets)
        if token is not None:
            redactor.update([token.get_secret_value()])
        body = request_body(store, args.name, args.tag, on=args.on)
        async with tools_for(config) as tools:
            check = await run_preflight(
                config, store, args.project, args.environment, tools
            )
            outcome = await _create(
                args,
                config,
                check,
                body,
                tools,
                token=token,
                within=within,
                out=out,
                err=err,
                sleep=sleep,
            )
    except BadInputError as problem:
        print(printable(redactor.text(f"create: {problem}")), file=err)
        return Exit.BAD_INPUT
    request = _request_doc(config, check, body)
    if as_json:
        doc = {
            "preflight": check.to_json(),
            "request": request,
            "sent": outcome.sent,
            "status": outcome.status,
            "message": outcome.message,
            "integration": outcome.integration,
            "wait": outcome.wait or None,
        }
        out.write(json.dumps(redactor.value(doc), indent=2) + "\n")
    else:
        text = outcome.message or ""
        if outcome.wait:
            text += "\n" + _wait_text(outcome.wait)
        stream = out if outcome.code == Exit.OK else err
        print(printable(redactor.text(text.strip())), file=stream)
    return outcome.code


def _wait_text(wait: dict[str, Any]) -> str:
    if wait.get("synced"):
        return (
            f"first sync landed {wait['seconds']:.1f}s after creation "
            f"(sync marker in the store after {wait['store_seconds']:.1f}s, "
            f"LaunchDarkly's lastSync after {wait['api_seconds']:.1f}s); a running "
            "daemon picks the integration up at its next discovery"
        )
    return f"{wait['reason']}\nusual causes: {wait['usual_causes']}"


async def _create(
    args: argparse.Namespace,
    config: Config,
    check: Preflight,
    body: dict[str, Any],
    tools: Tools,
    *,
    token: SecretStr | None,
    within: float,
    out: TextIO,
    err: TextIO,
    sleep: Sleep,
) -> Outcome:
    """After the preflight: print, refuse, or send and wait."""
    as_json = args.format == "json"
    redactor = Redactor(check.store.secrets)
    if not as_json:
        emit(check, "table", out, redactor)
        _print_request(_request_doc(config, check, body), out)
    if not check.ready:
        return Outcome(
            code=Exit.UNHEALTHY,
            message="not sent: the store is not ready (fix the blockers above)",
        )
    if token is None:
        return Outcome(
            code=Exit.OK,
            message="nothing sent: add --apply to create the integration",
        )
    writer = api_client(tools.session, config, tools.log, token)
    outcome = await post(writer, check, body, sleep=sleep, err=err)
    if outcome.code != Exit.OK or not args.wait:
        return outcome
    if not as_json:
        print(
            f"{outcome.message}\nwaiting up to {format_age(within)} for the "
            "first sync…",
            file=out,
            flush=True,
        )
    reader = api_client(tools.session, config, tools.log)
    outcome.wait = await wait_for_first_sync(
        check,
        outcome.integration or {},
        reader=reader,
        runner=tools.runner,
        within=within,
        sleep=sleep,
    )
    if not as_json:
        outcome.message = None
    if not outcome.wait["synced"]:
        outcome.code = Exit.UNHEALTHY
    return outcome

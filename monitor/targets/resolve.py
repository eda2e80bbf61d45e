"""Targets: what to probe, resolved from discovered integrations and static config.

An integration becomes a target once its settings and key prefix are known.
LaunchDarkly redacts store passwords, so credentials come from the monitor's
own `credentials` entries (first match wins); an `address` there reaches the
store by another name than the one LaunchDarkly uses.

A credential goes only where it belongs: an entry with `hosts` patterns is
sent only to a host that matches one (an `address` pins it by itself); for
any other host the target is not probed at all (`credential_withheld`), so
whoever edits an integration in LaunchDarkly cannot collect the password.

Static targets keep their name as id. An API integration whose `_id` equals
a static target's name becomes `api:<_id>` (ids starting with `api:` are
refused when the list is parsed), is not probed and says why, so the two
never share a probe record or a series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from urllib.parse import unquote, urlsplit

from monitor.config import (
    Canary,
    Config,
    Credential,
    DynamoDBTarget,
    RedisCredential,
    RedisTarget,
    Sdk,
    TlsConfig,
    split_host_port,
)
from monitor.launchdarkly.discovery import DiscoveredIntegration
from monitor.launchdarkly.models import (
    RESERVED_ID_PREFIX,
    DynamoDBSettings,
    RedisSettings,
    Segment,
)
from monitor.store_keys import DEFAULT_REDIS_PORT, context_hash
from monitor.targets.model import (
    CanaryCheck,
    DynamoDBEndpoint,
    Labels,
    RedisEndpoint,
    SegmentKey,
    Target,
    host_matches,
)


def _tls(tls: TlsConfig | None) -> TlsConfig:
    """The TLS section in force (defaults: system CAs, verify the host name)."""
    return tls if tls is not None else TlsConfig()


def _username(redis: RedisCredential | None, settings: RedisSettings) -> str | None:
    """The monitor's own user; LaunchDarkly's only with a password given."""
    if redis is None:
        return None
    if redis.username:
        return redis.username
    return settings.username if redis.password is not None else None


def host_allowed(redis: RedisCredential, host: str, port: int) -> bool:
    """May this credential be sent to host:port? Always with `address` (the
    monitor then connects there, never to the API's host) or without `hosts`;
    else when a pattern matches `host` or `host:port` (case-insensitive)."""
    if redis.address or redis.hosts is None:
        return True
    return host_matches(redis.hosts, host, port)


def _withheld(settings: RedisSettings, credential: Credential | None) -> str | None:
    """Why the credential may not go to the integration's host, if so."""
    redis = credential.redis if credential else None
    if redis is None or host_allowed(redis, settings.host, settings.port):
        return None
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return (
        f"credential withheld: the API names host {host}:{settings.port}, "
        "which matches none of the credential's hosts; not probed"
    )


def _redis_endpoint(
    settings: RedisSettings, credential: Credential | None
) -> RedisEndpoint:
    redis = credential.redis if credential else None
    host, port = settings.host, settings.port
    if redis is not None and redis.address:
        host, port = split_host_port(redis.address, default_port=settings.port)
    # TLS when LaunchDarkly connects with TLS, or when the monitor's own
    # credential asks for it (a cluster may reach the store differently).
    use_tls = settings.tls_enabled or (redis is not None and redis.tls is not None)
    return RedisEndpoint(
        host=host,
        port=port,
        username=_username(redis, settings),
        password=redis.password if redis else None,
        tls=_tls(redis.tls if redis else None) if use_tls else None,
        hosts=redis.hosts if redis else None,
    )


def _dynamodb_endpoint(
    settings: DynamoDBSettings, credential: Credential | None
) -> DynamoDBEndpoint:
    ddb = credential.dynamodb if credential else None
    # LaunchDarkly's roleArn/externalId are its own access, never the monitor's.
    return DynamoDBEndpoint(
        table=settings.table_name,
        region=(ddb.region if ddb and ddb.region else settings.region),
        endpoint_url=ddb.endpoint_url if ddb else None,
        role_arn=ddb.role_arn if ddb else None,
        external_id=ddb.external_id if ddb else None,
    )


def integration_target(
    item: DiscoveredIntegration,
    config: Config,
    static_names: frozenset[str] = frozenset(),
) -> Target:
    """The target of one discovered integration.

    `static_names`: the static targets' names, which an integration's id may
    not take (it becomes `api:<id>` and is not probed).
    """
    integration = item.integration
    target_id = integration.id
    clash = None
    if target_id in static_names:
        target_id = RESERVED_ID_PREFIX + target_id
        clash = (
            f"its id equals the name of static target {integration.id!r}; "
            "not probed (rename the static target)"
        )
    labels = Labels(
        integration.project, integration.environment, integration.kind, target_id
    )
    credential = config.credential_for(
        integration.id, integration.project, integration.environment
    )
    section = None
    if credential is not None:
        section = (
            credential.redis if integration.kind == "redis" else credential.dynamodb
        )
    prefix = (
        section.prefix
        if section is not None and section.prefix is not None
        else item.client_side_id
    )
    settings = integration.settings
    endpoint: RedisEndpoint | DynamoDBEndpoint | None = None
    problem = clash or item.detail_problem
    withheld = False
    if isinstance(settings, RedisSettings) and integration.kind == "redis":
        endpoint = _redis_endpoint(settings, credential)
        withheld_problem = _withheld(settings, credential)
        if withheld_problem is not None:
            # Nothing of the credential goes into the target: it cannot leak.
            endpoint = RedisEndpoint(host=settings.host, port=settings.port)
            problem = problem or withheld_problem
            withheld = True
    elif isinstance(settings, DynamoDBSettings) and integration.kind == "dynamodb":
        endpoint = _dynamodb_endpoint(settings, credential)
    else:
        problem = problem or "waiting for the integration's configuration from the API"
    if prefix is None and problem is None:
        problem = "the environment's client-side ID (the key prefix) is not known yet"
    sdk, stale_after = sdk_settings(config, credential)
    return Target(
        id=target_id,
        source="api",
        labels=labels,
        name=integration.name,
        prefix=prefix or "",
        endpoint=endpoint,
        problem=problem,
        on=integration.on,
        sdk=sdk,
        stale_after=stale_after,
        credential_withheld=withheld,
    )


def sdk_settings(
    config: Config,
    credential: Credential | None,
    static: RedisTarget | DynamoDBTarget | None = None,
) -> tuple[Sdk, float]:
    """The SDK profile and stale threshold of one store.

    A static target's own setting first, then the first matching credential
    entry's, then `probe.sdk`; the threshold likewise, then the profile's own
    default (Relay's 5 minutes), then `probe.stale_after`.
    """
    sources = [s for s in (static, credential) if s is not None]
    sdk = next((s.sdk for s in sources if s.sdk is not None), config.probe.sdk)
    stale_after = next(
        (s.stale_after for s in sources if s.stale_after is not None),
        sdk.default_stale_after,
    )
    return sdk, config.probe.stale_after if stale_after is None else stale_after


def static_redis_target(target: RedisTarget) -> Target:
    """A Redis target from config."""
    parts = urlsplit(target.url)
    tls = _tls(target.tls) if parts.scheme == "rediss" else None
    path = parts.path.strip("/")
    endpoint = RedisEndpoint(
        host=parts.hostname or "",
        port=parts.port or DEFAULT_REDIS_PORT,
        username=target.username
        or (unquote(parts.username) if parts.username else None),
        password=target.password,
        tls=tls,
        db=int(path) if path.isdigit() else 0,
    )
    return Target(
        id=target.name,
        source="static",
        labels=Labels(target.project, target.environment, "redis", target.name),
        name=target.name,
        prefix=target.prefix,
        endpoint=endpoint,
    )


def static_dynamodb_target(target: DynamoDBTarget) -> Target:
    """A DynamoDB target from config."""
    return Target(
        id=target.name,
        source="static",
        labels=Labels(target.project, target.environment, "dynamodb", target.name),
        name=target.name,
        prefix=target.prefix,
        endpoint=DynamoDBEndpoint(
            table=target.table,
            region=target.region,
            endpoint_url=target.endpoint_url,
            role_arn=target.role_arn,
            external_id=target.external_id,
        ),
    )


def _canary_checks(
    target: Target,
    canaries: Iterable[Canary],
    segments: Mapping[SegmentKey, Segment | None],
) -> tuple[CanaryCheck, ...]:
    checks = []
    labels = target.labels
    for canary in canaries:
        if not canary.match.matches(
            labels.integration_id, labels.project, labels.environment
        ):
            continue
        generation, problem = canary.generation, None
        if generation is None and target.source == "static":
            problem = (
                "a static target's canary needs `generation:` (there is no API to ask)"
            )
        elif generation is None:
            key = (labels.project, labels.environment, canary.segment_key)
            name = f"segment {canary.segment_key!r}"
            if key not in segments:
                problem = f"{name} not fetched from the API yet"
            elif (segment := segments[key]) is None:
                problem = f"{name} not found in {labels.project}/{labels.environment}"
            elif segment.generation is None or not segment.unbounded:
                problem = f"{name} is not a big segment (no generation)"
            else:
                generation = segment.generation
        checks.append(
            CanaryCheck(
                name=canary.name,
                context_hash=context_hash(canary.context_key),
                segment_key=canary.segment_key,
                expect=canary.expect,
                generation=generation,
                problem=problem,
            )
        )
    return tuple(checks)


def canary_segments(
    targets: Iterable[Target], canaries: Iterable[Canary]
) -> set[SegmentKey]:
    """The segments whose generation the API must supply for these targets' canaries."""
    wanted = set()
    canaries = list(canaries)
    for target in targets:
        if target.source != "api":
            continue
        labels = target.labels
        for canary in canaries:
            if canary.generation is None and canary.match.matches(
                target.id, labels.project, labels.environment
            ):
                wanted.add((labels.project, labels.environment, canary.segment_key))
    return wanted


def resolve_targets(
    integrations: Iterable[DiscoveredIntegration],
    config: Config,
    segments: Mapping[SegmentKey, Segment | None] | None = None,
) -> tuple[Target, ...]:
    """Every target (discovered, then static), each with its canaries."""
    static_names = frozenset(static.name for static in config.targets)
    targets = [integration_target(item, config, static_names) for item in integrations]
    for static in config.targets:
        target = (
            static_redis_target(static)
            if isinstance(static, RedisTarget)
            else static_dynamodb_target(static)
        )
        credential = config.credential_for(
            static.name, static.project, static.environment
        )
        sdk, stale_after = sdk_settings(config, credential, static)
        targets.append(replace(target, sdk=sdk, stale_after=stale_after))
    if config.canaries:
        known = segments or {}
        targets = [
            replace(t, canaries=_canary_checks(t, config.canaries, known))
            for t in targets
        ]
    return tuple(targets)

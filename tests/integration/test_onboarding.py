"""`preflight` and `create` against real redis-server, moto and the API simulator."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from devtools.ldsim import Simulator, SimulatorServer, load_demo_scenario
from devtools.ldsim.firstsync import FIRST_SYNC_CONTEXT_KEY
from devtools.servers.moto_server import (
    MotoServer,
    create_bigsegment_table,
    put_metadata,
)
from devtools.servers.redis_server import RedisServer
from devtools.servers.tls import TlsCertSet
from monitor.cli import _parser, main
from monitor.cli.create import create_command
from monitor.cli.preflight import preflight_command
from monitor.config import load_config
from monitor.log import Redactor
from monitor.store_keys import (
    context_hash,
    redis_include_key,
    redis_synchronized_on_key,
)
from tests.support.plugin import REDIS_PASSWORD

READ_TOKEN = "sim-read-token"
WRITE_TOKEN = "wTok-Q7xLr9VbHs"
PROJECT, ENVIRONMENT = "web", "staging"
PREFIX = "64f1a2b3c4d5e6f708192a3c"  # web/staging's client-side ID in the demo
TABLE = "ld-big-segments"
ROLE_ARN = "arn:aws:iam::123456789012:role/launchdarkly-big-segments"
DATA = Path(__file__).resolve().parents[1] / "data"
SPEC: dict[str, Any] = json.loads((DATA / "ld-openapi-bigsegment.json").read_text())
SPEC_URI = "urn:ld-openapi-bigsegment"
REGISTRY: Registry[Any] = Registry().with_resource(
    SPEC_URI, DRAFT4.create_resource(SPEC)
)


@dataclass
class Ran:
    """One command's exit code and output."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout as JSON."""
        return json.loads(self.out)


@dataclass
class Api:
    """The simulator and a config file pointing at it."""

    sim: Simulator
    config: Path


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The demo scenario behind a read token and a separate write token."""
    sim = Simulator(load_demo_scenario(), token=READ_TOKEN, writer_token=WRITE_TOKEN)
    async with SimulatorServer(sim) as server:
        token_file = tmp_path / "read-token"
        token_file.write_text(READ_TOKEN)
        config = tmp_path / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "api": {
                        "base_url": server.url,
                        "token_file": str(token_file),
                        "timeout": "3s",
                    },
                    "probe": {"timeout": "2s", "interval": "10s"},
                }
            )
        )
        yield Api(sim, config)


@pytest.fixture
def writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The write token in LD_API_WRITER_TOKEN."""
    monkeypatch.setenv("LD_API_WRITER_TOKEN", WRITE_TOKEN)


async def run(api: Api, *argv: str) -> Ran:
    """Run `preflight` or `create` in-process; its exit code and output."""
    args = _parser().parse_args([argv[0], "--config", str(api.config), *argv[1:]])
    config = load_config(api.config)
    out, err = io.StringIO(), io.StringIO()
    command = create_command if args.command == "create" else preflight_command
    code = await command(args, config, Redactor(config.secrets()), out=out, err=err)
    return Ran(code, out.getvalue(), err.getvalue())


def env_args(kind: str) -> list[str]:
    """web/staging and the store kind."""
    return ["--project", PROJECT, "--environment", ENVIRONMENT, "--kind", kind]


def redis_args(server: RedisServer, *extra: str) -> list[str]:
    """The store options of `server` in web/staging."""
    address = ["--host", server.host, "--port", str(server.client_port)]
    return [*env_args("redis"), *address, *extra]


def dynamodb_args(moto: MotoServer, *extra: str) -> list[str]:
    """The store options of the moto table in web/staging."""
    table = ["--table", TABLE, "--region", "us-east-1"]
    return [*env_args("dynamodb"), *table, "--endpoint-url", moto.endpoint_url, *extra]


def finding(ran: Ran, check: str) -> dict[str, Any]:
    """The JSON finding of `check`."""
    found = [f for f in ran.json()["findings"] if f["check"] == check]
    assert found, f"no {check} finding in {ran.out}"
    return dict(found[0])


def blockers(ran: Ran) -> set[str]:
    """The checks that block, from JSON output."""
    return {f["check"] for f in ran.json()["findings"] if f["level"] == "blocker"}


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """REDIS_PASSWORD in $STORE_PASSWORD."""
    monkeypatch.setenv("STORE_PASSWORD", REDIS_PASSWORD)
    return "STORE_PASSWORD"


# -- preflight: Redis --------------------------------------------------------------


async def test_preflight_passes_on_a_ready_redis(
    api: Api, redis_password: RedisServer, password_env: str
) -> None:
    """Reachable, authenticated, empty prefix: ready (persistence off only warns)."""
    ran = await run(
        api,
        "preflight",
        *redis_args(redis_password, "--password-env", password_env),
        "--format",
        "json",
    )
    assert ran.code == 0, ran.out + ran.err
    doc = ran.json()
    assert doc["ready"] is True
    assert doc["prefix"] == PREFIX
    assert doc["sync_marker"] == f"{PREFIX}:big_segments_synchronized_on"
    assert finding(ran, "auth")["level"] == "ok"
    assert finding(ran, "prefix")["level"] == "ok"
    assert finding(ran, "eviction")["level"] == "ok"
    assert REDIS_PASSWORD not in ran.out + ran.err
    table = await run(
        api, "preflight", *redis_args(redis_password, "--password-env", password_env)
    )
    assert table.code == 0
    assert "ready: 0 blocker(s)" in table.out
    assert "CHECK" in table.out
    assert "FINDING" in table.out


async def test_preflight_fails_on_an_unreachable_store(
    api: Api, closed_port: int
) -> None:
    """A refused connection is the reachable blocker, and nothing else is judged."""
    ran = await run(
        api,
        "preflight",
        *env_args("redis"),
        *("--host", "127.0.0.1", "--port", str(closed_port)),
        "--format",
        "json",
    )
    assert ran.code == 1
    assert [f["check"] for f in ran.json()["findings"]] == ["reachable"]
    assert "firewalls" in finding(ran, "reachable")["action"]


async def test_preflight_fails_on_a_wrong_password(
    api: Api, redis_password: RedisServer, tmp_path: Path
) -> None:
    """A wrong password is the auth blocker, and the password is never printed."""
    secret = tmp_path / "password"
    secret.write_text("Wr0ngZq8x7vK4711\n")
    ran = await run(
        api,
        "preflight",
        *redis_args(redis_password, "--password-file", str(secret)),
        "--format",
        "json",
    )
    assert ran.code == 1
    assert blockers(ran) == {"auth"}
    assert "password" in finding(ran, "auth")["action"]
    assert "Wr0ngZq8x7vK4711" not in ran.out + ran.err


async def test_preflight_fails_on_an_untrusted_certificate(
    api: Api, redis_tls: RedisServer, tls_certs: TlsCertSet
) -> None:
    """A certificate of a CA not trusted is the tls blocker."""
    ran = await run(
        api,
        "preflight",
        *redis_args(
            redis_tls, "--tls", "--ca-file", str(tls_certs.untrusted_ca.cert_file)
        ),
        "--format",
        "json",
    )
    assert ran.code == 1
    assert blockers(ran) == {"tls"}
    trusted = await run(
        api,
        "preflight",
        *redis_args(
            redis_tls,
            "--tls",
            "--ca-file",
            str(tls_certs.ca.cert_file),
            "--server-name",
            "localhost",
        ),
        "--format",
        "json",
    )
    assert trusted.code == 0, trusted.out
    assert finding(trusted, "tls")["level"] == "ok"
    assert finding(trusted, "certificate")["level"] == "ok"
    assert "expires on" in finding(trusted, "certificate")["message"]


async def test_preflight_fails_on_an_allkeys_eviction_policy(
    api: Api, redis_plain: RedisServer
) -> None:
    """allkeys-lru with a maxmemory is the eviction blocker."""
    with redis_plain.admin() as admin:
        admin.config_set("maxmemory", "512mb")
        admin.config_set("maxmemory-policy", "allkeys-lru")
        try:
            ran = await run(
                api, "preflight", *redis_args(redis_plain), "--format", "json"
            )
        finally:
            admin.config_set("maxmemory-policy", "noeviction")
            admin.config_set("maxmemory", "0")
    assert ran.code == 1
    assert blockers(ran) == {"eviction"}
    assert "allkeys-lru" in finding(ran, "eviction")["message"]
    assert "noeviction" in finding(ran, "eviction")["action"]


async def test_preflight_fails_on_another_writers_sync_marker(
    api: Api, redis_plain: RedisServer
) -> None:
    """A sync marker under the prefix is the prefix blocker, saying whose it may be."""
    with redis_plain.admin() as admin:
        admin.set(redis_synchronized_on_key(PREFIX), "1700000000000")
    ran = await run(api, "preflight", *redis_args(redis_plain), "--format", "json")
    assert ran.code == 1
    assert blockers(ran) == {"prefix"}
    message = finding(ran, "prefix")["message"]
    assert "already holds a sync marker" in message
    assert "Web staging Redis" in message  # the listed integration of web/staging
    assert "leftovers" in message  # written in 2023


async def test_preflight_bad_input_exits_2_without_a_traceback(api: Api) -> None:
    """Unknown environment, missing options, unset variable: exit 2, one line."""
    ran = await run(
        api,
        "preflight",
        "--project",
        "web",
        "--environment",
        "nope",
        "--kind",
        "redis",
        "--host",
        "127.0.0.1",
        "--port",
        "1",
    )
    assert ran.code == 2
    assert "no environment 'nope'" in ran.err
    assert "Traceback" not in ran.err


def test_the_command_line_exits_2_on_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through `main`: an unset password variable is exit 2, one line, no traceback."""
    token = tmp_path / "token"
    token.write_text(READ_TOKEN)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"api": {"base_url": "http://127.0.0.1:9", "token_file": str(token)}}
        )
    )
    code = main(
        [
            "preflight",
            "--config",
            str(config),
            "--project",
            "web",
            "--environment",
            "staging",
            "--kind",
            "redis",
            "--host",
            "127.0.0.1",
            "--port",
            "1",
            "--password-env",
            "NO_SUCH_VARIABLE_HERE",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "NO_SUCH_VARIABLE_HERE is not set" in err
    assert "Traceback" not in err


# -- preflight: DynamoDB ---------------------------------------------------------


@pytest.mark.usefixtures("aws_env")
async def test_preflight_passes_on_a_ready_table(
    api: Api, clean_moto: MotoServer
) -> None:
    """The right key schema, an empty prefix: ready."""
    create_bigsegment_table(clean_moto.endpoint_url, TABLE)
    ran = await run(api, "preflight", *dynamodb_args(clean_moto), "--format", "json")
    assert ran.code == 0, ran.out + ran.err
    assert finding(ran, "key schema")["level"] == "ok"
    assert finding(ran, "table")["level"] == "ok"


@pytest.mark.usefixtures("aws_env")
async def test_preflight_fails_on_a_wrong_key_schema(
    api: Api, clean_moto: MotoServer
) -> None:
    """Keys named otherwise are the key schema blocker."""
    create_bigsegment_table(clean_moto.endpoint_url, TABLE, key_schema="wrong_names")
    ran = await run(api, "preflight", *dynamodb_args(clean_moto), "--format", "json")
    assert ran.code == 1
    assert "key schema" in blockers(ran)
    assert "namespace (S)" in finding(ran, "key schema")["action"]


@pytest.mark.usefixtures("aws_env")
async def test_preflight_fails_on_a_missing_table(
    api: Api, clean_moto: MotoServer
) -> None:
    """No table is the table blocker."""
    ran = await run(api, "preflight", *dynamodb_args(clean_moto), "--format", "json")
    assert ran.code == 1
    assert blockers(ran) == {"table"}
    assert "does not exist" in finding(ran, "table")["message"]


@pytest.mark.usefixtures("aws_env")
async def test_preflight_fails_on_a_metadata_item_under_the_prefix(
    api: Api, clean_moto: MotoServer
) -> None:
    """Another writer's metadata item is the prefix blocker."""
    create_bigsegment_table(clean_moto.endpoint_url, TABLE)
    put_metadata(clean_moto.endpoint_url, TABLE, PREFIX, 1_700_000_000_000)
    ran = await run(api, "preflight", *dynamodb_args(clean_moto), "--format", "json")
    assert ran.code == 1
    assert blockers(ran) == {"prefix"}


# -- create ----------------------------------------------------------------------


def create_args(server: RedisServer, password_env: str, *extra: str) -> list[str]:
    """`create` of a Redis store with a password, and `extra`."""
    return [
        "create",
        *redis_args(server, "--password-env", password_env),
        "--name",
        "Onboarded store",
        "--tag",
        "onboarding",
        "--tag",
        "team-a",
        "--on",
        *extra,
    ]


async def test_create_without_apply_sends_nothing(
    api: Api, redis_password: RedisServer, password_env: str
) -> None:
    """The request is printed, password masked, and no POST is made."""
    ran = await run(api, *create_args(redis_password, password_env))
    assert ran.code == 0, ran.out + ran.err
    assert api.sim.stats.count("create_integration") == 0
    assert "nothing sent" in ran.out
    assert "POST " in ran.out
    assert "/big-segment-store/web/staging/redis" in ran.out
    assert "LD-API-Version: beta" in ran.out
    assert '"password": "[REDACTED]"' in ran.out
    assert REDIS_PASSWORD not in ran.out + ran.err
    as_json = await run(
        api, *create_args(redis_password, password_env, "--format", "json")
    )
    doc = as_json.json()
    assert doc["sent"] is False
    assert doc["request"]["body"] == {
        "name": "Onboarded store",
        "config": {
            "host": redis_password.host,
            "port": str(redis_password.client_port),
            "password": "[REDACTED]",
            "tlsEnabled": False,
        },
        "on": True,
        "tags": ["onboarding", "team-a"],
    }
    assert api.sim.stats.count("create_integration") == 0


@pytest.mark.usefixtures("writer")
async def test_create_apply_sends_one_post(
    api: Api, redis_password: RedisServer, password_env: str
) -> None:
    """One POST, beta header, the write token, a body that fits the OpenAPI slice."""
    seen: list[tuple[dict[str, str], Any]] = []
    original = api.sim._handlers["create_integration"]

    async def spy(request: Any) -> Any:
        seen.append((dict(request.headers), json.loads(await request.read())))
        return await original(request)

    api.sim._handlers["create_integration"] = spy
    ran = await run(api, *create_args(redis_password, password_env, "--apply"))
    assert ran.code == 0, ran.out + ran.err
    assert api.sim.stats.count("create_integration") == 1
    assert api.sim.stats.count("create_integration", 201) == 1
    [(headers, body)] = seen
    assert headers["LD-API-Version"] == "beta"
    assert headers["Authorization"] == WRITE_TOKEN
    Draft4Validator(
        {
            "$ref": f"{SPEC_URI}#/components/schemas/IntegrationDeliveryConfigurationPost"
        },
        registry=REGISTRY,
    ).validate(body)
    assert body["config"]["password"] == REDIS_PASSWORD
    assert body["config"]["port"] == str(redis_password.client_port)
    assert "created redis integration" in ran.out
    assert REDIS_PASSWORD not in ran.out + ran.err
    assert WRITE_TOKEN not in ran.out + ran.err
    created = [i for i in api.sim.integrations.values() if i.name == "Onboarded store"]
    assert len(created) == 1
    assert created[0].version == 1


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [
        (400, 2, "config.port must be a string"),
        (403, 2, "createIntegration"),
        (409, 1, "already exists"),
        (429, 1, "rate limited"),
    ],
)
@pytest.mark.usefixtures("writer")
async def test_create_refusals_have_their_message_and_exit_code(  # noqa: PLR0917 -- fixtures and parameters
    api: Api,
    redis_plain: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    code: int,
    text: str,
) -> None:
    """400 (the API's own text), 403 (the permission), 409, 429 (past patience)."""
    if status == 400:
        api.sim.faults.fail_next(
            400,
            endpoint="create_integration",
            body={"code": "invalid_request", "message": "config.port must be a string"},
        )
    elif status == 403:
        monkeypatch.setenv("LD_API_WRITER_TOKEN", READ_TOKEN + "-other")
        api.sim.forbidden_tokens.add(READ_TOKEN + "-other")
    elif status == 409:
        api.sim.add_integration(
            PROJECT, ENVIRONMENT, "redis", name="Onboarded store", on=False
        )
    else:
        api.sim.faults.fail_next(
            429, endpoint="create_integration", headers={"Retry-After": "3600"}
        )
    ran = await run(
        api,
        "create",
        *redis_args(redis_plain),
        "--name",
        "Onboarded store",
        "--apply",
    )
    assert ran.code == code, ran.out + ran.err
    assert text in ran.err
    assert api.sim.stats.count("create_integration") == 1
    assert WRITE_TOKEN not in ran.out + ran.err


@pytest.mark.usefixtures("writer")
async def test_create_waits_out_a_short_429(api: Api, redis_plain: RedisServer) -> None:
    """A 429 asking for a second is honoured, then the POST succeeds."""
    api.sim.faults.fail_next(
        429, endpoint="create_integration", headers={"Retry-After": "1"}
    )
    ran = await run(
        api, "create", *redis_args(redis_plain), "--name", "After 429", "--apply"
    )
    assert ran.code == 0, ran.out + ran.err
    assert "waiting" in ran.err
    assert api.sim.stats.count("create_integration", 429) == 1
    assert api.sim.stats.count("create_integration", 201) == 1


async def test_create_apply_without_a_write_token_is_bad_input(
    api: Api, redis_plain: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No LD_API_WRITER_TOKEN: exit 2, nothing sent, the read token never used."""
    monkeypatch.delenv("LD_API_WRITER_TOKEN", raising=False)
    ran = await run(api, "create", *redis_args(redis_plain), "--name", "x", "--apply")
    assert ran.code == 2
    assert "LD_API_WRITER_TOKEN" in ran.err
    assert api.sim.stats.total() == 0


async def test_create_does_not_send_when_not_ready(
    api: Api, redis_plain: RedisServer, writer: None
) -> None:
    """A blocker stops --apply before anything is sent."""
    with redis_plain.admin() as admin:
        admin.set(redis_synchronized_on_key(PREFIX), "1700000000000")
    ran = await run(api, "create", *redis_args(redis_plain), "--name", "x", "--apply")
    assert ran.code == 1
    assert "not sent" in ran.err
    assert api.sim.stats.count("create_integration") == 0


# -- create --wait ---------------------------------------------------------------


@pytest.mark.usefixtures("writer")
async def test_create_wait_reports_the_time_to_first_sync(
    api: Api, redis_password: RedisServer, password_env: str
) -> None:
    """The simulated first sync lands in the store and the API: time reported."""
    api.sim.first_sync.enable(delay=0.5)
    ran = await run(
        api,
        *create_args(redis_password, password_env, "--apply", "--wait"),
        "--timeout",
        "20s",
    )
    assert ran.code == 0, ran.out + ran.err
    assert "first sync landed" in ran.out
    with redis_password.admin() as admin:
        assert admin.get(redis_synchronized_on_key(PREFIX)) is not None
        # The environment's big segment memberships land with the marker.
        include = redis_include_key(PREFIX, context_hash(FIRST_SYNC_CONTEXT_KEY))
        assert admin.smembers(include) == {b"beta-users.g1"}
    doc_run = await run(
        api,
        "create",
        *redis_args(redis_password, "--password-env", password_env),
        "--name",
        "Second",
        "--format",
        "json",
    )
    # The store now holds the new integration's marker: a second one is refused.
    assert doc_run.code == 1
    preflight = doc_run.json()["preflight"]
    assert [f["check"] for f in preflight["findings"] if f["level"] == "blocker"] == [
        "prefix"
    ]
    assert "Onboarded store" in str(preflight["findings"])


@pytest.mark.usefixtures("writer", "aws_env")
async def test_create_wait_for_dynamodb(
    api: Api, clean_moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DynamoDB first sync (metadata item) is seen too; JSON has the seconds.

    The preflight reads the table through the role, as LaunchDarkly would."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", clean_moto.endpoint_url)
    create_bigsegment_table(clean_moto.endpoint_url, TABLE)
    api.sim.first_sync.enable(delay=0.2, dynamodb_endpoint_url=clean_moto.endpoint_url)
    ran = await run(
        api,
        "create",
        *dynamodb_args(clean_moto, "--role-arn", ROLE_ARN),
        "--name",
        "Onboarded table",
        "--apply",
        "--wait",
        "--timeout",
        "20s",
        "--format",
        "json",
    )
    assert ran.code == 0, ran.out + ran.err
    doc = ran.json()
    assert doc["wait"]["synced"] is True
    assert doc["wait"]["seconds"] >= 0.2
    assert doc["request"]["body"]["config"] == {
        "tableName": TABLE,
        "region": "us-east-1",
        "roleArn": ROLE_ARN,
    }
    assert "externalId" in doc["integration"]["config"]


@pytest.mark.usefixtures("writer")
async def test_create_wait_times_out_without_a_sync(
    api: Api, redis_plain: RedisServer
) -> None:
    """No first sync: non-zero exit, the reason, and the usual causes."""
    ran = await run(
        api,
        "create",
        *redis_args(redis_plain),
        "--name",
        "Never synced",
        "--apply",
        "--wait",
        "--timeout",
        "2s",
    )
    assert ran.code == 1
    assert "no first sync within 2s" in ran.err
    assert f"no sync marker at {PREFIX}:big_segments_synchronized_on" in ran.err
    assert "no lastSync" in ran.err
    assert "firewall" in ran.err
    assert api.sim.stats.count("create_integration", 201) == 1

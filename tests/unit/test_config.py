"""Configuration: loading, references and every error path by field path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import (
    Config,
    ConfigError,
    RedisTarget,
    load_config,
    parse_config,
    parse_duration,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "ld-store-monitor.example.yaml"
ENV = {"LD_API_TOKEN": "api-token-value", "REDIS_PASSWORD": "redis-secret"}


def problems_of(
    raw: Any, env: dict[str, str] | None = None, base: Path | None = None
) -> list[str]:
    """The problems parse_config reports for `raw`."""
    with pytest.raises(ConfigError) as info:
        parse_config(raw, ENV if env is None else env, base)
    return list(info.value.problems)


def test_example_config_loads_with_its_defaults() -> None:
    """The shipped example is valid and carries the documented defaults."""
    config = load_config(EXAMPLE, env=ENV)
    assert config.api.base_url == "https://app.launchdarkly.com"
    assert config.api.interval == 60.0
    assert config.probe.stale_after == 120.0
    assert config.server.listen == "0.0.0.0:9725"
    assert config.api.token is not None
    assert config.api.token.get_secret_value() == "api-token-value"
    credential = config.credential_for("abc", "web", "production")
    assert credential is not None
    assert credential.redis is not None
    assert credential.redis.password is not None
    assert credential.redis.password.get_secret_value() == "redis-secret"


def test_empty_config_uses_ld_api_token_from_environment() -> None:
    """With no api.token, LD_API_TOKEN supplies it."""
    config = parse_config({}, {"LD_API_TOKEN": "from-env"})
    assert config.api.token is not None
    assert config.api.token.get_secret_value() == "from-env"


def test_missing_token_is_reported_with_its_remedy() -> None:
    """No token anywhere is an error that says where a token can come from."""
    assert problems_of({}, env={}) == [
        "api.token: no API token: set LD_API_TOKEN, api.token or api.token_file"
    ]


def test_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    """token_file's content, without the trailing newline, is the token."""
    (tmp_path / "token").write_text("file-token\n")
    config = parse_config({"api": {"token_file": "token"}}, {}, tmp_path)
    assert config.api.token is not None
    assert config.api.token.get_secret_value() == "file-token"
    assert config.api.token_file == tmp_path / "token"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"api": {"interval": "5x"}},
            "api.interval: invalid duration '5x': use e.g. 30s, 5m, 1h, 250ms",
        ),
        ({"api": {"interval": "0s"}}, "api.interval: Input should be greater than 0"),
        (
            {"api": {"base_url": "ftp://x"}},
            "api.base_url: invalid URL 'ftp://x': expected http(s)://host",
        ),
        ({"api": {"timeout": "2m"}}, "api: timeout must be shorter than interval"),
        (
            {"probe": {"interval": "1s", "timeout": "2s"}},
            "probe: timeout must be shorter than interval",
        ),
        (
            {"probe": {"concurrency": 0}},
            "probe.concurrency: Input should be greater than or equal to 1",
        ),
        (
            {"server": {"listen": "nope"}},
            "server.listen: invalid listen address 'nope': use HOST:PORT",
        ),
        (
            {"logging": {"format": "xml"}},
            "logging.format: Input should be 'auto', 'json' or 'console'",
        ),
        ({"bogus": 1}, "bogus: Extra inputs are not permitted"),
        (
            {"credentials": [{"match": {}}]},
            "credentials.0.match: give integration_id, or project and/or environment globs",
        ),
        (
            {
                "credentials": [
                    {"match": {"project": "*"}, "redis": {"tls": {"ca_file": "x"}}}
                ]
            },
            "credentials.0.redis.tls.ca_file: no readable file at {tmp}/x",
        ),
        (
            {
                "credentials": [
                    {"match": {"project": "*"}, "dynamodb": {"external_id": "e"}}
                ]
            },
            "credentials.0.dynamodb: external_id needs role_arn",
        ),
        (
            {"targets": [{"kind": "redis", "name": "a", "url": "http://h"}]},
            "targets.0.url: invalid URL: scheme must be redis:// or rediss://, got 'http'",
        ),
        (
            {"targets": [{"kind": "dynamodb", "name": "d", "table": "tbl"}]},
            "targets.0.region: Field required",
        ),
        (
            {"targets": [{"kind": "memcached", "name": "m"}]},
            "targets.0: Input tag 'memcached' found using 'kind' does not match any of the expected tags: 'redis', 'dynamodb'",
        ),
        (
            {
                "targets": [
                    {"kind": "redis", "name": "a", "url": "redis://h"},
                    {"kind": "redis", "name": "a", "url": "redis://g"},
                ]
            },
            "(top level): target names must be unique: a",
        ),
        (
            {"api": {"enabled": False}},
            "(top level): nothing to monitor: the API is disabled and no targets are set",
        ),
    ],
)
def test_each_invalid_field_is_reported_by_path(
    raw: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    """Every validation rule names the field path and the problem."""
    assert problems_of(raw, base=tmp_path) == [expected.replace("{tmp}", str(tmp_path))]


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    """A config with several problems reports all of them, not the first only."""
    raw = {
        "api": {"token": "literal-token", "interval": "soon"},
        "probe": {"concurrency": -1},
        "targets": [
            {"kind": "redis", "name": "r", "url": "redis://:${UNSET_PASSWORD}@h"}
        ],
        "extra": True,
    }
    problems = problems_of(raw, env={}, base=tmp_path)
    assert problems == [
        "api.token: secrets must be given by reference (${VAR} or token_file), not inline",
        "targets.0.url: environment variable UNSET_PASSWORD is not set",
        "api.interval: invalid duration 'soon': use e.g. 30s, 5m, 1h, 250ms",
        "probe.concurrency: Input should be greater than or equal to 1",
        "extra: Extra inputs are not permitted",
    ]


def test_unset_variable_is_named() -> None:
    """An unset ${VAR} is an error naming the variable and the field."""
    assert problems_of({"api": {"base_url": "https://${LD_HOST}"}}) == [
        "api.base_url: environment variable LD_HOST is not set",
        "api.base_url: invalid URL 'https://': expected http(s)://host",
    ]


def test_inline_passwords_are_refused() -> None:
    """Passwords must be references; a literal one is refused, also inside URLs."""
    raw = {
        "credentials": [{"match": {"project": "*"}, "redis": {"password": "hunter2"}}],
        "targets": [{"kind": "redis", "name": "r", "url": "redis://u:hunter2@h:6379"}],
    }
    assert problems_of(raw) == [
        "credentials.0.redis.password: secrets must be given by reference (${VAR} or password_file), not inline",
        "targets.0.url: the password in a URL must be a ${VAR} reference, not inline",
    ]


def test_password_and_password_file_together_are_refused(tmp_path: Path) -> None:
    """Two sources for one password is ambiguous and refused."""
    (tmp_path / "pw").write_text("x")
    raw = {
        "credentials": [
            {
                "match": {"project": "*"},
                "redis": {"password": "${REDIS_PASSWORD}", "password_file": "pw"},
            }
        ]
    }
    assert problems_of(raw, base=tmp_path) == [
        "credentials.0.redis: set either password or password_file, not both"
    ]


def test_missing_and_empty_secret_files_are_reported(tmp_path: Path) -> None:
    """A *_file that does not exist, or is empty, is an error at its path."""
    (tmp_path / "empty").write_text("\n")
    raw = {
        "api": {"token_file": "empty"},
        "credentials": [
            {"match": {"project": "*"}, "redis": {"password_file": "missing"}}
        ],
    }
    assert problems_of(raw, env={}, base=tmp_path) == [
        f"credentials.0.redis.password_file: no readable file at {tmp_path}/missing",
        "api.token_file: the file is empty",
    ]


def test_url_password_reference_moves_out_of_the_url() -> None:
    """A static target's URL password is held as a secret, never in the URL string."""
    raw = {
        "targets": [
            {"kind": "redis", "name": "r", "url": "rediss://mon:${PW}@h:6380/0"}
        ]
    }
    config = parse_config(raw, {**ENV, "PW": "p@ss/word"})
    target = config.targets[0]
    assert isinstance(target, RedisTarget)
    assert target.url == "rediss://mon@h:6380/0"
    assert target.username == "mon"
    assert target.password is not None
    assert target.password.get_secret_value() == "p@ss/word"
    assert "p@ss" not in repr(config)
    assert config.secrets() == frozenset({"api-token-value", "p@ss/word"})


def test_dollar_dollar_is_a_literal_dollar() -> None:
    """`$$` escapes a dollar sign, so values may contain `${` literally."""
    config = parse_config(
        {"targets": [{"kind": "redis", "name": "$${x}", "url": "redis://h"}]}, ENV
    )
    assert config.targets[0].name == "${x}"


def test_credential_matching_is_first_match_by_id_or_glob() -> None:
    """credential_for returns the first entry whose id or globs match."""
    config = parse_config(
        {
            "credentials": [
                {"match": {"integration_id": "id-1"}, "redis": {"username": "one"}},
                {
                    "match": {"project": "web-*", "environment": "prod*"},
                    "redis": {"username": "two"},
                },
                {"match": {"project": "*"}, "redis": {"username": "three"}},
            ]
        },
        ENV,
    )

    def user(integration_id: str, project: str, environment: str) -> str | None:
        credential = config.credential_for(integration_id, project, environment)
        assert credential is not None
        assert credential.redis is not None
        return credential.redis.username

    assert user("id-1", "other", "x") == "one"
    assert user("id-2", "web-shop", "production") == "two"
    assert user("id-2", "web-shop", "staging") == "three"


def test_filters_include_and_exclude_globs() -> None:
    """An integration is kept when an include glob matches and no exclude glob does."""
    config = parse_config(
        {
            "filters": {
                "include": [{"project": "web*"}],
                "exclude": [{"environment": "sandbox-*"}],
            }
        },
        ENV,
    )
    assert config.filters.keeps("web", "production")
    assert not config.filters.keeps("mobile", "production")
    assert not config.filters.keeps("web", "sandbox-1")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("250ms", 0.25),
        (12, 12.0),
        ("1.5s", 1.5),
    ],
)
def test_durations_parse_to_seconds(value: object, seconds: float) -> None:
    """Durations accept units and plain numbers."""
    assert parse_duration(value) == seconds


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    """Broken YAML is reported with its position, not a traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text("api:\n  interval: [1,\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("(yaml): line 3, column 1:")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    """A YAML list at the top is refused clearly."""
    assert problems_of(["a"]) == ["(top level): expected a mapping, got list"]


def run_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=60,
    )


def test_validate_config_exits_0_on_a_good_file() -> None:
    """validate-config on the example prints OK and exits 0."""
    result = run_cli("validate-config", "--config", str(EXAMPLE), env=ENV)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_validate_config_exits_2_listing_every_problem(tmp_path: Path) -> None:
    """validate-config prints each problem as `field.path: message`, exits 2, no traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump({"api": {"interval": "x"}, "probe": {"timeout": "1h"}})
    )
    result = run_cli(
        "validate-config", "--config", str(path), env={"LD_API_TOKEN": "t"}
    )
    assert result.returncode == 2
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert lines == [
        f"{path}: invalid configuration",
        "api.interval: invalid duration 'x': use e.g. 30s, 5m, 1h, 250ms",
        "probe: timeout must be shorter than interval",
    ]
    assert "Traceback" not in result.stderr


def test_validate_config_on_a_missing_file_exits_2(tmp_path: Path) -> None:
    """A config path that does not exist is a config error, exit 2."""
    result = run_cli("validate-config", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_config_models_are_frozen() -> None:
    """Config objects cannot be changed after loading."""
    config: Config = parse_config({}, ENV)
    with pytest.raises(ValueError, match="frozen"):
        config.api.interval = 1  # the point of the test


def test_unset_token_variable_is_reported_once() -> None:
    """An unset ${LD_API_TOKEN} is one problem, not also "the token is empty"."""
    assert problems_of({"api": {"token": "${LD_API_TOKEN}"}}, env={}) == [
        "api.token: environment variable LD_API_TOKEN is not set"
    ]

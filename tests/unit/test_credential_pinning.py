"""Credentials go only where they belong; ids cannot collide; risky but valid
configurations are warned about, broken tokens refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import ConfigError, load_config, parse_config
from monitor.config.hygiene import config_warnings
from monitor.launchdarkly.discovery import DiscoveredIntegration
from monitor.targets import RedisEndpoint, resolve_targets
from tests.support.targets import discovered_redis

ENV = {"LD_API_TOKEN": "t", "PW": "pinned-secret"}


def item(
    integration_id: str = "0123456789abcdef01234567",
    host: str = "evil.example.com",
    port: int = 6379,
) -> DiscoveredIntegration:
    """A discovered Redis integration in web/production at host:port."""
    return discovered_redis(
        integration_id,
        host=host,
        port=port,
        username=None,
        cid="cid",
        environment="production",
    )


def credentials(**redis: Any) -> dict[str, Any]:
    """One glob-matched credential entry with a password and `redis` settings."""
    return {
        "credentials": [
            {
                "match": {"project": "*", "environment": "production"},
                "redis": {"username": "ldmon", "password": "${PW}", **redis},
            }
        ]
    }


def resolve(raw: dict[str, Any], *items: DiscoveredIntegration) -> list[Any]:
    """resolve_targets over a config built from `raw`."""
    return list(resolve_targets(items, parse_config(raw, ENV)))


@pytest.mark.parametrize(
    ("host", "port"),
    [("evil.example.com", 6379), ("redis.internal.evil.com", 6379), ("10.0.0.5", 6380)],
)
def test_a_host_outside_the_patterns_gets_no_credential(host: str, port: int) -> None:
    """M6: the credential is withheld, the target says why and is never probed."""
    raw = credentials(hosts=["*.redis.internal", "10.0.0.*:6379"])
    [target] = resolve(raw, item(host=host, port=port))
    assert target.credential_withheld
    assert not target.probeable
    assert target.problem.startswith("credential withheld")
    assert target.endpoint == RedisEndpoint(host=host, port=port)


@pytest.mark.parametrize(
    ("host", "port"),
    [("a.redis.internal", 6379), ("A.REDIS.INTERNAL", 6380), ("10.0.0.5", 6379)],
)
def test_a_host_a_pattern_allows_gets_the_credential(host: str, port: int) -> None:
    """`host` or `host:port` globs, case-insensitive."""
    raw = credentials(hosts=["*.redis.internal", "10.0.0.*:6379"])
    [target] = resolve(raw, item(host=host, port=port))
    assert not target.credential_withheld
    assert target.probeable
    assert isinstance(target.endpoint, RedisEndpoint)
    assert target.endpoint.password is not None


def test_address_pins_by_itself() -> None:
    """With `address`, the monitor connects there, never to the API's host."""
    raw = credentials(address="redis.internal:7000", hosts=["nothing.matches"])
    [target] = resolve(raw, item(host="evil.example.com"))
    assert target.probeable
    assert not target.credential_withheld
    assert isinstance(target.endpoint, RedisEndpoint)
    assert (target.endpoint.host, target.endpoint.port) == ("redis.internal", 7000)


def test_without_hosts_the_credential_follows_the_api() -> None:
    """No pin: as before (validate-config warns about it)."""
    [target] = resolve(credentials(), item(host="evil.example.com"))
    assert target.probeable
    assert not target.credential_withheld


def test_an_empty_hosts_list_is_refused() -> None:
    """`hosts: []` would withhold everything silently: a config error."""
    with pytest.raises(ConfigError, match="hosts"):
        parse_config(credentials(hosts=[]), ENV)


def test_an_integration_named_like_a_static_target_gets_its_own_id() -> None:
    """L2: an API `_id` equal to a static target's name never shares its
    record or series: it becomes `api:<id>`, is not probed and says why."""
    raw = {
        "targets": [{"kind": "redis", "name": "relay", "url": "redis://127.0.0.1:1/0"}]
    }
    api, static = resolve(raw, item(integration_id="relay", host="127.0.0.1"))
    assert (static.id, static.source) == ("relay", "static")
    assert static.labels.integration_id == "relay"
    assert static.probeable
    assert api.id == "api:relay"
    assert api.labels.integration_id == "api:relay"
    assert not api.probeable
    assert "static target 'relay'" in api.problem


# -- configuration hygiene ----------------------------------------------------


def test_an_unpinned_glob_credential_is_warned_about() -> None:
    """A password that goes wherever the API says: a warning naming the entry."""
    [warning] = config_warnings(parse_config(credentials(), ENV))
    assert warning.startswith(
        "credentials.0.redis: matched by project/environment glob"
    )
    assert "hosts:" in warning
    assert config_warnings(parse_config(credentials(hosts=["*.internal"]), ENV)) == []
    assert config_warnings(parse_config(credentials(address="r.internal"), ENV)) == []


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://ld-proxy.example.com", True),
        ("https://app.launchdarkly.com", False),
        ("http://127.0.0.1:8080", False),
        ("http://localhost:8080", False),
    ],
)
def test_a_cleartext_api_url_is_warned_about(url: str, warned: bool) -> None:
    """L10: http:// to anything but the loopback sends the token in cleartext."""
    warnings = config_warnings(parse_config({"api": {"base_url": url}}, ENV))
    assert bool([w for w in warnings if w.startswith("api.base_url")]) == warned


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        (0o600, None),
        (0o640, None),
        (0o644, "readable by every user"),
        (0o666, "writable by every user"),
    ],
)
def test_a_token_file_others_can_read_is_warned_about(
    tmp_path: Path, mode: int, said: str | None
) -> None:
    """L10: a secret file open to every user of the machine."""
    token = tmp_path / "token"
    token.write_text("api-token-from-file\n")
    token.chmod(mode)
    config = parse_config({"api": {"token_file": str(token)}}, {})
    warnings = config_warnings(config)
    if said is None:
        assert warnings == []
    else:
        [warning] = warnings
        assert warning.startswith("api.token_file:")
        assert said in warning
        assert "api-token-from-file" not in warning


def test_a_token_with_a_line_break_is_refused(tmp_path: Path) -> None:
    """L10: a token file of two lines can never be sent as a header: a config
    error at validation, naming the field, never the token."""
    token = tmp_path / "token"
    token.write_text("first-half-of-token\nsecond-half\n")
    with pytest.raises(ConfigError) as caught:
        parse_config({"api": {"token_file": str(token)}}, {})
    [problem] = caught.value.problems
    assert problem.startswith("api.token: the token holds a line break")
    assert "half" not in problem
    with pytest.raises(ConfigError):
        parse_config({}, {"LD_API_TOKEN": "tok\ren"})


def test_validate_config_prints_warnings_and_still_exits_0(tmp_path: Path) -> None:
    """The warnings go to stderr; the file is valid, so the exit code is 0."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(credentials()))
    config = load_config(path, ENV)
    assert config.credentials
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "validate-config", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **ENV},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert "warning: credentials.0.redis: matched by project/environment glob" in (
        result.stderr
    )
    assert "pinned-secret" not in result.stderr + result.stdout

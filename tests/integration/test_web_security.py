"""Secured endpoints: the exporter-toolkit web config (TLS, mTLS, basic auth,
headers) and the status routes off or on a listener of their own.

A real daemon in-process, reached over real TLS with the test CA
(devtools/servers/tls.py); the CLI as a subprocess for exit codes.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
import yaml
from structlog.testing import capture_logs

from devtools.servers.tls import TlsCertSet
from monitor.config import ConfigError, load_config
from monitor.daemon import Daemon
from monitor.log import Redactor
from tests.support.daemon import ROOT

USER = "prometheus"
PASSWORD = "scrape-password-4711"
HSTS = "max-age=31536000"


def password_hash(password: str = PASSWORD) -> str:
    """A bcrypt hash (cost 4: the format is the same, the tests stay fast)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def write_config(directory: Path, **server: Any) -> Path:
    """A config watching one static target (unreachable: its probes just fail)."""
    path = directory / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "api": {"enabled": False},
                "probe": {"interval": "10s", "timeout": "1s"},
                "targets": [
                    {"kind": "redis", "name": "store", "url": "redis://127.0.0.1:1"}
                ],
                "server": {"listen": "127.0.0.1:0", **server},
            }
        )
    )
    return path


def web_config(
    certs: TlsCertSet, *, client_auth: str | None = None, users: bool = True
) -> dict[str, Any]:
    """A web config as node_exporter reads it: TLS, basic auth, a header."""
    tls: dict[str, Any] = {
        "cert_file": str(certs.server.cert_file),
        "key_file": str(certs.server.key_file),
        "min_version": "TLS12",
    }
    if client_auth:
        tls |= {
            "client_auth_type": client_auth,
            "client_ca_file": str(certs.ca.cert_file),
        }
    document: dict[str, Any] = {
        "tls_server_config": tls,
        "http_server_config": {"headers": {"Strict-Transport-Security": HSTS}},
    }
    if users:
        document["basic_auth_users"] = {USER: password_hash()}
    return document


def client_context(certs: TlsCertSet, *, client_cert: bool = False) -> ssl.SSLContext:
    """Trusts the test CA; with `client_cert`, shows the client certificate."""
    context = ssl.create_default_context(cafile=str(certs.ca.cert_file))
    if client_cert:
        context.load_cert_chain(str(certs.client.cert_file), str(certs.client.key_file))
    return context


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session."""
    async with aiohttp.ClientSession() as client:
        yield client


async def get(
    session: aiohttp.ClientSession,
    url: str,
    *,
    context: ssl.SSLContext | None = None,
    auth: str | None = None,
) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of a GET on a fresh connection."""
    async with session.get(
        url,
        ssl=context if context is not None else False,
        headers={"Connection": "close", **({"Authorization": auth} if auth else {})},
    ) as response:
        return response.status, dict(response.headers), await response.text()


def basic(user: str, password: str) -> str:
    """An Authorization header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


AUTH = basic(USER, PASSWORD)


async def test_https_with_basic_auth_and_headers(
    tmp_path: Path, tls_certs: TlsCertSet, session: aiohttp.ClientSession
) -> None:
    """401 + WWW-Authenticate without credentials, 200 with them, over HTTPS; headers added."""
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump(web_config(tls_certs)))
    config = write_config(tmp_path, web_config_file=str(web))
    context = client_context(tls_certs)
    async with Daemon(load_config(config), Redactor(), config_path=config) as daemon:
        base = f"https://localhost:{daemon.port}"
        status, headers, _ = await get(session, f"{base}/metrics", context=context)
        assert status == 401
        assert headers["WWW-Authenticate"] == "Basic"
        assert headers["Strict-Transport-Security"] == HSTS
        wrong = basic(USER, "not-it")
        assert (await get(session, f"{base}/metrics", context=context, auth=wrong))[
            0
        ] == 401
        unknown = basic("nobody", PASSWORD)
        assert (await get(session, f"{base}/metrics", context=context, auth=unknown))[
            0
        ] == 401
        status, headers, body = await get(
            session, f"{base}/metrics", context=context, auth=AUTH
        )
        assert status == 200
        assert "ld_store_probe_up" in body
        assert headers["Strict-Transport-Security"] == HSTS
        # Twice: the second check is answered from the cache of verified pairs.
        assert (await get(session, f"{base}/status", context=context, auth=AUTH))[
            0
        ] == 200
        # The kubelet's probes need no credentials.
        assert (await get(session, f"{base}/-/healthy", context=context))[0] == 200
        # Plain HTTP on the TLS port gets no answer.
        with pytest.raises(aiohttp.ClientError):
            await get(session, f"http://127.0.0.1:{daemon.port}/metrics")


async def test_mutual_tls_rejects_a_client_without_a_certificate(
    tmp_path: Path, tls_certs: TlsCertSet, session: aiohttp.ClientSession
) -> None:
    """RequireAndVerifyClientCert: no certificate, no connection; the CA's client certificate works."""
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump(
            web_config(tls_certs, client_auth="RequireAndVerifyClientCert", users=False)
        )
    )
    config = write_config(tmp_path)
    async with Daemon(
        load_config(config), Redactor(), config_path=config, web_config_file=web
    ) as daemon:
        url = f"https://localhost:{daemon.port}/metrics"
        with pytest.raises(aiohttp.ClientError):
            await get(session, url, context=client_context(tls_certs))
        status, _, _ = await get(
            session, url, context=client_context(tls_certs, client_cert=True)
        )
        assert status == 200


async def test_a_reload_serves_new_users_and_certificates(
    tmp_path: Path, tls_certs: TlsCertSet, session: aiohttp.ClientSession
) -> None:
    """A changed web config is served after the reload: new password, new certificate."""
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump(web_config(tls_certs)))
    config = write_config(tmp_path, web_config_file="web.yml")
    async with Daemon(load_config(config), Redactor(), config_path=config) as daemon:
        url = f"https://localhost:{daemon.port}/metrics"
        context = client_context(tls_certs)
        assert (await get(session, url, context=context, auth=AUTH))[0] == 200
        renewed = tls_certs.ca.issue("renewed", tmp_path / "renewed")
        document = web_config(tls_certs)
        document["tls_server_config"]["cert_file"] = str(renewed.cert_file)
        document["tls_server_config"]["key_file"] = str(renewed.key_file)
        document["basic_auth_users"] = {USER: password_hash("new-password")}
        web.write_text(yaml.safe_dump(document))
        await daemon._watch_step()  # the config-watch loop's step: web.yml changed
        assert daemon.state.config_reload_ok
        assert (await get(session, url, context=context, auth=AUTH))[0] == 401
        new_auth = basic(USER, "new-password")
        assert (await get(session, url, context=context, auth=new_auth))[0] == 200
        host, port = "localhost", daemon.port
        _, writer = await asyncio.open_connection(host, port, ssl=context)
        served = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        assert served == ssl.PEM_cert_to_DER_cert(renewed.cert_file.read_text())


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("tls_server_config: [unclosed", "(yaml)"),
        ("basic_auth_users: {prometheus: plain-text}", "basic_auth_users: Value error"),
        (
            "tls_server_config: {cert_file: missing.crt, key_file: missing.key}",
            "no readable file",
        ),
        (
            "http_server_config: {unknown_key: 1}",
            "http_server_config.unknown_key: Extra inputs are not permitted",
        ),
    ],
    ids=["yaml", "hash", "cert", "unknown-key"],
)
async def test_a_broken_web_config_is_rejected_on_reload(
    tmp_path: Path,
    session: aiohttp.ClientSession,
    content: str,
    problem: str,
) -> None:
    """The old web config stays in force; the reload is counted as failed."""
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {USER: password_hash()}}))
    config = write_config(tmp_path, web_config_file="web.yml")
    async with Daemon(load_config(config), Redactor(), config_path=config) as daemon:
        web.write_text(content)
        with capture_logs() as logs:
            assert not daemon.reload("test")
        [failure] = [e for e in logs if e["event"] == "config.reload_failed"]
        assert any(
            problem.removesuffix(": Value error") in p for p in failure["problems"]
        )
        url = f"http://127.0.0.1:{daemon.port}/metrics"
        assert (await get(session, url))[0] == 401
        status, _, body = await get(session, url, auth=AUTH)
        assert status == 200
        assert "ld_store_config_last_reload_successful 0.0" in body


async def test_status_routes_on_their_own_listener(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """server.status_listen: /status and / answer there and 404 on the main port."""
    config = write_config(tmp_path, status_listen="127.0.0.1:0")
    async with Daemon(load_config(config), Redactor()) as daemon:
        assert daemon.status_port is not None
        assert daemon.status_port != daemon.port
        main = f"http://127.0.0.1:{daemon.port}"
        status = f"http://127.0.0.1:{daemon.status_port}"
        for path in ("/status", "/", "/probe?integration_id=store"):
            assert (await get(session, main + path))[0] == 404, path
        assert (await get(session, status + "/status"))[0] == 200
        assert (await get(session, status + "/"))[0] == 200
        assert (await get(session, status + "/metrics"))[0] == 404
        assert (await get(session, main + "/metrics"))[0] == 200
        assert (await get(session, main + "/-/healthy"))[0] == 200


async def test_status_routes_turned_off(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """server.status_enabled false: the page, /status and /probe are 404; /metrics stays."""
    config = write_config(tmp_path, status_enabled=False)
    async with Daemon(load_config(config), Redactor()) as daemon:
        base = f"http://127.0.0.1:{daemon.port}"
        for path in ("/status", "/", "/probe?integration_id=store"):
            assert (await get(session, base + path))[0] == 404, path
        assert (await get(session, base + "/metrics"))[0] == 200
        assert daemon.status_port is None


async def test_the_daemon_refuses_a_broken_web_config(tmp_path: Path) -> None:
    """Constructing the daemon with an unusable web config raises ConfigError."""
    web = tmp_path / "web.yml"
    web.write_text(
        "tls_server_config: {cert_file: nope.crt, key_file: nope.key, typo: 1}"
    )
    config = write_config(tmp_path)
    with pytest.raises(ConfigError) as caught:
        Daemon(load_config(config), Redactor(), web_config_file=web)
    assert any("tls_server_config.typo" in p for p in caught.value.problems)


@pytest.mark.parametrize("by", ["flag", "config"])
async def test_run_exits_2_on_a_broken_web_config(tmp_path: Path, by: str) -> None:
    """`run --web.config.file` (or server.web_config_file) with an unknown key: exit 2, the field named."""
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump({"basic_auth_users": {USER: password_hash()}, "tls_config": {}})
    )
    if by == "flag":
        config, extra = write_config(tmp_path), ["--web.config.file", str(web)]
    else:
        config, extra = write_config(tmp_path, web_config_file="web.yml"), []
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--config", str(config), *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    text = stderr.decode()
    assert "tls_config: Extra inputs are not permitted" in text
    assert str(web) in text

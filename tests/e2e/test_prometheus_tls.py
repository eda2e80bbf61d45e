"""The real Prometheus scrapes a daemon secured by a web config (TLS, basic auth).

The daemon runs `--web.config.file` with a certificate from the test CA and
one bcrypt user; Debian's Prometheus scrapes it with the matching
`scrape_config` (`scheme: https`, `tls_config.ca_file`, `basic_auth`), and
the target must be up.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bcrypt
import yaml

from devtools.servers.ports import LOOPBACK, free_port
from devtools.servers.tls import TlsCertSet
from tests.support.processes import Service, http_get_ok, http_request, wait_for

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = "/usr/bin/prometheus"
USER = "prometheus"
PASSWORD = "scrape-password-e2e"


def test_prometheus_scrapes_over_https_with_basic_auth(
    tmp_path: Path, tls_certs: TlsCertSet
) -> None:
    """scheme https + ca_file + basic_auth: up == 1; without credentials the daemon says 401."""
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {
                    "cert_file": str(tls_certs.server.cert_file),
                    "key_file": str(tls_certs.server.key_file),
                },
                "basic_auth_users": {
                    USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
                },
            }
        )
    )
    daemon_port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "api": {"enabled": False},
                "probe": {"interval": "5s", "timeout": "1s"},
                "targets": [
                    {"kind": "redis", "name": "store", "url": "redis://127.0.0.1:1"}
                ],
                "server": {"listen": f"{LOOPBACK}:{daemon_port}"},
            }
        )
    )
    daemon = Service(
        "daemon",
        [sys.executable, "-m", "monitor", "run", "--config", str(config),
         "--web.config.file", str(web)],
        tmp_path / "daemon.log",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        cwd=ROOT,
    )  # fmt: skip
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    prometheus_config = tmp_path / "prometheus.yml"
    prometheus_config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "ld-store-monitor",
                        "scheme": "https",
                        "tls_config": {
                            "ca_file": str(tls_certs.ca.cert_file),
                            "server_name": "localhost",
                        },
                        "basic_auth": {
                            "username": USER,
                            "password_file": str(password_file),
                        },
                        "static_configs": [{"targets": [f"{LOOPBACK}:{daemon_port}"]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    prometheus = Service(
        "prometheus",
        [
            PROMETHEUS,
            f"--config.file={prometheus_config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--log.level=warn",
        ],
        tmp_path / "prometheus.log",
    )
    try:
        url = f"http://{LOOPBACK}:{port}"
        wait_for(
            lambda: http_get_ok(f"{url}/-/ready"), "Prometheus", alive=[prometheus]
        )

        def up() -> bool | None:
            status, body = http_request(
                f"{url}/api/v1/query?query=up%7Bjob%3D%22ld-store-monitor%22%7D"
            )
            if status != 200:
                return None
            result = yaml.safe_load(body)["data"]["result"]
            return True if result and result[0]["value"][1] == "1" else None

        wait_for(up, "the target to be up", alive=[prometheus, daemon])
        targets = yaml.safe_load(http_request(f"{url}/api/v1/targets")[1])
        (target,) = targets["data"]["activeTargets"]
        assert target["health"] == "up", target
        assert target["scrapeUrl"].startswith("https://")
    finally:
        prometheus.stop()
        daemon.stop()

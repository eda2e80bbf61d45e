"""Warnings about a valid configuration that is risky: shown by `validate-config`
and `check` (stderr) and logged by `run` (`config.warning`).

- a credential with a password, matched by project/environment globs, that is
  not pinned to hosts (`hosts:` or `address:`): LaunchDarkly names the host it
  is sent to, so whoever can edit an integration there can collect it;
- an `http://` API URL to a host other than the loopback: the token travels in
  cleartext;
- a secret file that every user of the machine may read or write.
"""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path
from urllib.parse import urlsplit

from monitor.config.models import Config, RedisTarget

LOOPBACK_NAMES = frozenset({"localhost"})


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _file_warning(where: str, path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # validation reports an unreadable file
    if mode & stat.S_IWOTH:
        return f"{where}: {path} is writable by every user (mode {mode & 0o777:04o})"
    if mode & stat.S_IROTH:
        return f"{where}: {path} is readable by every user (mode {mode & 0o777:04o})"
    return None


def config_warnings(config: Config) -> list[str]:
    """Every risky choice in `config`, as `where: what` lines."""
    warnings: list[str] = []
    for index, credential in enumerate(config.credentials):
        redis = credential.redis
        by_glob = (
            credential.match.project is not None
            or credential.match.environment is not None
        )
        if redis is not None and redis.password is not None and not redis.pinned:
            warnings.append(
                f"credentials.{index}.redis: "
                + ("matched by project/environment glob" if by_glob else "matched")
                + " and not pinned: the password goes to whatever host the API "
                "names for a matching integration; set hosts: (or address:)"
            )
    if config.api.enabled:
        parts = urlsplit(config.api.base_url)
        if parts.scheme == "http" and not _loopback(parts.hostname or ""):
            warnings.append(
                "api.base_url: http:// sends the API token in cleartext; use https://"
            )
        found = _file_warning("api.token_file", config.api.token_file)
        if found:
            warnings.append(found)
    for index, credential in enumerate(config.credentials):
        if credential.redis is not None:
            found = _file_warning(
                f"credentials.{index}.redis.password_file",
                credential.redis.password_file,
            )
            if found:
                warnings.append(found)
    for index, target in enumerate(config.targets):
        if isinstance(target, RedisTarget):
            found = _file_warning(
                f"targets.{index}.password_file", target.password_file
            )
            if found:
                warnings.append(found)
    return warnings

"""Config reload: on SIGHUP, or when the config or a `*_file` it names changes.

Kubernetes updates a mounted Secret by swapping a symlink, so a file is
identified by what `stat` (following links) says of it: inode, size and
modification time. A change to any of them triggers a reload. A valid new
config is swapped in whole; an invalid one is rejected with every problem
logged, and the old one stays.

Reloads are at least MIN_RELOAD_GAP apart: a request (a SIGHUP, a changed
file) within the gap after a reload waits for its end, and every request
that arrives meanwhile joins it. A storm of SIGHUPs is one reload, then at
most one more.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog

from monitor.config import (
    Config,
    ConfigError,
    WebSettings,
    load_config,
    referenced_files,
    web_settings,
)
from monitor.log import Redactor
from monitor.service.monitor import Monitor

Fingerprint = tuple[int, int, int] | None

# How often the watched files are looked at. Secret rotation is not urgent to
# the second, and a stat per file every few seconds costs nothing.
WATCH_INTERVAL = 5.0
# The least time between two reloads (SIGHUP storms, a file rewritten in steps).
MIN_RELOAD_GAP = 1.0


def fingerprint(path: Path) -> Fingerprint:
    """(inode, size, mtime_ns) of the file `path` resolves to; None when absent."""
    try:
        stat = os.stat(path)  # follows symlinks, as Kubernetes' ..data swap needs
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class FileWatcher:
    """Remembers fingerprints of a set of files and tells when any changed."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self._prints: dict[Path, Fingerprint] = {}
        self.watch(paths)

    def watch(self, paths: Iterable[Path]) -> None:
        """Watch exactly `paths` from now on, as they are now."""
        self._prints = {path: fingerprint(path) for path in paths}

    @property
    def paths(self) -> tuple[Path, ...]:
        """The files being watched."""
        return tuple(self._prints)

    def changed(self) -> list[Path]:
        """The files whose fingerprint differs from the remembered one."""
        return [
            path for path, known in self._prints.items() if fingerprint(path) != known
        ]


class Reloader:
    """Owns reloading: when (SIGHUP, a file changed), what, and the record of it.

    A valid new config is applied to the `Monitor`; an invalid one leaves the
    old config in force and is logged with every problem. Either way the
    outcome is recorded in the state for `/metrics`. Secrets of every config
    ever loaded stay masked: error texts from before may still circulate.
    """

    def __init__(
        self,
        monitor: Monitor,
        config_path: Path | None,
        redactor: Redactor,
        logger: structlog.stdlib.BoundLogger,
        *,
        serving_on: str | None = None,
        on_reload: Callable[[Config], None] | None = None,
        web_config_file: Path | None = None,
        web: WebSettings | None = None,
        on_web: Callable[[Config, WebSettings | None], list[str]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monitor = monitor
        self._path = config_path
        self._redactor = redactor
        self._log = logger
        # The address the server listens on when it comes from server.listen
        # (None when --listen fixed it): changing it needs a restart.
        self._serving_on = serving_on
        self._on_reload = on_reload
        # The web config (TLS, basic auth): --web.config.file when given,
        # else server.web_config_file; `on_web` applies a reloaded one and
        # returns what of it needs a restart.
        self._web_override = web_config_file
        self._on_web = on_web
        self._secrets = set(monitor.config.secrets())
        redactor.update(self._secrets)
        self._watcher = FileWatcher(
            self._watched(config_path, monitor.config, web) if config_path else ()
        )
        self._requested: str | None = None
        self._monotonic = monotonic
        self._last_reload = -float("inf")
        self._joined = 0  # requests waiting for the gap to end, beyond the first
        self._deferred = False  # the pending request had to wait for the gap
        # Whether the loops should run at once after the last reload: yes for
        # a reload asked for outside the gap or one that changed the config;
        # not for a request that waited for the gap and changed nothing.
        self.wake_wanted = False

    @property
    def enabled(self) -> bool:
        """Reloading needs a config file to read again."""
        return self._path is not None

    def request(self, trigger: str) -> None:
        """Ask for a reload (SIGHUP); a later `step` performs it, once the gap ends."""
        if self._requested is not None:
            self._joined += 1
        self._requested = trigger

    def wait(self) -> float:
        """Seconds before a pending reload may run; 0 when none waits."""
        if self._requested is None:
            return 0.0
        return max(0.0, self._last_reload + MIN_RELOAD_GAP - self._monotonic())

    @property
    def requested(self) -> bool:
        """A reload was asked for and has not run yet."""
        return self._requested is not None

    def step(self) -> bool:
        """Reload if asked to or if a watched file changed; True when a reload ran.

        Within MIN_RELOAD_GAP of the last reload, the request is kept for
        later (`wait` says how long) and joined by any that follow.
        """
        if self._requested is None:
            changed = self._watcher.changed()
            if changed:
                self._requested = "file changed: " + ", ".join(str(p) for p in changed)
        if self._requested is None:
            return False
        waited = self._last_reload + MIN_RELOAD_GAP > self._monotonic()
        if waited:
            self._deferred = True
            return False
        trigger, self._requested = self._requested, None
        joined, self._joined = self._joined, 0
        deferred, self._deferred = self._deferred, False
        before = self._monitor.config
        ok = self.reload(trigger, joined=joined)
        self.wake_wanted = ok and (not deferred or self._monitor.config != before)
        return True

    def reload(self, trigger: str, *, joined: int = 0) -> bool:
        """Load the config file again; apply it if valid, keep the old one if not.

        `joined`: requests that arrived while this one waited (logged).
        """
        if self._path is None:
            return False
        self._last_reload = self._monotonic()
        state = self._monitor.state
        try:
            new = load_config(self._path)
            web = web_settings(new, self._web_override)
        except ConfigError as err:
            state.config_reload_ok = False
            state.config_reloads["failure"] += 1
            self._log.error(
                "config.reload_failed",
                trigger=trigger,
                problems=list(err.problems),
                joined=joined or None,
            )
            # Watch what changed so an unfixed file is not reloaded every few seconds.
            self._watcher.watch(self._watcher.paths)
            return False
        self._secrets |= new.secrets()
        self._redactor.update(self._secrets)
        restart = self._monitor.apply(new)
        if self._serving_on is not None and new.server.listen != self._serving_on:
            restart.append("server.listen")
        if self._on_web is not None:
            restart.extend(self._on_web(new, web))
        if self._on_reload is not None:
            self._on_reload(new)
        self._watcher.watch(self._watched(self._path, new, web))
        state.config_reload_ok = True
        state.config_reload_time = time.time()
        state.config_reloads["success"] += 1
        self._log.info(
            "config.reloaded",
            trigger=trigger,
            needs_restart=restart or None,
            joined=joined or None,
        )
        return True

    @staticmethod
    def _watched(
        path: Path, config: Config, web: WebSettings | None
    ) -> tuple[Path, ...]:
        """The config file, the files it names, and the web config's files
        (certificates included, so that a renewed one is served)."""
        files = referenced_files(path, config) + (web.files if web else ())
        return tuple(dict.fromkeys(files))

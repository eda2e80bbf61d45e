"""Config reload: on SIGHUP, or when the config or a `*_file` it names changes.

Kubernetes updates a mounted Secret by swapping a symlink, so a file is
identified by what `stat` (following links) says of it: inode, size and
modification time. A change to any of them triggers a reload. A valid new
config is swapped in whole; an invalid one is rejected with every problem
logged, and the old one stays.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

Fingerprint = tuple[int, int, int] | None

# How often the watched files are looked at. Secret rotation is not urgent to
# the second, and a stat per file every few seconds costs nothing.
WATCH_INTERVAL = 5.0


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

"""Free loopback ports for servers that cannot bind port 0 themselves."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on `host` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def dead_listener(host: str = LOOPBACK) -> socket.socket:
    """A socket on `host` that listens and never accepts: a host that hangs.

    Connections complete in the kernel's backlog and then nothing answers,
    so every probe of it waits for its timeout. The caller closes it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(socket.SOMAXCONN)
    return sock

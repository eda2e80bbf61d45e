"""Transport failures, read the same way for every kind of store.

DNS, refused connections and TLS trouble mean the same whether a Redis
socket or a botocore HTTP request ran into them; this is the one place that
maps them to a `Reason` and a message for people. Each probe adds only what
is its own (a Redis server closing on a TLS mismatch, an AWS error code).
Nothing here catches anything.

The monitor's own shortage of file descriptors (`EMFILE`, `ENFILE` when a
probe opens its connection) says nothing of the store: `classify_transport`
raises `MonitorResourceError` for it, and the runner keeps the store's
previous verdict instead of recording a failure (`probe.fd_exhausted`).
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass

from monitor.probes.result import Reason

# errno values that are the monitor process's (or the host's) shortage of
# file descriptors, not anything the store did.
FD_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE})


class MonitorResourceError(Exception):
    """The monitor itself ran out of file descriptors: no verdict on the store."""


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """Why a connection to a store failed, for the metric label and for people."""

    reason: Reason
    message: str


def causes(err: BaseException) -> list[BaseException]:
    """The exception and everything it wraps, outermost first, each once.

    Follows `__cause__` and `__context__`, and the links libraries use to
    carry the underlying error: botocore's `kwargs["error"]` and aiohttp's
    `os_error`.
    """
    seen: list[BaseException] = []
    todo: list[BaseException] = [err]
    while todo:
        item = todo.pop(0)
        if item in seen:
            continue
        seen.append(item)
        kwargs = getattr(item, "kwargs", None)
        wrapped = kwargs.get("error") if isinstance(kwargs, dict) else None
        for nxt in (
            wrapped,
            getattr(item, "os_error", None),
            item.__cause__,
            item.__context__,
        ):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return seen


def classify_transport(
    err: BaseException, *, peer: str = "the host"
) -> TransportFailure | None:
    """DNS, refused or TLS trouble anywhere in `err`'s chain; None when there is none.

    `peer` names what was being reached in the message ("the host", "the
    endpoint"). Timeouts are left to the caller: each library signals them
    its own way, and they are only a transport failure once nothing else is.
    Raises `MonitorResourceError` when the chain holds `EMFILE`/`ENFILE`.
    """
    chain = causes(err)
    for item in chain:
        if isinstance(item, OSError) and item.errno in FD_EXHAUSTED:
            raise MonitorResourceError(
                f"the monitor is out of file descriptors ({item.strerror or item})"
            ) from None
    for item in chain:
        if isinstance(item, socket.gaierror):
            return TransportFailure(
                Reason.DNS, f"cannot resolve {peer}: {item.strerror or item}"
            )
        if isinstance(item, ConnectionRefusedError):
            return TransportFailure(
                Reason.REFUSED, f"connection refused: nothing listens at {peer}"
            )
        if isinstance(item, ssl.SSLCertVerificationError):
            why = getattr(item, "verify_message", None) or item
            return TransportFailure(
                Reason.TLS_VERIFY, f"certificate not trusted: {why}"
            )
        if isinstance(item, ssl.SSLError):
            hint = (
                " (does it speak TLS on that port?)"
                if "WRONG_VERSION" in str(item).upper()
                else ""
            )
            return TransportFailure(
                Reason.TLS_HANDSHAKE,
                f"TLS handshake failed: {getattr(item, 'reason', None) or item}{hint}",
            )
    return None

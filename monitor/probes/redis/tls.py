"""TLS for the probes: cached client contexts and the presented chain's expiry."""

from __future__ import annotations

import ssl
from typing import Any

from monitor.config import TlsConfig


class TlsContexts:
    """Client SSL contexts, one per settings: building one loads the CA store."""

    def __init__(self) -> None:
        self._contexts: dict[TlsConfig, ssl.SSLContext] = {}

    def get(self, tls: TlsConfig) -> ssl.SSLContext:
        """The context for these settings, built on first use."""
        context = self._contexts.get(tls)
        if context is None:
            context = ssl.create_default_context(
                cafile=str(tls.ca_file) if tls.ca_file else None
            )
            if tls.cert_file is not None and tls.key_file is not None:
                context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
            if tls.insecure_skip_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[tls] = context
        return context

    def unverified(self, tls: TlsConfig) -> ssl.SSLContext:
        """The context for these settings with verification off: only to read the
        certificate a server presents after a verified handshake failed."""
        return self.get(tls.model_copy(update={"insecure_skip_verify": True}))

    def clear(self) -> None:
        """Forget every context (after a reload, certificate files may have changed)."""
        self._contexts.clear()


def _peer_chain(ssl_object: Any) -> list[Any]:
    """The certificates the server presented.

    Python 3.13 makes `get_unverified_chain` public; 3.11 and 3.12 have it on
    the private `_sslobj`. Without it, the leaf alone is used.
    """
    for holder in (ssl_object, getattr(ssl_object, "_sslobj", None)):
        getter = getattr(holder, "get_unverified_chain", None)
        if getter is not None:
            try:
                return list(getter() or [])
            except (ssl.SSLError, ValueError):
                return []
    return []


def earliest_not_after(ssl_object: Any) -> float | None:
    """The earliest notAfter (epoch seconds) in the chain the server presented."""
    dates: list[str] = []
    for cert in _peer_chain(ssl_object):
        info = cert.get_info() if hasattr(cert, "get_info") else {}
        if isinstance(info, dict) and info.get("notAfter"):
            dates.append(info["notAfter"])
    if not dates and ssl_object is not None:
        leaf = ssl_object.getpeercert()  # empty without verification
        if leaf and leaf.get("notAfter"):
            dates.append(str(leaf["notAfter"]))
    parsed = []
    for date in dates:
        try:
            parsed.append(float(ssl.cert_time_to_seconds(date)))
        except ValueError:
            continue
    return min(parsed) if parsed else None

"""Parsing a Redis Cluster node's MOVED/ASK reply (the probe follows it or fails on it)."""

from __future__ import annotations

import pytest

from monitor.probes.redis.probe import _Redirect, _redirect
from monitor.probes.redis.resp import RespError


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("MOVED 3999 127.0.0.1:6381", _Redirect("MOVED", "127.0.0.1", 6381)),
        ("ASK 3999 10.0.0.2:7000", _Redirect("ASK", "10.0.0.2", 7000)),
        # No preferred endpoint announced: the node asked, on that port.
        ("MOVED 3999 :6381", _Redirect("MOVED", "asked.example", 6381)),
        ("MOVED 1 redis-2.internal:6379", _Redirect("MOVED", "redis-2.internal", 6379)),
        ("MOVED 1 ::1:6379", _Redirect("MOVED", "::1", 6379)),
    ],
)
def test_a_redirect_names_a_node(reply: str, expected: _Redirect) -> None:
    assert _redirect(RespError(reply), "asked.example") == expected


@pytest.mark.parametrize(
    "reply",
    [
        RespError("ERR unknown command"),
        RespError("MOVED"),
        RespError("MOVED 3999 host-without-port"),
        RespError("CLUSTERDOWN The cluster is down"),
        b"MOVED 3999 127.0.0.1:6381",  # a value, not an error reply
        None,
    ],
)
def test_anything_else_is_no_redirect(reply: object) -> None:
    assert _redirect(reply, "asked.example") is None

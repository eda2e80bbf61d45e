"""One reading of transport failures for every store kind (`monitor.probes.failures`)."""

from __future__ import annotations

import socket
import ssl

import pytest
from botocore.exceptions import EndpointConnectionError

from monitor.probes.dynamodb.failures import classify as classify_aws
from monitor.probes.failures import causes, classify_transport
from monitor.probes.redis.probe import classify as classify_redis
from monitor.probes.result import Reason


def wrapped(inner: BaseException) -> Exception:
    """`inner` as the cause of an outer library error, as clients raise it."""
    try:
        raise inner
    except BaseException as err:  # noqa: BLE001 -- building a chain on purpose
        outer = OSError("connect failed")
        outer.__cause__ = err
        return outer


CASES = [
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), Reason.DNS),
    (ConnectionRefusedError(111, "Connection refused"), Reason.REFUSED),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), Reason.TLS_VERIFY),
    (
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
        Reason.TLS_HANDSHAKE,
    ),
]


@pytest.mark.parametrize(("inner", "reason"), CASES, ids=lambda v: str(v)[:20])
def test_redis_and_dynamodb_read_a_transport_failure_alike(
    inner: BaseException, reason: Reason
) -> None:
    """The same DNS, refused or TLS error deep in a chain is the same reason for both probes."""
    err = wrapped(inner)
    failure = classify_transport(err)
    assert failure is not None
    assert failure.reason == reason
    assert classify_redis(err, tls=False, replied=False)[0] == reason
    aws = EndpointConnectionError(endpoint_url="http://127.0.0.1:1", error=inner)
    assert classify_aws(aws)[0] == reason
    assert classify_aws(aws)[2] is False  # never authenticated


def test_a_timeout_is_left_to_the_caller() -> None:
    """A bare timeout is not a transport failure here; the Redis probe calls it timeout."""
    assert classify_transport(TimeoutError()) is None
    assert classify_redis(TimeoutError(), tls=False, replied=False)[0] == Reason.TIMEOUT


def test_causes_follow_library_links_once_each() -> None:
    """botocore's kwargs['error'] and a cause that loops back are each visited once."""
    inner = ConnectionRefusedError(111, "refused")
    outer = EndpointConnectionError(endpoint_url="http://x", error=inner)
    inner.__context__ = outer  # a loop, as exception contexts can form
    chain = causes(outer)
    assert chain == [outer, inner]


def test_the_message_names_what_was_reached() -> None:
    """The message says the host or the endpoint, as the caller names it."""
    err = wrapped(ConnectionRefusedError(111, "refused"))
    redis = classify_transport(err)
    aws = classify_transport(err, peer="the endpoint")
    assert redis is not None
    assert aws is not None
    assert "the host" in redis.message
    assert "the endpoint" in aws.message

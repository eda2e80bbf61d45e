"""moto's DynamoDB/IAM server on loopback, and helpers that lay out big segment data.

IAM enforcement: moto checks request signatures and IAM policies once its
"initial no-auth action count" is used up. In server mode that count is set at
run time with `POST /moto-api/reset-auth` (body: the count as text); `0` turns
enforcement on for every later request and `inf` turns it off again.
`iam_enforced()` does exactly that. Create users, policies and tables while
enforcement is off: the default `testing` keys belong to no IAM user.

moto answers failed IAM checks with the XML errors of query-protocol services
(HTTP 403, `AccessDenied`), which botocore cannot parse for DynamoDB's JSON
protocol (it reports the error code "403"). A small WSGI layer rewrites those
answers into what DynamoDB itself sends: HTTP 400 with
`AccessDeniedException`, `UnrecognizedClientException` or
`InvalidSignatureException`, so probes meet the real error codes.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit
from uuid import uuid4

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from devtools.servers.ports import LOOPBACK

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

REGION = "us-east-1"
TEST_ACCESS_KEY_ID = "testing"
TEST_SECRET_ACCESS_KEY = "testing"
METADATA_SUFFIX = "big_segments_metadata"
MEMBERSHIP_SUFFIX = "big_segments_user"

KeySchema = Literal["correct", "wrong_names", "wrong_types", "hash_only"]
AttrType = Literal["N", "S"]

# moto's query-protocol auth error code -> DynamoDB's JSON error type.
_DYNAMODB_AUTH_ERRORS = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}
_XML_CODE = re.compile(rb"<Code>(.*?)</Code>", re.DOTALL)
_XML_MESSAGE = re.compile(rb"<Message>(.*?)</Message>", re.DOTALL)


@dataclass
class MotoServer:
    """A moto server thread bound to 127.0.0.1 on a kernel-chosen port."""

    _server: BaseWSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    host: str
    port: int

    @property
    def endpoint_url(self) -> str:
        """Base URL for `endpoint_url=` of boto3/aioboto3 clients."""
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Drop every table, IAM user and other moto state, and disable IAM checks."""
        _post(self.endpoint_url, "/moto-api/reset-auth", "inf")
        _post(self.endpoint_url, "/moto-api/reset", "")

    @contextmanager
    def iam_enforced(self) -> Iterator[None]:
        """Check signatures and IAM policies of every request inside the block."""
        with iam_enforced(self.endpoint_url):
            yield

    def stop(self) -> None:
        """Shut the server down, join its thread and close its listening socket."""
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


def start_moto_server(
    wrap: Callable[[WSGIApplication], WSGIApplication] | None = None,
) -> MotoServer:
    """Start moto in a thread on 127.0.0.1 and a free port.

    This is moto's `ThreadedMotoServer` with three changes: it binds port 0
    (no race for a free port), it closes its socket on stop, and responses
    pass through `_AwsShapedResponses`. `wrap` puts one more WSGI layer in
    front (to count requests, or to change what some requests answer).
    """
    app: WSGIApplication = _AwsShapedResponses(
        DomainDispatcherApplication(create_backend_app)
    )
    if wrap is not None:
        app = wrap(app)
    server = make_server(LOOPBACK, 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, name="moto-server", daemon=True
    )
    thread.start()
    return MotoServer(_server=server, _thread=thread, host=LOOPBACK, port=server.port)


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without one access-log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Drop the access log line."""


class _AwsShapedResponses:
    """WSGI layer: moto's answers, shaped like AWS's where clients notice.

    - moto adds `server: amazon.com` next to werkzeug's own `Server`, and
      aiohttp's strict parser (on under `python -X dev`) rejects the
      duplicate, so aioboto3 could not talk to moto; the copy is dropped.
    - DynamoDB auth failures get DynamoDB's JSON error shape (module docstring).
    """

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer through moto, fixing the response on the way out."""
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):

            def one_server_header(
                status: str, headers: list[tuple[str, str]], exc_info: Any = None
            ) -> Callable[[bytes], object]:
                return start_response(status, _drop_server(headers), exc_info)

            return self._app(environ, one_server_header)
        status, headers, body = _dynamodb_auth_error(*buffered(self._app, environ))
        start_response(status, _drop_server(headers))
        return [body]


def buffered(
    app: WSGIApplication, environ: WSGIEnvironment
) -> tuple[str, list[tuple[str, str]], bytes]:
    """Call a WSGI app; return its status, headers and whole body (to rewrite them)."""
    captured: list[tuple[str, list[tuple[str, str]]]] = []

    def capture(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        captured.append((status, headers))
        return lambda _data: None

    chunks = app(environ, capture)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers = captured[-1]
    return status, headers, body


def _drop_server(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() != "server"]


def _dynamodb_auth_error(
    status: str, headers: list[tuple[str, str]], body: bytes
) -> tuple[str, list[tuple[str, str]], bytes]:
    """Turn moto's 403 XML auth error into DynamoDB's 400 JSON error."""
    code = _XML_CODE.search(body)
    if not status.startswith("403") or code is None:
        return status, headers, body
    error_type = _DYNAMODB_AUTH_ERRORS.get(code.group(1).decode())
    if error_type is None:
        return status, headers, body
    message = _XML_MESSAGE.search(body)
    text = html.unescape(message.group(1).decode()) if message else ""
    payload = {"__type": f"com.amazon.coral.service#{error_type}", "message": text}
    new_body = json.dumps(payload).encode()
    json_type = [("Content-Type", "application/x-amz-json-1.0")]
    new_headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
    return "400 Bad Request", with_body(new_headers + json_type, new_body), new_body


def with_body(headers: list[tuple[str, str]], body: bytes) -> list[tuple[str, str]]:
    """`headers` for a rewritten DynamoDB `body`: its length and its checksum."""
    dropped = {"content-length", "x-amz-crc32"}
    kept = [(k, v) for k, v in headers if k.lower() not in dropped]
    # botocore checks DynamoDB bodies against x-amz-crc32.
    return [
        *kept,
        ("Content-Length", str(len(body))),
        ("x-amz-crc32", str(zlib.crc32(body))),
    ]


@contextmanager
def iam_enforced(endpoint_url: str) -> Iterator[None]:
    """Enable moto's IAM enforcement for the block, then disable it again."""
    _post(endpoint_url, "/moto-api/reset-auth", "0")
    try:
        yield
    finally:
        _post(endpoint_url, "/moto-api/reset-auth", "inf")


def table_key(prefix: str, suffix: str) -> str:
    """The SDKs' namespace string: `prefix:suffix`, or `suffix` for an empty prefix."""
    return f"{prefix}:{suffix}" if prefix else suffix


def dynamodb_client(
    endpoint_url: str,
    *,
    region: str = REGION,
    access_key_id: str = TEST_ACCESS_KEY_ID,
    secret_access_key: str = TEST_SECRET_ACCESS_KEY,
) -> Any:
    """A sync boto3 DynamoDB client for moto; the caller closes it."""
    return _client("dynamodb", endpoint_url, region, access_key_id, secret_access_key)


def create_bigsegment_table(
    endpoint_url: str,
    name: str,
    *,
    region: str = REGION,
    key_schema: KeySchema = "correct",
) -> None:
    """Create a big segment table; other key schemas model operator mistakes.

    `wrong_names` uses `pk`/`sk`; `wrong_types` declares the range key `key`
    as N (the hash key stays right, so a check must look at both);
    `hash_only` has no range key.
    """
    hash_name, range_name = (
        ("pk", "sk") if key_schema == "wrong_names" else ("namespace", "key")
    )
    range_type = "N" if key_schema == "wrong_types" else "S"
    attributes = [{"AttributeName": hash_name, "AttributeType": "S"}]
    schema = [{"AttributeName": hash_name, "KeyType": "HASH"}]
    if key_schema != "hash_only":
        attributes.append({"AttributeName": range_name, "AttributeType": range_type})
        schema.append({"AttributeName": range_name, "KeyType": "RANGE"})
    with closing(dynamodb_client(endpoint_url, region=region)) as client:
        client.create_table(
            TableName=name,
            AttributeDefinitions=attributes,
            KeySchema=schema,
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 40}
        )


def put_metadata(
    endpoint_url: str,
    table: str,
    prefix: str,
    synchronized_on: int | str | None,
    *,
    attr_type: AttrType = "N",
    region: str = REGION,
) -> None:
    """Write the metadata item; `None` writes it without `synchronizedOn`."""
    key = table_key(prefix, METADATA_SUFFIX)
    item: dict[str, Any] = {"namespace": {"S": key}, "key": {"S": key}}
    if synchronized_on is not None:
        item["synchronizedOn"] = {attr_type: str(synchronized_on)}
    with closing(dynamodb_client(endpoint_url, region=region)) as client:
        client.put_item(TableName=table, Item=item)


def put_membership(
    endpoint_url: str,
    table: str,
    prefix: str,
    context_hash: str,
    *,
    included: Iterable[str] = (),
    excluded: Iterable[str] = (),
    region: str = REGION,
) -> None:
    """Write one context's membership item; empty sets are left out (DynamoDB rule)."""
    item: dict[str, Any] = {
        "namespace": {"S": table_key(prefix, MEMBERSHIP_SUFFIX)},
        "key": {"S": context_hash},
    }
    if included := sorted(included):
        item["included"] = {"SS": included}
    if excluded := sorted(excluded):
        item["excluded"] = {"SS": excluded}
    with closing(dynamodb_client(endpoint_url, region=region)) as client:
        client.put_item(TableName=table, Item=item)


def make_iam_user(
    endpoint_url: str,
    policy_actions: Sequence[str],
    *,
    user_name: str | None = None,
    resource: str = "*",
) -> tuple[str, str]:
    """Create an IAM user allowed only `policy_actions`; return its access key pair."""
    name = user_name or f"ldmon-{uuid4().hex[:8]}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": list(policy_actions), "Resource": resource}
        ],
    }
    with closing(
        _client("iam", endpoint_url, REGION, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    ) as iam:
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name,
            PolicyName=f"{name}-policy",
            PolicyDocument=json.dumps(policy),
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


def _client(
    service: str,
    endpoint_url: str,
    region: str,
    access_key_id: str,
    secret_access_key: str,
) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
    )


def _post(endpoint_url: str, path: str, body: str) -> None:
    parts = urlsplit(endpoint_url)
    connection = http.client.HTTPConnection(
        parts.hostname or LOOPBACK, parts.port, timeout=10
    )
    try:
        connection.request("POST", path, body=body.encode())
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"moto {path} answered {response.status}: {payload!r}")

"""How AWS failures read: a closed reason, a message safe to show, and `up`.

Used by the DynamoDB probe at its boundary: botocore and aiobotocore
exceptions become a `Reason`, a message without credentials in it, and
whether DynamoDB had accepted the request's signature (the probe's `up`).
Transport trouble inside them (DNS, refused, TLS) is read by
`probes.failures`, the same way as for Redis. Nothing here catches anything.
"""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from monitor.probes.dynamodb.clients import MAX_REPLY_BYTES, ReplyTooLargeError
from monitor.probes.failures import causes, classify_transport
from monitor.probes.result import Reason

AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "IncompleteSignature",
        "IncompleteSignatureException",
        "InvalidAccessKeyId",
        "RequestExpired",
        "AuthFailure",
    }
)
PERMISSION_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    }
)
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException"})

# Server messages are cut to one bounded line: enough to act on, no dumps.
_MESSAGE_LIMIT = 300


def _short(text: str) -> str:
    """First line of a server message, bounded."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= _MESSAGE_LIMIT else line[: _MESSAGE_LIMIT - 1] + "…"


def classify_client_error(err: ClientError) -> tuple[Reason, str, bool]:
    """Reason, message and whether DynamoDB accepted the credentials (AWS errors)."""
    error = err.response.get("Error", {})
    code = str(error.get("Code") or "Unknown")
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    operation = err.operation_name
    # Signature errors can quote the canonical request, session token
    # included: their server text never goes into a message.
    text = "" if code in AUTH_CODES else _short(str(error.get("Message") or ""))
    detail = f"{operation}: {code}" + (f": {text}" if text else "")
    if operation == "AssumeRole":
        if code in PERMISSION_CODES:
            return (
                Reason.NO_PERMISSION,
                f"cannot assume the role (sts:AssumeRole, trust policy): {detail}",
                False,
            )
        if code in AUTH_CODES:
            return (
                Reason.AUTH,
                f"STS rejected the monitor's credentials: {detail}",
                False,
            )
        if code in THROTTLE_CODES:
            return Reason.THROTTLED, f"STS throttled the request: {detail}", False
        return Reason.OTHER, f"assuming the role failed: {detail}", False
    if code in AUTH_CODES:
        return Reason.AUTH, f"DynamoDB rejected the credentials: {detail}", False
    authenticated = status < 500
    if code in NOT_FOUND_CODES:
        return Reason.NOT_FOUND, f"the table does not exist: {detail}", authenticated
    if code in PERMISSION_CODES:
        return (
            Reason.NO_PERMISSION,
            f"the monitor's identity lacks a permission: {detail}",
            authenticated,
        )
    if code in THROTTLE_CODES:
        return Reason.THROTTLED, f"throttled: {detail}", authenticated
    return Reason.OTHER, detail, authenticated


def classify(err: Exception) -> tuple[Reason, str, bool]:
    """Reason, message and whether DynamoDB accepted the credentials (any error)."""
    if isinstance(err, ClientError):
        return classify_client_error(err)
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return (
            Reason.AUTH,
            "no AWS credentials found (environment, shared files, web identity, "
            "container or instance role)",
            False,
        )
    too_large = next(
        (e for e in causes(err) if isinstance(e, ReplyTooLargeError)), None
    )
    if too_large is not None:
        return (
            Reason.REPLY_TOO_LARGE,
            f"the reply is too large: {too_large} (bounded at {MAX_REPLY_BYTES})",
            False,
        )
    if isinstance(err, CredentialRetrievalError):
        return Reason.AUTH, f"AWS credentials could not be loaded: {err}", False
    failure = classify_transport(err, peer="the endpoint")
    if failure is not None:
        return failure.reason, failure.message, False
    if isinstance(err, ConnectTimeoutError):
        return Reason.TIMEOUT, f"could not connect in time: {err}", False
    if isinstance(err, ReadTimeoutError):
        return Reason.TIMEOUT, f"no answer in time: {err}", False
    if isinstance(err, EndpointConnectionError):
        return Reason.OTHER, f"cannot connect: {err}", False
    if isinstance(err, NoRegionError):
        return Reason.OTHER, "no AWS region: set region for this target", False
    return Reason.OTHER, f"{type(err).__name__}: {err}", False

"""The big segment store layout the SDKs read: key names and the context hash.

Every store key name lives here and nowhere else. Sources: the Python SDK's
`redis_big_segment_store.py` / `dynamodb_big_segment_store.py`, the Go SDK's
`user_hash.go`, and the Relay Proxy's `store_redis.go` / `store_dynamodb.go`.
"""

from __future__ import annotations

import base64
import hashlib

# Redis: the SDKs' and Relay's default prefix when none is configured.
DEFAULT_REDIS_PREFIX = "launchdarkly"
# Redis's own port, and the default of LaunchDarkly's Redis integration form.
DEFAULT_REDIS_PORT = 6379

# DynamoDB table key schema the SDKs require.
DYNAMODB_PARTITION_KEY = "namespace"
DYNAMODB_SORT_KEY = "key"
DYNAMODB_SYNC_ATTRIBUTE = "synchronizedOn"
DYNAMODB_INCLUDED_ATTRIBUTE = "included"
DYNAMODB_EXCLUDED_ATTRIBUTE = "excluded"


def redis_synchronized_on_key(prefix: str) -> str:
    """`{prefix}:big_segments_synchronized_on`: a string holding Unix ms."""
    return f"{prefix or DEFAULT_REDIS_PREFIX}:big_segments_synchronized_on"


def redis_include_key(prefix: str, context_hash: str) -> str:
    """The set of segment refs a context is included in."""
    return f"{prefix or DEFAULT_REDIS_PREFIX}:big_segment_include:{context_hash}"


def redis_exclude_key(prefix: str, context_hash: str) -> str:
    """The set of segment refs a context is excluded from."""
    return f"{prefix or DEFAULT_REDIS_PREFIX}:big_segment_exclude:{context_hash}"


def redis_membership_pattern(prefix: str) -> str:
    """A SCAN MATCH pattern for every include and exclude set under `prefix`."""
    escaped = "".join(
        f"\\{c}" if c in "*?[]\\" else c for c in prefix or DEFAULT_REDIS_PREFIX
    )
    return f"{escaped}:big_segment_[ie][nx]clude:*"


def _dynamodb_name(prefix: str, name: str) -> str:
    # No default prefix for DynamoDB: an empty prefix means the bare name.
    return f"{prefix}:{name}" if prefix else name


def dynamodb_metadata_key(prefix: str) -> str:
    """Namespace and sort key of the metadata item holding `synchronizedOn`."""
    return _dynamodb_name(prefix, "big_segments_metadata")


def dynamodb_membership_namespace(prefix: str) -> str:
    """Partition of the per-context membership items."""
    return _dynamodb_name(prefix, "big_segments_user")


def context_hash(context_key: str) -> str:
    """base64(sha256(key)), standard alphabet with padding, as the SDKs hash keys."""
    digest = hashlib.sha256(context_key.encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def segment_ref(segment_key: str, generation: int) -> str:
    """The member stored in include/exclude sets: `{segmentKey}.g{generation}`."""
    return f"{segment_key}.g{generation}"

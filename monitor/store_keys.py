"""The big segment store layout the SDKs read: key names and the context hash.

Every store key name lives here and nowhere else. Source: python-server-sdk
`ldclient/impl/integrations/redis/redis_big_segment_store.py:24-26` and
`ldclient/impl/integrations/dynamodb/dynamodb_big_segment_store.py:27-29`
(key names), `ldclient/impl/big_segments_common.py:25-26` (the hash). What an
*empty* prefix gives differs by SDK: `empty` below, per profile in
`monitor/probes/profiles.py`.
"""

from __future__ import annotations

import base64
import functools
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


# What an empty prefix puts before the Redis key names: most SDKs and Relay
# fall back on the default prefix; Ruby keeps the empty prefix (":"), C++
# has no default (nothing at all).
REDIS_EMPTY_HEAD = f"{DEFAULT_REDIS_PREFIX}:"
# DynamoDB has no default prefix: bare names (Ruby: ":").
DYNAMODB_EMPTY_HEAD = ""


def _redis_head(prefix: str, empty: str) -> str:
    return f"{prefix}:" if prefix else empty


def redis_synchronized_on_key(prefix: str, empty: str = REDIS_EMPTY_HEAD) -> str:
    """`{prefix}:big_segments_synchronized_on`: a string holding Unix ms."""
    return f"{_redis_head(prefix, empty)}big_segments_synchronized_on"


def redis_include_key(
    prefix: str, context_hash: str, empty: str = REDIS_EMPTY_HEAD
) -> str:
    """The set of segment refs a context is included in."""
    return f"{_redis_head(prefix, empty)}big_segment_include:{context_hash}"


def redis_exclude_key(
    prefix: str, context_hash: str, empty: str = REDIS_EMPTY_HEAD
) -> str:
    """The set of segment refs a context is excluded from."""
    return f"{_redis_head(prefix, empty)}big_segment_exclude:{context_hash}"


def redis_membership_pattern(prefix: str, empty: str = REDIS_EMPTY_HEAD) -> str:
    """A SCAN MATCH pattern for every include and exclude set under `prefix`."""
    escaped = "".join(
        f"\\{c}" if c in "*?[]\\" else c for c in _redis_head(prefix, empty)
    )
    return f"{escaped}big_segment_[ie][nx]clude:*"


def _dynamodb_name(prefix: str, name: str, empty: str) -> str:
    return f"{prefix}:{name}" if prefix else f"{empty}{name}"


def dynamodb_metadata_key(prefix: str, empty: str = DYNAMODB_EMPTY_HEAD) -> str:
    """Namespace and sort key of the metadata item holding `synchronizedOn`."""
    return _dynamodb_name(prefix, "big_segments_metadata", empty)


def dynamodb_membership_namespace(prefix: str, empty: str = DYNAMODB_EMPTY_HEAD) -> str:
    """Partition of the per-context membership items."""
    return _dynamodb_name(prefix, "big_segments_user", empty)


def context_hash(context_key: str) -> str:
    """base64(sha256(key)), standard alphabet with padding, as the SDKs hash keys."""
    digest = hashlib.sha256(context_key.encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


# The context whose membership every probe reads, as an SDK reads a context's
# membership for an evaluation: a key no application uses, so its include set
# does not exist and the read costs the store nothing. Proves the membership
# read works (permissions, key type, the store's answer), not what it holds.
MEMBERSHIP_PROBE_CONTEXT_KEY = "ld-store-monitor/membership-probe/no-such-context"


@functools.cache
def membership_probe_hash() -> str:
    """The context hash the membership read of every probe asks for."""
    return context_hash(MEMBERSHIP_PROBE_CONTEXT_KEY)


def segment_ref(segment_key: str, generation: int) -> str:
    """The member stored in include/exclude sets: `{segmentKey}.g{generation}`."""
    return f"{segment_key}.g{generation}"

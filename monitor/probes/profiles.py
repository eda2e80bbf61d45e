"""SDK profiles: how each LaunchDarkly SDK, and the Relay Proxy, judges a store.

A probe records what the metadata read returned (`RawMetadata`: the Redis
string, or the DynamoDB attribute's type and text); the target's profile then
turns it into the `(available, stale)` pair that SDK's
`BigSegmentStoreStatusProvider` would report. Every rule carries the SDK
source it comes from (`repository path:lines`). The `python` profile is the
monitor's historical behaviour, bit for bit.

Two profiles reproduce SDK bugs on purpose, and the report says so
(`PROFILE_NOTES`): PHP swallows every store error, and compares `time()` in
seconds with a timestamp in milliseconds, so it never reports an outage or a
stale store while the key exists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Literal

from monitor.config import Sdk
from monitor.store_keys import DYNAMODB_EMPTY_HEAD, REDIS_EMPTY_HEAD

__all__ = [
    "PROFILES",
    "PROFILE_NOTES",
    "Compare",
    "Parsed",
    "Profile",
    "RawMetadata",
    "Read",
    "profile_of",
    "read_metadata",
    "sdk_status",
    "status_of",
]


@dataclass(frozen=True, slots=True)
class RawMetadata:
    """What the metadata read returned, before any SDK parses it.

    `value` None: no key (Redis), no item or no `synchronizedOn` (DynamoDB).
    `attribute_type`: the DynamoDB attribute's type (`N`, `S`, ...); None for Redis.
    """

    store: Literal["redis", "dynamodb"]
    value: str | None
    attribute_type: str | None = None


class Read(Enum):
    """What a parse can yield besides a timestamp."""

    MISSING = "missing"  # "no metadata": available, stale
    FAILED = "failed"  # the SDK's read raises: the profile's read-error rule


Parsed = int | Decimal | Read
Parser = Callable[[str], Parsed]


class Compare(Enum):
    """How a profile decides that `synchronizedOn` is too old."""

    AT_LEAST = ">="  # now_ms - sync >= stale_ms
    MORE_THAN = ">"  # now_ms - sync > stale_ms
    PHP_SECONDS = "php"  # time() (s) - sync (ms) >= stale_after (s): never stale


_INT64 = (-(2**63), 2**63 - 1)


def _in_int64(number: int) -> Parsed:
    return number if _INT64[0] <= number <= _INT64[1] else Read.FAILED


def parse_python(text: str) -> Parsed:
    """`int(value)` on the bytes Redis returned: whitespace, sign and `_` accepted."""
    if not text.isascii():  # int() of bytes knows ASCII digits only
        return Read.FAILED
    try:
        return int(text)
    except ValueError:
        return Read.FAILED


_DIGITS = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"[+-]?[0-9]+")
_DOTNET = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)[ \t\n\v\f\r]*")
_CPP = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")
_JS_LEADING = re.compile(r"[\s\ufeff]*([+-]?[0-9]*)")
_RUBY_LEADING = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+(?:_[0-9]+)*)?")
_PHP_LEADING = re.compile(
    r"[ \t\n\r\v\f]*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)?"
)


def parse_go_uint(text: str) -> Parsed:
    """Go `strconv.ParseUint(s, 10, 64)`: ASCII digits only, no sign, no space."""
    if _DIGITS.fullmatch(text) is None or int(text) >= 2**64:
        return Read.FAILED
    return int(text)


def parse_go_int(text: str) -> Parsed:
    """Go `strconv.ParseInt(s, 10, 64)`: an optional sign, then digits."""
    return _in_int64(int(text)) if _SIGNED.fullmatch(text) else Read.FAILED


def parse_java_long(text: str) -> Parsed:
    """Java `Long.parseLong`: an optional sign, then digits; no whitespace."""
    return _in_int64(int(text)) if _SIGNED.fullmatch(text) else Read.FAILED


def parse_dotnet_long(text: str) -> Parsed:
    """.NET `long.Parse` (NumberStyles.Integer): whitespace around, a leading sign."""
    match = _DOTNET.fullmatch(text)
    return Read.FAILED if match is None else _in_int64(int(match.group(1)))


def parse_cpp(text: str) -> Parsed:
    """C++ `std::stoll` with the whole string consumed: leading space and sign only."""
    match = _CPP.fullmatch(text)
    return Read.FAILED if match is None else _in_int64(int(match.group(1)))


def parse_js_int(text: str) -> Parsed:
    """JavaScript `parseInt(value, 10)`; NaN and 0 are "no metadata" to the SDK.

    `!metadata.lastUpToDate` makes NaN and 0 stale while available
    (js-core packages/shared/sdk-server/src/BigSegmentsManager.ts:116-121).
    """
    match = _JS_LEADING.match(text)
    digits = match.group(1) if match else ""
    if digits.lstrip("+-") == "":
        return Read.MISSING  # NaN
    number = int(digits)
    return Read.MISSING if number == 0 else number


def parse_ruby_to_i(text: str) -> Parsed:
    """Ruby `String#to_i`: the leading integer (with `_` between digits), else 0."""
    match = _RUBY_LEADING.match(text)
    digits = match.group(1) if match else None
    return 0 if not digits else int(digits.replace("_", ""))


def parse_php_int(text: str) -> Parsed:
    """PHP `(int)$value`: the leading number (a float is truncated), else 0."""
    match = _PHP_LEADING.match(text)
    number = match.group(1) if match else None
    if not number:
        return 0
    if _SIGNED.fullmatch(number):
        return max(_INT64[0], min(_INT64[1], int(number)))
    value = float(number)
    # PHP casts INF to 0; a float beyond the int range is clamped here.
    if math.isinf(value):
        return 0
    return max(_INT64[0], min(_INT64[1], int(value)))


def parse_decimal(text: str) -> Parsed:
    """Ruby's `BigDecimal` from the DynamoDB N: exact, fractions kept."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return Read.FAILED
    # DynamoDB numbers have at most 38 digits and magnitude 10**126: NaN,
    # Infinity or an exponent beyond that comes from no real table, and
    # Decimal arithmetic on it would raise.
    if not number.is_finite() or abs(number.adjusted()) > 126:
        return Read.FAILED
    return number


def parse_go_uint_or_zero(text: str) -> Parsed:
    """Go DynamoDB: an N that does not parse as an unsigned integer becomes 0."""
    parsed = parse_go_uint(text)
    return 0 if parsed is Read.FAILED else parsed


@dataclass(frozen=True, slots=True)
class Profile:
    """One SDK's reading of a big segment store, rule by rule."""

    sdk: Sdk
    redis_parse: Parser
    redis_empty_is_missing: bool  # `""` means "no metadata" rather than a value
    dynamodb_parse: Parser  # the text of an N attribute
    dynamodb_non_n: Read  # a synchronizedOn of another type
    read_error_available: bool  # PHP: errors are swallowed and read as "no metadata"
    read_error_keeps_stale: bool  # C++: stale keeps its last known value
    compare: Compare
    default_stale_after: float | None  # None: probe.stale_after
    # What an empty prefix puts before the key names: "launchdarkly:" (the
    # default prefix), ":" (the empty prefix kept: `:big_segments_...`) or ""
    # (bare names).
    redis_empty_prefix: str
    dynamodb_empty_prefix: str
    # A Redis Cluster node's `-MOVED`/`-ASK` reply is followed (once) to the
    # node it names, as a cluster-aware client does; False: the read fails.
    follows_cluster_redirects: bool = False


PROFILES: dict[Sdk, Profile] = {
    # python-server-sdk
    # ldclient/impl/integrations/redis/redis_big_segment_store.py:24-34 (int(),
    # "" raises); .../dynamodb/dynamodb_big_segment_store.py:27-40 (int() of N,
    # other types read as "never synchronized"); ldclient/impl/big_segments.py:75-85
    # (errors -> (0,0)); ldclient/impl/big_segments_common.py:29-30 (>=);
    # ldclient/config.py:59 (120 s).
    Sdk.PYTHON: Profile(
        sdk=Sdk.PYTHON,
        redis_parse=parse_python,
        redis_empty_is_missing=False,
        dynamodb_parse=parse_python,
        dynamodb_non_n=Read.MISSING,
        read_error_available=False,
        read_error_keeps_stale=False,
        compare=Compare.AT_LEAST,
        default_stale_after=None,
        redis_empty_prefix=REDIS_EMPTY_HEAD,
        dynamodb_empty_prefix=DYNAMODB_EMPTY_HEAD,
    ),
    # python-server-sdk
    # ldclient/impl/integrations/redis/async_redis_big_segment_store.py:27-29
    # (`int(value) if value else None`: "" is "no metadata");
    # ldclient/impl/async_big_segments.py:86-93. No async DynamoDB store: the
    # sync rules.
    Sdk.PYTHON_ASYNC: Profile(
        sdk=Sdk.PYTHON_ASYNC,
        redis_parse=parse_python,
        redis_empty_is_missing=True,
        dynamodb_parse=parse_python,
        dynamodb_non_n=Read.MISSING,
        read_error_available=False,
        read_error_keeps_stale=False,
        compare=Compare.AT_LEAST,
        default_stale_after=None,
        redis_empty_prefix=REDIS_EMPTY_HEAD,
        dynamodb_empty_prefix=DYNAMODB_EMPTY_HEAD,
    ),
    # go-server-sdk-redis-redigo redis_big_segments_impl.go:40-60 (ParseUint);
    # go-server-sdk-dynamodb dynamodb_helpers.go:45-55 and
    # dynamodb_big_segments_impl.go:79-82 (a bad N becomes 0);
    # go-server-sdk subsystems/ldstoreimpl/big_segment_store_wrapper.go:213-231
    # (errors -> (0,0)), :247-250 (>=);
    # ldcomponents/big_segments_configuration_builder.go:24 (120 s);
    # redigo redis_builder.go:116-122 (Prefix("") -> launchdarkly);
    # go-server-sdk-dynamodb dynamodb_big_segments_impl.go:123-128 ("" -> bare).
    Sdk.GO: Profile(
        sdk=Sdk.GO,
        redis_parse=parse_go_uint,
        redis_empty_is_missing=False,
        dynamodb_parse=parse_go_uint_or_zero,
        dynamodb_non_n=Read.MISSING,
        read_error_available=False,
        read_error_keeps_stale=False,
        compare=Compare.AT_LEAST,
        default_stale_after=None,
        redis_empty_prefix=REDIS_EMPTY_HEAD,
        dynamodb_empty_prefix=DYNAMODB_EMPTY_HEAD,
    ),
    # java-core lib/java-server-sdk-redis-store/.../RedisBigSegmentStoreImpl.java:33-41
    # ("" is "no metadata", then Long.parseLong); java-server-sdk-dynamodb
    # .../DynamoDbBigSegmentStoreImpl.java:51-66 (parseLong of N);
    # java-core lib/sdk/server/.../BigSegmentStoreWrapper.java:154-156 (>, 120 s);
    # RedisStoreImplBase.java:40-42, DynamoDbStoreImplBase.java:35 (prefixes).
    Sdk.JAVA: Profile(
        sdk=Sdk.JAVA,
        redis_parse=parse_java_long,
        redis_empty_is_missing=True,
        dynamodb_parse=parse_java_long,
        dynamodb_non_n=Read.MISSING,
        read_error_available=False,
        read_error_keeps_stale=False,
        compare=Compare.MORE_THAN,
        default_stale_after=None,
        redis_empty_prefix=REDIS_EMPTY_HEAD,
        dynamodb_empty_prefix=DYNAMODB_EMPTY_HEAD,
    ),
    # js-core packages/store/node-server-sdk-redis/src/RedisBigSegmentStore.ts:30-38
    # (`if (value)`: "" is "no metadata"; parseInt(value, 10));
    # packages/store/node-server-sdk-dynamodb/src/DynamoDBBigSegmentStore.ts:50-63
    # (parseInt of N); packages/shared/sdk-server/src/BigSegmentsManager.ts:116-121
    # (NaN/0 stale; errors -> (0,0)), :38-46,154-156 (>=, 120 s);
    # RedisClientState.ts:51, DynamoDBClientState.ts:40 (prefixes).
    # Cluster: RedisClientState.ts:40-48 uses your own ioredis `client` when
    # given, else a plain `new Redis(redisOpts)`, which does not follow MOVED or
    # ASK. An application whose store is a Cluster must pass an ioredis
    # `Cluster` (which follows them) or no read works at all: the profile
    # assumes that client.
    Sdk.NODE: Profile(
        sdk=Sdk.NODE,
        redis_parse=parse_js_int,
        redis_empty_is_missing=True,
        dynamodb_parse=parse_js_int,
        dynamodb_non_n=Read.MISSING,
        read_error_available=False,
        read_error_keeps_stale=False,
        compare=Compare.AT_LEAST,
        default_stale_after=None,
        redis_empty_prefix=REDIS_EMPTY_HEAD,
        dynamodb_empty_prefix=DYNAMODB_EMPTY_HEAD,
        follows_cluster_redirects=True,
    ),
    # dotnet-core pkgs/dotnet-server-sdk-redis/src/RedisBigSegmentStoreImpl.cs:41-56
    # ("" is "no metadata", long.Parse); pkgs/dotnet-server-sdk-dynamodb/src/
    # DynamoDBBigSegmentStoreImpl.cs:51-69 (long.Parse of N); pkgs/sdk/server/src/
    # Internal/BigSegments/BigSegmentStoreWrapper.cs:164-165 (>=, 120 s).
    # Cluster: pkgs/dotnet-server-sdk-redis/src/RedisStoreImplBase.cs:13,25 reads
    # through StackExchange.Redis's IConnectionMultiplexer, which maps the
    # cluster's slots and follows MOVED and ASK itself.
    Sdk.DOTNET: Profile(
        sdk=Sdk.DOTNET,
        redis_parse=parse_dotnet_long,
        redis_empty_is_missing=True,
        dynamodb_parse=parse_dotnet_long,
        dynamodb_non_n=Read.MISSING,
        read_error_available=False,
        read_error_keeps_stale=False,
        compare=Compare.AT_LEAST,
        default_stale_after=None,
        redis_empty_prefix=REDIS_EMPTY_HEAD,
        dynamodb_empty_prefix=DYNAMODB_EMPTY_HEAD,
        follows_cluster_redirects=True,
    ),
    # ruby-server-sdk lib/ldclient-rb/impl/integrations/redis_impl.rb:287-290
    # (value.to_i: "" is 0, so stale), :121 ("" prefix kept: ":big_segments_...");
    # .../dynamodb_impl.rb:248-260 (N as BigDecimal; another type raises TypeError in
    # lib/ldclient-rb/impl/big_segments.rb:79-81), :29 (":big_segments_metadata");
    # lib/ldclient-rb/config.rb:674-677 (>=, 120 s).
    Sdk.RUBY: Profile(
        sdk=Sdk.RUBY,
        redis_parse=parse_ruby_to_i,
        redis_empty_is_missing=False,
        dynamodb_parse=parse_decimal,
        dynamodb_non_n=Read.FAILED,
        read_error_available=False,
        read_error_keeps_stale=False,
        compare=Compare.AT_LEAST,
        default_stale_after=None,
        redis_empty_prefix=":",
        dynamodb_empty_prefix=":",
    ),
    # php-server-sdk-redis-predis src/.../RedisBigSegmentsStore.php:41-55 and
    # php-server-sdk-redis-phpredis .../PHPRedisBigSegmentsStore.php:38-55 (every
    # exception swallowed: null metadata, so (1,1); `(int)` cast);
    # php-server-sdk src/LaunchDarkly/Types/BigSegmentsStoreMetadata.php:30-36
    # (`time() - lastUpToDate >= staleAfter`: seconds against milliseconds).
    # No DynamoDB big segment store in php-server-sdk-dynamodb: Python's parsing
    # there (with PHP's error and age rules, which no real application has).
    # Empty prefix: predis falls back to launchdarkly (phpredis would keep "").
    Sdk.PHP: Profile(
        sdk=Sdk.PHP,
        redis_parse=parse_php_int,
        redis_empty_is_missing=False,
        dynamodb_parse=parse_python,
        dynamodb_non_n=Read.MISSING,
        read_error_available=True,
        read_error_keeps_stale=False,
        compare=Compare.PHP_SECONDS,
        default_stale_after=None,
        redis_empty_prefix=REDIS_EMPTY_HEAD,
        dynamodb_empty_prefix=DYNAMODB_EMPTY_HEAD,
    ),
    # cpp-sdks libs/server-sdk-redis-source/src/redis_big_segment_store.cpp:94-100
    # (a value that does not parse is an error), :27-32 (no default prefix: bare);
    # libs/server-sdk-dynamodb-source/src/dynamodb_big_segment_store.cpp:153-158
    # (non-integer or non-N: an error); libs/server-sdk/src/data_components/
    # big_segments/big_segment_store_wrapper.cpp:195-199 (an error keeps the last
    # stale value), :212-215 (>=);
    # libs/server-sdk/src/config/builders/big_segments_builder.cpp:16 (120 s).
    Sdk.CPP: Profile(
        sdk=Sdk.CPP,
        redis_parse=parse_cpp,
        redis_empty_is_missing=False,
        dynamodb_parse=parse_cpp,
        dynamodb_non_n=Read.FAILED,
        read_error_available=False,
        read_error_keeps_stale=True,
        compare=Compare.AT_LEAST,
        default_stale_after=None,
        redis_empty_prefix="",
        dynamodb_empty_prefix=DYNAMODB_EMPTY_HEAD,
    ),
    # ld-relay internal/bigsegments/store_redis.go:189-202 (ParseInt, signed),
    # internal/bigsegments/store_dynamodb.go:264-287 (ParseUint of N);
    # relay/endpoints_status.go:108-127 (`now > sync + threshold`, strict);
    # config/config.go:53-54 (BIG_SEGMENTS_STALE_THRESHOLD, 5 minutes);
    # internal/sdks/data_stores.go:129-148,175-190 (prefixes).
    Sdk.RELAY: Profile(
        sdk=Sdk.RELAY,
        redis_parse=parse_go_int,
        redis_empty_is_missing=False,
        dynamodb_parse=parse_go_uint,
        dynamodb_non_n=Read.MISSING,
        read_error_available=False,
        read_error_keeps_stale=False,
        compare=Compare.MORE_THAN,
        default_stale_after=Sdk.RELAY.default_stale_after,
        redis_empty_prefix=REDIS_EMPTY_HEAD,
        dynamodb_empty_prefix=DYNAMODB_EMPTY_HEAD,
    ),
}

# What the report must tell the users of a profile whose status cannot be trusted.
PROFILE_NOTES: dict[Sdk, str] = {
    Sdk.PHP: (
        "The PHP SDK cannot see a big segment store outage: its Redis stores "
        "swallow every error and report available, and it compares time() in "
        "seconds with synchronizedOn in milliseconds, so it never reports stale "
        "while the key exists (php-server-sdk-redis-predis "
        "RedisBigSegmentsStore.php:41-55; php-server-sdk "
        "BigSegmentsStoreMetadata.php:30-36). The monitor shows what PHP reports; "
        "watch ld_store_probe_up and the sync age instead."
    ),
}


def profile_of(sdk: Sdk) -> Profile:
    """The rule table of `sdk`."""
    return PROFILES[sdk]


def parse(profile: Profile, raw: RawMetadata) -> Parsed:
    """What `profile`'s SDK makes of the metadata value read."""
    if raw.value is None:
        return Read.MISSING
    if raw.store == "redis":
        if raw.value == "" and profile.redis_empty_is_missing:
            return Read.MISSING
        return profile.redis_parse(raw.value)
    if raw.attribute_type != "N":
        return profile.dynamodb_non_n
    return profile.dynamodb_parse(raw.value)


def is_stale(
    profile: Profile, synchronized_on: int | Decimal, now: float, stale_after: float
) -> bool:
    """The profile's age test of a parsed `synchronizedOn`."""
    if profile.compare is Compare.PHP_SECONDS:
        return int(now) - synchronized_on >= int(stale_after)
    age = int(now * 1000) - synchronized_on
    limit = int(stale_after * 1000)
    return age > limit if profile.compare is Compare.MORE_THAN else age >= limit


def sdk_status(
    profile: Profile,
    *,
    read_ok: bool,
    synchronized_on_ms: int | None,
    raw: RawMetadata | None,
    now: float,
    stale_after: float,
    last_stale: bool = False,
) -> tuple[bool, bool]:
    """(available, stale) as `profile`'s SDK reading the same store would report.

    `raw` None means the metadata read failed, or a result made without it:
    then `read_ok` and `synchronized_on_ms` (the Python reading) stand in.
    """
    parsed = read_metadata(
        profile, read_ok=read_ok, synchronized_on_ms=synchronized_on_ms, raw=raw
    )
    return status_of(
        profile, parsed, now=now, stale_after=stale_after, last_stale=last_stale
    )


def read_metadata(
    profile: Profile,
    *,
    read_ok: bool,
    synchronized_on_ms: int | None,
    raw: RawMetadata | None,
) -> Parsed:
    """What `profile`'s SDK made of the metadata read: a timestamp, missing or failed.

    It depends on the result alone, not on the time: the scrape keeps it per
    result and only `status_of` runs at every scrape.
    """
    if raw is not None:
        return parse(profile, raw)
    if not read_ok:
        return Read.FAILED
    return Read.MISSING if synchronized_on_ms is None else synchronized_on_ms


def status_of(
    profile: Profile,
    parsed: Parsed,
    *,
    now: float,
    stale_after: float,
    last_stale: bool = False,
) -> tuple[bool, bool]:
    """(available, stale) of what `read_metadata` gave, at time `now`."""
    if parsed is Read.FAILED:
        if profile.read_error_available:
            return True, True
        return False, last_stale if profile.read_error_keeps_stale else False
    if parsed is Read.MISSING:
        return True, True
    return True, is_stale(profile, parsed, now, stale_after)

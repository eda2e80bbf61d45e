"""SDK profiles: one case per cited rule, value -> (available, stale) per profile.

The expected pairs are the SDKs' own, read from their sources (cited beside
each rule in monitor/probes/profiles.py and in docs/sdk-profiles.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import Sdk
from monitor.probes.profiles import (
    PROFILES,
    RawMetadata,
    Read,
    parse_decimal,
    parse_php_int,
    profile_of,
    sdk_status,
)
from monitor.probes.result import ProbeResult, Reason
from monitor.probes.runner import TargetRecord

NOW = 1_800_000_000.0  # seconds
FRESH = str(int(NOW * 1000) - 1000)  # one second old, in ms
UNDERSCORED = f"{FRESH[:1]}_{FRESH[1:]}"

# Column order of every expectation tuple below.
ORDER = (
    Sdk.PYTHON,
    Sdk.PYTHON_ASYNC,
    Sdk.GO,
    Sdk.JAVA,
    Sdk.NODE,
    Sdk.DOTNET,
    Sdk.RUBY,
    Sdk.PHP,
    Sdk.CPP,
    Sdk.RELAY,
)
A = (True, True)  # available, stale
F = (True, False)  # available, fresh
U = (False, False)  # unavailable

# Redis synchronizedOn values.
#               python async go java node dotnet ruby php cpp relay
REDIS = {
    "missing": (A, A, A, A, A, A, A, A, A, A),
    "fresh": (F, F, F, F, F, F, F, F, F, F),
    "": (U, A, U, A, A, A, A, A, U, U),
    "12abc": (U, U, U, U, A, U, A, A, U, U),
    "1.5": (U, U, U, U, A, U, A, A, U, U),
    f"{FRESH}.5": (U, U, U, U, F, U, F, F, U, U),
    f"{FRESH}abc": (U, U, U, U, F, U, F, F, U, U),
    f" {FRESH}": (F, F, U, U, F, F, F, F, F, U),
    f"{FRESH} ": (F, F, U, U, F, F, F, F, U, U),
    f"+{FRESH}": (F, F, U, F, F, F, F, F, F, F),
    UNDERSCORED: (F, F, U, U, A, U, F, A, U, U),
    "-5": (A, A, U, A, A, A, A, A, A, A),
    "abc": (U, U, U, U, A, U, A, A, U, U),
    "0": (A, A, A, A, A, A, A, A, A, A),
    "99999999999999999999": (F, F, U, U, F, U, F, F, U, U),
}

# DynamoDB synchronizedOn attributes: (type, text).
DYNAMODB = {
    ("N", FRESH): (F, F, F, F, F, F, F, F, F, F),
    # PHP has no DynamoDB store: Python's parsing, PHP's error and age rules.
    ("N", "1.5"): (U, U, A, U, A, U, A, A, U, U),
    ("N", f"{FRESH}.5"): (U, U, A, U, F, U, F, A, U, U),
    ("S", FRESH): (A, A, A, A, A, A, U, A, U, A),
    ("N", "-5"): (A, A, A, A, A, A, A, A, A, U),
}


def status(sdk: Sdk, raw: RawMetadata | None, **kw: object) -> tuple[bool, bool]:
    profile = profile_of(sdk)
    stale_after = profile.default_stale_after or 120.0
    return sdk_status(
        profile,
        read_ok=raw is not None,
        synchronized_on_ms=None,
        raw=raw,
        now=NOW,
        stale_after=stale_after,
        **kw,  # type: ignore[arg-type]
    )


def test_every_sdk_has_a_profile() -> None:
    """The table covers every `Sdk` value, each under its own name."""
    assert set(PROFILES) == set(Sdk) == set(ORDER)
    assert all(profile.sdk is sdk for sdk, profile in PROFILES.items())


@pytest.mark.parametrize(("value", "expected"), list(REDIS.items()), ids=repr)
@pytest.mark.parametrize("sdk", ORDER, ids=str)
def test_redis_value(
    sdk: Sdk, value: str, expected: tuple[tuple[bool, bool], ...]
) -> None:
    """A Redis synchronizedOn string, parsed as each SDK parses it."""
    text = None if value == "missing" else FRESH if value == "fresh" else value
    raw = RawMetadata("redis", text)
    assert status(sdk, raw) == expected[ORDER.index(sdk)]


@pytest.mark.parametrize(("attribute", "expected"), list(DYNAMODB.items()), ids=repr)
@pytest.mark.parametrize("sdk", ORDER, ids=str)
def test_dynamodb_attribute(
    sdk: Sdk, attribute: tuple[str, str], expected: tuple[tuple[bool, bool], ...]
) -> None:
    """A DynamoDB synchronizedOn attribute, read as each SDK reads it."""
    kind, text = attribute
    raw = RawMetadata("dynamodb", text, kind)
    assert status(sdk, raw) == expected[ORDER.index(sdk)]


@pytest.mark.parametrize("sdk", ORDER, ids=str)
def test_read_error(sdk: Sdk) -> None:
    """A failed metadata read: (0,0), but PHP swallows it and C++ keeps its stale."""
    expected = {Sdk.PHP: A, Sdk.CPP: (False, True)}.get(sdk, U)
    assert status(sdk, None, last_stale=True) == expected


# (age in ms, stale?) at the profile's threshold: >= for most, > for Java and Relay.
@pytest.mark.parametrize("sdk", ORDER, ids=str)
def test_stale_comparison_at_the_threshold(sdk: Sdk) -> None:
    """Exactly `stale_after` old: stale for `>=`, not for Java's and Relay's `>`."""
    threshold = profile_of(sdk).default_stale_after or 120.0
    at = str(int(NOW * 1000) - int(threshold * 1000))
    past = str(int(NOW * 1000) - int(threshold * 1000) - 1)
    strict = sdk in {Sdk.JAVA, Sdk.RELAY}
    never = sdk is Sdk.PHP  # seconds against milliseconds: never stale
    assert status(sdk, RawMetadata("redis", at)) == (True, not (strict or never))
    assert status(sdk, RawMetadata("redis", past)) == (True, not never)


def test_relay_defaults_to_five_minutes_and_the_sdks_to_probe_stale_after() -> None:
    """Relay's BIG_SEGMENTS_STALE_THRESHOLD is 5 minutes; no SDK has its own default."""
    assert Sdk.RELAY.default_stale_after == 300.0
    assert PROFILES[Sdk.RELAY].default_stale_after == 300.0
    others = [p.default_stale_after for s, p in PROFILES.items() if s is not Sdk.RELAY]
    assert others == [None] * (len(PROFILES) - 1)


def test_php_reports_a_millisecond_timestamp_fresh_however_old() -> None:
    """PHP compares time() in seconds with milliseconds: a day-old store is fresh."""
    day_old = str(int(NOW * 1000) - 86_400_000)
    assert status(Sdk.PHP, RawMetadata("redis", day_old)) == F
    assert status(Sdk.PYTHON, RawMetadata("redis", day_old)) == A


@pytest.mark.parametrize(
    ("sdk", "redis", "dynamodb"),
    [
        (Sdk.PYTHON, "launchdarkly:", ""),
        (Sdk.GO, "launchdarkly:", ""),
        (Sdk.RUBY, ":", ":"),
        (Sdk.CPP, "", ""),
        (Sdk.RELAY, "launchdarkly:", ""),
    ],
)
def test_empty_prefix_layout(sdk: Sdk, redis: str, dynamodb: str) -> None:
    """What an empty prefix means to each SDK (Ruby keeps it; C++ has no default)."""
    profile = profile_of(sdk)
    assert (profile.redis_empty_prefix, profile.dynamodb_empty_prefix) == (
        redis,
        dynamodb,
    )


@pytest.mark.parametrize(
    ("read_ok", "sync_ms", "expected"),
    [(False, None, U), (True, None, A), (True, int(FRESH), F), (True, 1, A)],
)
def test_python_without_raw_is_the_historical_rule(
    read_ok: bool, sync_ms: int | None, expected: tuple[bool, bool]
) -> None:
    """A result with no raw value (made by hand) falls back on read_ok/synchronizedOn."""
    assert (
        sdk_status(
            profile_of(Sdk.PYTHON),
            read_ok=read_ok,
            synchronized_on_ms=sync_ms,
            raw=None,
            now=NOW,
            stale_after=120.0,
        )
        == expected
    )


def test_cpp_keeps_the_stale_of_its_last_good_status_while_unavailable() -> None:
    """C++: a read error gives (0, last stale); every other profile (0, 0)."""
    stale_read = ProbeResult(
        NOW - 30, 0.001, True, True, True, int(NOW * 1000) - 600_000,
        raw=RawMetadata("redis", str(int(NOW * 1000) - 600_000)),
    )  # fmt: skip
    failed = ProbeResult(NOW, 0.001, False, False, None, None, Reason.REFUSED, "x")
    record = TargetRecord(result=failed, last_available=stale_read)
    for sdk in Sdk:
        last = record.last_stale(120.0, sdk)
        expected = {Sdk.CPP: (False, True), Sdk.PHP: A}.get(sdk, U)
        assert failed.sdk_status(NOW, 120.0, sdk, last_stale=last) == expected
    assert TargetRecord(result=failed).last_stale(120.0, Sdk.CPP) is False


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (parse_php_int, "1e999", 0),  # PHP casts INF to 0
        (parse_php_int, "1e30", 2**63 - 1),
        (parse_decimal, "NaN", Read.FAILED),
        (parse_decimal, "Infinity", Read.FAILED),
        (parse_decimal, "1e400", Read.FAILED),
    ],
)
def test_hostile_numbers_never_raise(parse: Any, text: str, expected: Any) -> None:
    """Values no real store holds parse to a result, never an exception that
    would break the verdict of every scrape."""
    assert parse(text) == expected

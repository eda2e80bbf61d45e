"""Tolerant parsing of LaunchDarkly replies: odd fields dropped, items kept."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.launchdarkly.errors import ApiError, ApiErrorKind
from monitor.launchdarkly.models import (
    MAX_ERRORS_KEPT,
    MAX_LIST_ITEMS,
    MAX_STRING_CHARS,
    PROBLEM_SAMPLE,
    DynamoDBSettings,
    Problems,
    RedisSettings,
    parse_environment,
    parse_integration,
    parse_integration_list,
)


def item(**overrides: Any) -> dict[str, Any]:
    """A valid list item, as the API returns it."""
    base: dict[str, Any] = {
        "_id": "0123456789abcdef01234567",
        "_links": {},
        "integrationKey": "redis",
        "projectKey": "web",
        "environmentKey": "production",
        "name": "Prod Redis",
        "on": True,
        "tags": [],
        "version": 3,
        "config": {
            "host": "redis.example.com",
            "port": "6380",
            "username": "ld",
            "password": "sup********123",
            "tlsEnabled": True,
        },
        "_status": {
            "available": True,
            "potentiallyStale": False,
            "lastSync": 1_717_263_000_000,
            "errors": [],
        },
        "unknownField": {"ignored": True},
    }
    base.update(overrides)
    return base


def test_valid_item_parses_every_field() -> None:
    """A well-formed item yields its identity, status and settings; unknown fields ignored."""
    problems = Problems()
    [integration] = parse_integration_list({"items": [item()]}, problems)
    assert problems.items == []
    assert integration.id == "0123456789abcdef01234567"
    assert integration.kind == "redis"
    assert (integration.project, integration.environment, integration.version) == (
        "web",
        "production",
        3,
    )
    assert integration.status.available is True
    assert integration.status.last_sync_ms == 1_717_263_000_000
    assert integration.settings == RedisSettings(
        host="redis.example.com", port=6380, username="ld", tls_enabled=True
    )


def test_wrong_types_drop_the_field_and_keep_the_item() -> None:
    """lastSync as a string and port as a number are reported; the item stays monitored."""
    problems = Problems()
    raw = item(
        _status={
            "available": "yes",
            "lastSync": "1717263000000",
            "potentiallyStale": True,
        },
        config={"host": "h", "port": 6379},
    )
    [integration] = parse_integration_list({"items": [raw]}, problems)
    assert integration.status.available is None
    assert integration.status.last_sync_ms is None
    assert integration.status.potentially_stale is True
    assert integration.settings == RedisSettings(
        host="h", port=6379, username=None, tls_enabled=False
    )
    assert problems.items == [
        "items.0._status.available: expected boolean, got str",
        "items.0._status.lastSync: expected integer, got str",
        "items.0.config.port: expected string, got int",
    ]


def test_a_list_item_with_an_empty_or_no_config_is_normal() -> None:
    """List items are summaries: `config: {}` or none is no problem (the detail has it)."""
    problems = Problems()
    without = item(_id="ffffffffffffffffffffffff")
    del without["config"]
    parsed = parse_integration_list(
        {
            "items": [
                item(config={}),
                without,
                item(
                    _id="aaaaaaaaaaaaaaaaaaaaaaaa",
                    integrationKey="dynamodb",
                    config={},
                ),
            ]
        },
        problems,
    )
    assert problems.items == []
    assert [i.settings for i in parsed] == [None, None, None]


def test_a_list_item_with_a_malformed_config_is_still_a_problem() -> None:
    """A non-empty config that does not fit is reported, in the list as anywhere."""
    problems = Problems()
    parse_integration_list(
        {"items": [item(config={"port": "6379"}), item(_id="f" * 24, config=[])]},
        problems,
    )
    assert problems.items == [
        "items.0.config.host: missing",
        "items.1.config: expected object, got list",
    ]


def test_a_detail_reply_with_an_empty_config_is_a_problem() -> None:
    """The detail GET is where the config comes from: empty there is reported."""
    problems = Problems()
    integration = parse_integration(item(config={}), "integration", problems)
    assert integration is not None
    assert integration.settings is None
    assert problems.items == ["integration.config.host: missing"]


def test_missing_status_is_a_problem_not_a_crash() -> None:
    """An item without _status keeps an empty status."""
    problems = Problems()
    raw = item()
    del raw["_status"]
    [integration] = parse_integration_list({"items": [raw]}, problems)
    assert integration.status.available is None
    assert problems.items == ["items.0._status: missing"]


def test_unknown_kind_duplicates_and_garbage_are_skipped() -> None:
    """Unknown integrationKey, duplicate ids and non-objects are dropped; the rest kept."""
    problems = Problems()
    items = [
        item(),
        item(integrationKey="consul", _id="ffffffffffffffffffffffff"),
        item(name="duplicate"),
        "not an object",
        item(
            _id="aaaaaaaaaaaaaaaaaaaaaaaa",
            integrationKey="dynamodb",
            config={"tableName": "t", "region": "us-east-1"},
        ),
    ]
    parsed = parse_integration_list({"items": items}, problems)
    assert [i.id for i in parsed] == [
        "0123456789abcdef01234567",
        "aaaaaaaaaaaaaaaaaaaaaaaa",
    ]
    assert parsed[0].name == "Prod Redis"
    assert parsed[1].settings == DynamoDBSettings(table_name="t", region="us-east-1")
    assert problems.items == [
        "items.1.integrationKey: unknown integration kind 'consul'",
        "items.2._id: duplicate id 0123456789abcdef01234567, kept the first",
        "items.3: expected object, got str",
    ]


def test_huge_errors_list_is_capped_but_counted() -> None:
    """A huge errors[] keeps MAX_ERRORS_KEPT entries in memory yet reports the full count."""
    problems = Problems()
    errors = [
        {"statusCode": 500, "message": f"e{i}", "timestamp": i} for i in range(5000)
    ]
    [integration] = parse_integration_list(
        {"items": [item(_status={"errors": errors})]}, problems
    )
    assert len(integration.status.errors) == MAX_ERRORS_KEPT
    assert integration.status.errors_total == 5000
    assert problems.items == [
        f"items.0._status.errors: 5000 entries, kept the first {MAX_ERRORS_KEPT}"
    ]


def test_reply_without_items_is_reported() -> None:
    """A reply that is not a collection is an error of the API, never "no
    integrations" (that would silently drop every store), and one problem."""
    problems = Problems()
    with pytest.raises(ApiError, match="no items array") as caught:
        parse_integration_list({"message": "huh"}, problems)
    assert caught.value.kind == ApiErrorKind.MALFORMED
    assert problems.items == ["items: the reply has no items array"]


def test_reply_whose_items_are_all_unusable_is_an_error() -> None:
    """Items none of which can be identified: an error, not an empty account;
    an empty items array is an empty account."""
    problems = Problems()
    with pytest.raises(ApiError, match="none of the 3 listed items"):
        parse_integration_list({"items": [{}, {"_id": "x"}, 7]}, problems)
    assert problems.count == 3
    assert parse_integration_list({"items": []}, Problems()) == []


def test_too_many_items_are_an_error_not_memory() -> None:
    """More than MAX_LIST_ITEMS items: refused before any item is parsed."""
    problems = Problems()
    with pytest.raises(ApiError, match="more than"):
        parse_integration_list({"items": [{}] * (MAX_LIST_ITEMS + 1)}, problems)
    assert problems.count == 1


def test_problems_keep_a_count_and_a_bounded_sample() -> None:
    """A million bad items cost a counter, not a million strings."""
    problems = Problems()
    for index in range(100_000):
        problems.add(f"items.{index}", "expected object, got int")
    assert problems.count == 100_000
    assert len(problems.items) == PROBLEM_SAMPLE


def test_an_over_long_string_field_is_dropped_and_a_message_cut() -> None:
    """Per-item size is bounded: a string over MAX_STRING_CHARS is a problem
    (an error message is cut instead)."""
    problems = Problems()
    item = {
        "_id": "a" * 24,
        "integrationKey": "redis",
        "projectKey": "web",
        "environmentKey": "production",
        "name": "n" * (MAX_STRING_CHARS + 1),
        "_status": {"errors": [{"message": "m" * 10 * MAX_STRING_CHARS}]},
    }
    integration = parse_integration(item, "items.0", problems)
    assert integration is not None
    assert integration.name == ""
    assert len(integration.status.errors[0].message) == MAX_STRING_CHARS + 1
    assert problems.items == [
        f"items.0.name: longer than {MAX_STRING_CHARS} characters"
    ]
    too_long_id = {**item, "_id": "i" * (MAX_STRING_CHARS + 1)}
    assert parse_integration(too_long_id, "items.1", Problems()) is None


def test_an_id_with_the_reserved_prefix_is_refused() -> None:
    """`api:` is the prefix the monitor gives a colliding integration: the API
    may not use it, so no two targets can share an id."""
    problems = Problems()
    item = {
        "_id": "api:relay",
        "integrationKey": "redis",
        "projectKey": "web",
        "environmentKey": "production",
    }
    assert parse_integration(item, "items.0", problems) is None
    assert problems.items == ["items.0._id: an id may not start with 'api:'"]


def test_environment_keeps_only_the_client_side_id() -> None:
    """The environment model holds _id and never the SDK or mobile key."""
    problems = Problems()
    env = parse_environment(
        {"_id": "cid", "apiKey": "sdk-secret", "mobileKey": "mob-secret"},
        "web",
        "prod",
        problems,
    )
    assert env is not None
    assert env.client_side_id == "cid"
    assert "sdk-secret" not in repr(env)
    assert "mob-secret" not in repr(env)


def test_bool_is_not_accepted_as_an_integer() -> None:
    """version: true is a wrong type, not version 1."""
    problems = Problems()
    [integration] = parse_integration_list({"items": [item(version=True)]}, problems)
    assert integration.version is None
    assert problems.items == ["items.0.version: expected integer, got bool"]


def test_numbers_beyond_64_bits_and_nan_are_dropped_as_problems() -> None:
    """A 400-digit lastSync, NaN and a float where an integer belongs: each
    field is dropped (None) and counted, the integration is kept."""
    problems = Problems()
    item = parse_integration(
        {
            "_id": "i1",
            "integrationKey": "redis",
            "projectKey": "p",
            "environmentKey": "e",
            "version": float("nan"),
            "_status": {
                "lastSync": 10**400,
                "lastError": 1.5,
                "errors": [{"statusCode": -(10**30), "timestamp": 10**19}],
            },
        },
        "item",
        problems,
    )
    assert item is not None
    assert item.version is None
    assert item.status.last_sync_ms is None
    assert item.status.last_error_ms is None
    assert item.status.errors[0].status_code is None
    assert item.status.errors[0].timestamp_ms is None
    assert "item._status.lastSync: out of range: an integer of about 401 digits" in (
        problems.items
    )
    assert problems.count == 5


def test_lone_surrogates_and_control_characters_are_replaced() -> None:
    """A string that UTF-8 cannot encode (an unpaired surrogate), or one with
    control characters, is made safe where it is parsed: U+FFFD, a problem."""
    problems = Problems()
    item = parse_integration(
        {
            "_id": "i\ud800",
            "integrationKey": "redis",
            "projectKey": "p",
            "environmentKey": "e",
            "name": "bad \udfff name\x1b[2J\x00\ttab",
            "_status": {"errors": [{"message": "x\ud800" * MAX_STRING_CHARS}]},
        },
        "item",
        problems,
    )
    assert item is not None
    assert item.id == "i\ufffd"
    assert item.name == "bad \ufffd name\ufffd[2J\ufffd\ttab"
    assert item.status.errors[0].message.startswith("x\ufffdx\ufffd")
    for text in (item.id, item.name, item.status.errors[0].message):
        text.encode("utf-8")  # never raises
    assert "item.name: unpaired surrogates or control characters replaced" in (
        problems.items
    )


@pytest.mark.parametrize("port", ["9" * 5000, "\uff16\uff13\uff17\uff19", "²", "1" * 6])
def test_a_port_that_is_no_port_number_is_a_problem(port: str) -> None:
    """Long digit strings (int() would refuse over 4,300 digits), non-ASCII
    digits: a problem, never an exception."""
    problems = Problems()
    item = parse_integration(
        {
            "_id": "i1",
            "integrationKey": "redis",
            "projectKey": "p",
            "environmentKey": "e",
            "config": {"host": "h", "port": port},
        },
        "item",
        problems,
    )
    assert item is not None
    assert item.settings is None
    assert any(".port" in p for p in problems.items)

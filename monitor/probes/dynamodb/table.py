"""DynamoDB checks beyond freshness: the membership sample and canary contexts.

The membership sample is one `Query` with `Limit 1` on the partition
`{prefix}:big_segments_user`: it needs `dynamodb:Query`, which the minimal
policy leaves out, so without it the series stays absent (logged once).
Canaries are one `GetItem` each on `{prefix}:big_segments_user` / context
hash, within the minimal policy.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from monitor.probes.canary import checkable, evaluate_canary
from monitor.probes.dynamodb.failures import classify
from monitor.probes.result import CanaryResult
from monitor.store_keys import (
    DYNAMODB_EMPTY_HEAD,
    DYNAMODB_EXCLUDED_ATTRIBUTE,
    DYNAMODB_INCLUDED_ATTRIBUTE,
    DYNAMODB_PARTITION_KEY,
    DYNAMODB_SORT_KEY,
    dynamodb_membership_namespace,
)
from monitor.targets import CanaryCheck


async def query_membership(
    client: Any, table: str, prefix: str, empty: str = DYNAMODB_EMPTY_HEAD
) -> bool:
    """True when the membership partition holds at least one item.

    `empty`: what an empty prefix gives, as the target's SDK lays names out."""
    response = await client.query(
        TableName=table,
        KeyConditionExpression="#ns = :ns",
        ExpressionAttributeNames={"#ns": DYNAMODB_PARTITION_KEY},
        ExpressionAttributeValues={
            ":ns": {"S": dynamodb_membership_namespace(prefix, empty)}
        },
        Limit=1,
    )
    count = response.get("Count", 0)
    return isinstance(count, int) and count > 0


def _string_set(item: Any, attribute: str) -> set[str] | None:
    """The SS attribute of a membership item; None when the item is malformed."""
    if not isinstance(item, dict):
        return None
    value = item.get(attribute, {})
    members = value.get("SS", []) if isinstance(value, dict) else None
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        return None
    return set(members)


async def check_canaries(
    client: Any,
    table: str,
    prefix: str,
    checks: tuple[CanaryCheck, ...],
    empty: str = DYNAMODB_EMPTY_HEAD,
) -> tuple[CanaryResult, ...]:
    """Each canary's outcome from its context's membership item."""
    results = []
    for check in checks:
        if not checkable(check):
            results.append(evaluate_canary(check, (), ()))
            continue
        try:
            response = await client.get_item(
                TableName=table,
                Key={
                    DYNAMODB_PARTITION_KEY: {
                        "S": dynamodb_membership_namespace(prefix, empty)
                    },
                    DYNAMODB_SORT_KEY: {"S": check.context_hash},
                },
            )
        except (BotoCoreError, ClientError) as err:
            _, message, _ = classify(err)
            results.append(evaluate_canary(check, (), (), f"GetItem failed: {message}"))
            continue
        item = response.get("Item") or {}
        includes = _string_set(item, DYNAMODB_INCLUDED_ATTRIBUTE)
        excludes = _string_set(item, DYNAMODB_EXCLUDED_ATTRIBUTE)
        if includes is None or excludes is None:
            detail = "GetItem returned a malformed membership item"
            results.append(evaluate_canary(check, (), (), detail))
            continue
        results.append(evaluate_canary(check, includes, excludes))
    return tuple(results)

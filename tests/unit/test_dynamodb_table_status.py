"""DescribeTable's TableStatus as the probe reads it: only statuses that fail reads count.

The SDKs never call DescribeTable; they read. An `UPDATING` table (capacity,
index or stream changes) "remains available for data operations" (AWS), so
it is no schema problem; CREATING, DELETING, ARCHIVING, ARCHIVED and
INACCESSIBLE_ENCRYPTION_CREDENTIALS fail reads and are.
"""

from __future__ import annotations

from typing import Any

import pytest

from monitor.probes.dynamodb.probe import check_table
from monitor.probes.result import TableInfo


def describe_table_reply(status: str) -> dict[str, Any]:
    """DescribeTable's `Table` for a big segment table with this status."""
    return {
        "TableName": "ld-big-segments",
        "TableStatus": status,
        "KeySchema": [
            {"AttributeName": "namespace", "KeyType": "HASH"},
            {"AttributeName": "key", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "namespace", "AttributeType": "S"},
            {"AttributeName": "key", "AttributeType": "S"},
        ],
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "ItemCount": 12,
    }


@pytest.mark.parametrize("status", ["ACTIVE", "UPDATING"])
def test_a_status_that_serves_reads_is_no_problem(status: str) -> None:
    """ACTIVE and UPDATING: readable, nothing reported."""
    info, problems = check_table(describe_table_reply(status))
    assert problems == []
    assert info == TableInfo(status, "PAY_PER_REQUEST", 12)
    assert info.readable


@pytest.mark.parametrize(
    "status",
    [
        "CREATING",
        "DELETING",
        "ARCHIVING",
        "ARCHIVED",
        "INACCESSIBLE_ENCRYPTION_CREDENTIALS",
    ],
)
def test_a_status_in_which_reads_fail_is_a_problem(status: str) -> None:
    """Every other status is reported, naming it."""
    info, problems = check_table(describe_table_reply(status))
    assert not info.readable
    assert problems == [
        f"table status is {status}; reads fail until it is ACTIVE "
        "(or UPDATING, which still serves them)"
    ]


def test_a_reply_without_a_status_is_not_readable() -> None:
    """No TableStatus at all is UNKNOWN, and not taken for readable."""
    reply = describe_table_reply("ACTIVE")
    del reply["TableStatus"]
    info, problems = check_table(reply)
    assert info.table_status == "UNKNOWN"
    assert not info.readable
    assert len(problems) == 1

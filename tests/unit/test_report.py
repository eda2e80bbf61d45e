"""The typed report: its `/status` JSON, its redaction, the debug probe's view.

`/status` is public: scripts read its keys. A fixed state with every kind of
row (stale, disagreeing, down, static, off, not probeable) serialises to
the pinned JSON in tests/data/status-golden.json byte for byte. That file
was written by the report as it was before it was typed (plain dicts), so
the typed report is held to the same keys, values and order. A deliberate
change to `/status` regenerates it (see `write_golden`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, cast
from unittest import mock

import pytest

from monitor.config import Config, Sdk
from monitor.export.report import Report, Row, build_report
from monitor.export.verdict import Disagreement, Verdict
from monitor.launchdarkly.counters import ApiCounters
from monitor.launchdarkly.discovery import DiscoveredIntegration, DiscoveryView
from monitor.launchdarkly.models import ApiStatus, Integration, StoreError
from monitor.log import MASK, Redactor
from monitor.probes.result import (
    CanaryResult,
    ProbeResult,
    Reason,
    RedisHealth,
    Step,
    TableInfo,
)
from monitor.probes.runner import ProbeRunner, TargetRecord
from monitor.service.state import MonitorState
from monitor.targets import DynamoDBEndpoint, Labels, RedisEndpoint, Target
from monitor.web.debug_probe import DebugProber

NOW = 1_800_000_000.0
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "status-golden.json"
SECRET = "WRONGPASS-s3cr3t"


def ms(seconds_ago: float) -> int:
    """Epoch milliseconds that long before NOW."""
    return int((NOW - seconds_ago) * 1000)


def api_target(
    target_id: str,
    kind: str,
    project: str,
    environment: str,
    endpoint: RedisEndpoint | DynamoDBEndpoint | None,
    **more: Any,
) -> Target:
    """An integration's target, named after its id."""
    labels = Labels(project, environment, kind, target_id)
    return Target(
        target_id, "api", labels, f"{target_id} store", "cid", endpoint, **more
    )


def listed(target: Target, status: ApiStatus, on: bool = True) -> DiscoveredIntegration:
    """The integration behind `target` as discovery lists it."""
    kind: Literal["redis", "dynamodb"] = (
        "redis" if target.kind == "redis" else "dynamodb"
    )
    labels = target.labels
    integration = Integration(
        target.id, kind, labels.project, labels.environment, target.name, on, 1, status
    )
    return DiscoveredIntegration(integration, "cid")


def known_state() -> MonitorState:
    """Every kind of row: stale with findings, disagreeing, down, static, off, unprobeable."""
    stale = api_target("i-redis", "redis", "web", "prod", RedisEndpoint("r1", 6379))
    disagreeing = api_target(
        "i-ddb", "dynamodb", "web", "prod", DynamoDBEndpoint("ld-segs", "us-east-1")
    )
    down = api_target("i-down", "redis", "mobile", "prod", RedisEndpoint("r2", 6380))
    static = Target(
        "relay", "static", Labels("", "", "redis", "relay"), "relay", "",
        RedisEndpoint("relay.internal", 6379),
    )  # fmt: skip
    off = api_target("i-off", "redis", "web", "staging", None, on=False)
    unprobeable = api_target(
        "i-pend", "dynamodb", "web", "staging", None, problem="no credentials match"
    )
    items = (
        listed(stale, ApiStatus(True, False, ms(10))),
        listed(
            disagreeing,
            ApiStatus(
                available=False,
                potentially_stale=True,
                last_sync_ms=ms(4000),
                last_error_ms=ms(60),
                errors=(
                    StoreError(503, "i/o timeout", ms(60)),
                    StoreError(None, "reset", None),
                ),
                errors_total=7,
            ),
        ),
        listed(down, ApiStatus(True, False, ms(20))),
        listed(off, ApiStatus(), on=False),
        listed(unprobeable, ApiStatus()),
    )
    records = {
        stale.id: TargetRecord(
            result=ProbeResult(
                NOW - 1, 0.0021234567, True, True, True, ms(600),
                phases=(("connect", 0.0011111111), ("read", 0.0009)),
                steps=(Step("connect", 0.001, True), Step("read", 0.0009, True, "ok")),
                tls_not_after=NOW + 86400 * 3,
                membership_present=False,
                redis=RedisHealth("7.2.4", "allkeys-lru", 1000, 500, True),
                canaries=(
                    CanaryResult("beta", False, "excluded"),
                    CanaryResult("alpha", None, "unknown segment"),
                ),
            ),
            failures=Counter({Reason.TIMEOUT: 2, Reason.AUTH: 1}),
        ),
        disagreeing.id: TargetRecord(
            result=ProbeResult(
                NOW - 2, 0.05, True, True, True, ms(5),
                table=TableInfo("ACTIVE", "PAY_PER_REQUEST", 42),
            )
        ),
        down.id: TargetRecord(
            result=ProbeResult(
                NOW - 3, 2.0, False, False, None, None, Reason.AUTH,
                f"authentication failed: {SECRET}", phases=(("connect", 0.01),),
            ),
            failures=Counter({Reason.AUTH: 4}),
            consecutive_failures=4,
            backoff=40.0,
        ),
        static.id: TargetRecord(
            result=ProbeResult(NOW - 4, 0.001, True, True, True, ms(30))
        ),
    }  # fmt: skip
    counters = ApiCounters()
    counters.rate_limit_remaining.update({"global": 90, "route:get_segment": 7})
    view = DiscoveryView(
        items,
        api_up=True,
        completed=True,
        last_success=NOW - 3,
        last_error="environment fetch failed",
        pending_details=1,
    )
    return MonitorState(
        config=Config(),
        view=view,
        api=counters,
        records=records,
        targets=(stale, disagreeing, down, static, off, unprobeable),
        probed_after_discovery=True,
    )


def known_report() -> Report:
    """The report of `known_state` at NOW, version pinned."""
    return replace(build_report(known_state(), clock=lambda: NOW), version="1.2.3")


def status_json(report: Report) -> str:
    """The report as `/status` writes it (before redaction)."""
    return json.dumps(report.to_json(), indent=2) + "\n"


def write_golden() -> None:
    """Regenerate the pinned file: `python -c 'from tests.unit.test_report import write_golden; write_golden()'`."""
    GOLDEN.write_text(status_json(known_report()), "utf-8")


def row_of(report: Report, target_id: str) -> Row:
    """The report's row of this target."""
    return next(r for r in report.targets if r.id == target_id)


def test_status_json_of_a_known_state_is_unchanged() -> None:
    """Byte for byte the pinned /status JSON: keys, values, nesting and order."""
    assert status_json(known_report()) == GOLDEN.read_text("utf-8")


def test_status_json_has_the_public_keys_in_order() -> None:
    """Every object of /status carries exactly the keys scripts read, in their order."""
    data = known_report().to_json()
    assert list(data) == [
        "version", "generated_at", "ready", "healthy", "stale_after_seconds",
        "api", "targets",
    ]  # fmt: skip
    assert list(data["api"]) == [
        "up", "last_success", "last_error", "pending_details", "rate_limit_remaining",
    ]  # fmt: skip
    rows = {row["id"]: row for row in data["targets"]}
    assert list(rows["i-ddb"]) == [
        "id", "source", "project", "environment", "integration", "name", "on",
        "address", "prefix", "sdk", "stale_after_seconds", "problem", "api", "probe",
        "disagreement", "verdict",
    ]  # fmt: skip
    assert list(rows["i-ddb"]["api"]) == [
        "available", "potentially_stale", "last_sync", "last_sync_age_seconds",
        "last_error", "recent_errors", "errors", "verdict",
    ]  # fmt: skip
    assert list(rows["i-ddb"]["api"]["errors"][0]) == [
        "status_code", "message", "timestamp",
    ]  # fmt: skip
    probe = rows["i-redis"]["probe"]
    assert list(probe) == [
        "up", "success", "available", "stale", "schema_ok", "membership_read_ok",
        "reason", "error", "host_level", "synchronized_on", "sync_age_seconds", "duration_seconds", "phases",
        "tls_not_after", "finished_at", "consecutive_failures", "backoff_seconds",
        "failures", "membership_present", "canaries", "redis", "table", "notes",
        "verdict",
    ]  # fmt: skip
    assert list(probe["canaries"][0]) == ["name", "ok", "detail"]
    assert list(probe["redis"]) == [
        "version", "maxmemory_policy", "maxmemory", "used_memory",
        "persistence_enabled", "eviction_unsafe",
    ]  # fmt: skip
    assert list(probe["notes"][0]) == ["severity", "text"]
    assert list(rows["i-ddb"]["probe"]["table"]) == [
        "table_status", "billing_mode", "item_count",
    ]  # fmt: skip


def test_status_json_is_plain_json_values() -> None:
    """Verdicts, reasons and severities are plain strings, sequences are lists."""
    data = known_report().to_json()
    row = next(r for r in data["targets"] if r["id"] == "i-down")
    assert type(row["verdict"]) is str
    assert type(row["probe"]["reason"]) is str
    assert type(row["probe"]["notes"]) is list
    assert json.loads(json.dumps(data)) == data


def test_rows_are_sorted_worst_first_then_by_name() -> None:
    """Rows come worst verdict first: the store's own trouble before a disagreement."""
    report = known_report()
    assert [(r.id, r.verdict) for r in report.targets] == [
        ("i-down", Verdict.UNAVAILABLE),
        ("i-redis", Verdict.STALE),
        ("i-ddb", Verdict.DISAGREEMENT),
        ("i-pend", Verdict.PENDING),
        ("relay", Verdict.HEALTHY),
        ("i-off", Verdict.OFF),
    ]


@pytest.mark.parametrize(
    ("target_id", "kind", "written"),
    [
        ("i-redis", Disagreement.STORE_STALE, True),
        ("i-ddb", Disagreement.API_UNAVAILABLE_BUT_FRESH, True),
        ("i-down", None, None),  # the store is unreadable: nothing to compare
        ("relay", None, None),  # a static target: LaunchDarkly has no view
    ],
)
def test_rows_keep_the_disagreement_kind_and_json_keeps_a_boolean(
    target_id: str, kind: Disagreement | None, written: bool | None
) -> None:
    """A row says which disagreement it is; /status still says true, false or null."""
    report = known_report()
    assert row_of(report, target_id).disagreement is kind
    [row] = [r for r in report.to_json()["targets"] if r["id"] == target_id]
    assert row["disagreement"] is written


def test_agreeing_sides_are_written_as_false() -> None:
    """LaunchDarkly and a fresh store agreeing: `disagreement` is false, not null."""
    state = known_state()
    item = state.view.integrations[0]
    fresh = TargetRecord(result=ProbeResult(NOW - 1, 0.01, True, True, True, ms(5)))
    state.records = {**state.records, item.integration.id: fresh}
    report = build_report(state, clock=lambda: NOW)
    assert row_of(report, "i-redis").disagreement is False
    [row] = [r for r in report.to_json()["targets"] if r["id"] == "i-redis"]
    assert row["disagreement"] is False


def test_redacted_report_masks_strings_and_keeps_the_words() -> None:
    """The typed redaction masks secrets, keeps verdicts and reasons typed, and matches the JSON's."""
    report = known_report()
    redactor = Redactor([SECRET])
    redacted = report.redacted(redactor.text)
    down = row_of(redacted, "i-down")
    assert down.probe is not None
    assert down.probe.error == f"authentication failed: {MASK}"
    assert down.probe.reason is Reason.AUTH
    assert down.verdict is Verdict.UNAVAILABLE
    assert SECRET in status_json(report)  # the original is left alone
    assert redacted.to_json() == redactor.value(report.to_json())


class OneResult:
    """A stand-in runner that probes every target with one canned result."""

    def __init__(self, result: ProbeResult) -> None:
        self.result = result

    def can_probe(self, target: Target) -> bool:
        """Every target can be probed."""
        return True

    async def probe(self, target: Target) -> ProbeResult:
        """The canned result."""
        return self.result


async def test_debug_probe_result_is_the_status_probe_view_plus_ok_and_steps() -> None:
    """/probe's result has ok and every key of a /status row's probe; steps are listed in order."""
    state = known_state()
    record = state.records["i-redis"]
    assert record.result is not None
    runner = cast(ProbeRunner, OneResult(record.result))
    with mock.patch("time.time", return_value=NOW):
        reply = await DebugProber(state, runner).run("i-redis")
    assert reply.status == 200
    probe = row_of(known_report(), "i-redis").probe
    assert probe is not None
    assert reply.body["result"] == {"ok": True, **probe.to_json()}
    assert reply.body["steps"] == [
        {"step": "connect", "seconds": 0.001, "ok": True, "detail": None},
        {"step": "read", "seconds": 0.0009, "ok": True, "detail": "ok"},
    ]
    assert reply.body["target"]["id"] == "i-redis"


def test_a_row_follows_its_targets_sdk_and_threshold() -> None:
    """Each row is judged by its target's profile and stale_after, and says which."""
    state = known_state()
    static = next(t for t in state.targets if t.id == "relay")
    targets = tuple(
        replace(t, sdk=Sdk.RELAY, stale_after=20.0) if t is static else t
        for t in state.targets
    )
    state.targets = targets
    report = build_report(state, clock=lambda: NOW)
    relay = row_of(report, "relay")
    assert (relay.sdk, relay.stale_after_seconds) == (Sdk.RELAY, 20.0)
    assert relay.probe is not None
    assert relay.probe.stale
    other = row_of(report, "i-redis")
    assert (other.sdk, other.stale_after_seconds) == (Sdk.PYTHON, 120.0)
    assert report.to_json()["targets"][-1]["sdk"] in {s.value for s in Sdk}


def test_a_php_row_says_php_cannot_see_the_outage() -> None:
    """PHP swallows errors and is never stale: the row reproduces it and says so."""
    state = known_state()
    state.targets = tuple(
        replace(t, sdk=Sdk.PHP) if t.id in {"i-down", "i-redis"} else t
        for t in state.targets
    )
    report = build_report(state, clock=lambda: NOW)
    down = row_of(report, "i-down").probe
    stale = row_of(report, "i-redis").probe
    assert down is not None
    assert stale is not None
    assert (down.available, down.stale) == (True, True)  # PHP swallows the error
    assert down.verdict is Verdict.FAILING  # for people: the store is failing
    assert (stale.available, stale.stale) == (True, False)  # s against ms
    assert stale.verdict is Verdict.STALE  # for people: the data is old
    for view in (down, stale):
        assert any(
            n.severity is Verdict.HEALTHY and "PHP SDK cannot see" in n.text
            for n in view.notes
        )
    assert not any("PHP" in n.text for r in report.targets if r.sdk is not Sdk.PHP
                   for n in (r.probe.notes if r.probe else ()))  # fmt: skip


def test_a_healthy_php_store_stays_healthy_with_its_note() -> None:
    """The PHP note is a standing fact, not a finding: a fresh PHP store is healthy."""
    state = known_state()
    state.targets = tuple(
        replace(t, sdk=Sdk.PHP) if t.id == "relay" else t for t in state.targets
    )
    view = row_of(build_report(state, clock=lambda: NOW), "relay").probe
    assert view is not None
    assert view.verdict is Verdict.HEALTHY
    assert [n.severity for n in view.notes] == [Verdict.HEALTHY]

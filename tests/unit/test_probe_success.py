"""probe_success and the membership read: which read failed, and what it does to evaluations."""

from __future__ import annotations

from monitor.config import Sdk
from monitor.export.report import (
    MARKER_ONLY_NOTE,
    MEMBERSHIP_FAILING_NOTE,
    probe_view,
)
from monitor.export.verdict import Verdict
from monitor.probes.profiles import RawMetadata
from monitor.probes.result import ProbeResult, Reason, Recorder
from monitor.probes.runner import TargetRecord

NOW = 1_800_000_000.0


def result(**fields: object) -> ProbeResult:
    """A fresh, fully successful Redis probe result, with `fields` changed."""
    values: dict[str, object] = {
        "finished_at": NOW,
        "duration": 0.002,
        "up": True,
        "read_ok": True,
        "schema_ok": True,
        "synchronized_on_ms": int(NOW * 1000) - 5_000,
        "raw": RawMetadata("redis", str(int(NOW * 1000) - 5_000)),
        "membership_read_ok": True,
    }
    values.update(fields)
    return ProbeResult(**values)  # type: ignore[arg-type]


def notes_of(probe: ProbeResult, sdk: Sdk = Sdk.PYTHON) -> list[str]:
    """The texts of the report notes of `probe` under `sdk`."""
    view = probe_view(probe, TargetRecord(), NOW, 120.0, sdk)
    return [note.text for note in view.notes]


def test_both_reads_working_is_success() -> None:
    """Metadata read and membership read both worked: success, and no read note."""
    probe = result()
    assert probe.success()
    assert notes_of(probe) == []


def test_a_failed_membership_read_is_no_success_and_says_contexts_fall_out() -> None:
    """Membership read failed, metadata fine: available stays 1, success 0, failing note."""
    probe = result(
        membership_read_ok=False,
        membership_error="SMEMBERS k failed: NOPERM",
        reason=Reason.NO_PERMISSION,
    )
    assert not probe.success()
    assert probe.sdk_status(NOW, 120.0) == (True, False)
    view = probe_view(probe, TargetRecord(), NOW, 120.0)
    failing = [n for n in view.notes if n.severity is Verdict.FAILING]
    assert [n.text.split(":")[0] for n in failing] == [
        MEMBERSHIP_FAILING_NOTE.split(":")[0]
    ]
    assert "NOPERM" in failing[0].text
    assert view.verdict is Verdict.FAILING


def test_an_unreadable_marker_with_working_membership_says_evaluations_are_right() -> (
    None
):
    """The marker fails to parse, membership reads work: success 0, the marker-only note."""
    probe = result(
        read_ok=False,
        schema_ok=False,
        synchronized_on_ms=None,
        raw=RawMetadata("redis", "12abc"),
        reason=Reason.PARSE,
    )
    assert not probe.success()
    assert MARKER_ONLY_NOTE in notes_of(probe)
    assert MEMBERSHIP_FAILING_NOTE not in " ".join(notes_of(probe))


def test_success_follows_the_profile_that_parses_the_marker() -> None:
    """`"12abc"` fails Python's int() but Node's parseInt reads 12: success per profile."""
    probe = result(
        read_ok=False,
        synchronized_on_ms=None,
        raw=RawMetadata("redis", "12abc"),
        reason=Reason.PARSE,
    )
    assert not probe.success(Sdk.PYTHON)
    assert probe.success(Sdk.NODE)
    assert MARKER_ONLY_NOTE not in notes_of(probe, Sdk.NODE)


def test_a_store_not_reached_is_no_success_and_gets_no_read_note() -> None:
    """Nothing answered: up 0, success 0, and no claim about which read failed."""
    probe = result(
        up=False,
        read_ok=False,
        schema_ok=None,
        synchronized_on_ms=None,
        raw=None,
        membership_read_ok=None,
        reason=Reason.REFUSED,
    )
    assert not probe.success()
    assert notes_of(probe) == []


def test_a_missing_table_is_up_without_success() -> None:
    """A DynamoDB table that does not exist: up 1 (DynamoDB answered), success 0."""
    probe = result(
        read_ok=False,
        schema_ok=None,
        synchronized_on_ms=None,
        raw=None,
        membership_read_ok=None,
        reason=Reason.NOT_FOUND,
    )
    assert probe.up
    assert not probe.success()


def test_a_failed_probe_reports_the_membership_read_failed_too() -> None:
    """A store not read at all (refused, auth): SDKs' membership reads fail as well."""
    probe = Recorder().failure(Reason.REFUSED, "connection refused", NOW)
    assert probe.membership_read_ok is False
    assert probe.membership_error == "connection refused"
    assert not probe.success()
    assert any(text.startswith(MEMBERSHIP_FAILING_NOTE) for text in notes_of(probe))

"""The API-versus-store disagreement rule."""

from __future__ import annotations

from typing import Literal

import pytest

from monitor.export.verdict import Disagreement, sync_disagreement
from monitor.launchdarkly.discovery import DiscoveredIntegration
from monitor.launchdarkly.models import ApiStatus, Integration
from monitor.probes.result import ProbeResult

NOW = 1_800_000_000.0
STALE_AFTER = 120.0


def item(available: bool | None, last_sync_ago: float | None) -> DiscoveredIntegration:
    """An integration whose API status says `available` and synced that long ago."""
    last_sync = None if last_sync_ago is None else int((NOW - last_sync_ago) * 1000)
    status = ApiStatus(available=available, last_sync_ms=last_sync)
    return DiscoveredIntegration(
        Integration("i", "redis", "p", "e", "n", True, 1, status), "cid"
    )


def store(sync_ago: float | None, read_ok: bool = True) -> ProbeResult:
    """A probe that read synchronizedOn that long ago (None: missing)."""
    sync = None if sync_ago is None else int((NOW - sync_ago) * 1000)
    return ProbeResult(NOW, 0.01, True, read_ok, True, sync)


@pytest.mark.parametrize(
    ("api", "probe", "expected"),
    [
        (item(True, 10), store(5), False),  # both fresh
        (
            item(True, 10),
            store(600),
            Disagreement.STORE_STALE,
        ),  # LD synced just now, store stale: wrong store/prefix
        (
            item(True, 10),
            store(None),
            Disagreement.STORE_STALE,
        ),  # LD synced, store never: wrong prefix
        (
            item(False, 3600),
            store(5),
            Disagreement.API_UNAVAILABLE_BUT_FRESH,
        ),  # LD says unavailable, store fresh: someone else writes
        (item(False, 3600), store(600), False),  # both down
        (
            item(True, 100),
            store(600),
            False,
        ),  # LD's sync is not clearly recent: no claim
        (item(None, None), store(5), None),  # LD says nothing
        (
            item(True, 10),
            store(5, read_ok=False),
            None,
        ),  # store unreadable: probe_up covers it
        (None, store(5), None),  # a static target
    ],
)
def test_disagreement_rule(
    api: DiscoveredIntegration | None,
    probe: ProbeResult,
    expected: Disagreement | Literal[False] | None,
) -> None:
    """Disagreement, and which kind, only when one side is clearly fresh and the other clearly not."""
    assert sync_disagreement(api, probe, NOW, STALE_AFTER) is expected

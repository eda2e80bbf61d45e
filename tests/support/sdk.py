"""The LaunchDarkly server SDK's own view of a big segment store, to compare the probe's with."""

from __future__ import annotations

from typing import Any


def sdk_store_status(store: Any, stale_after: float) -> tuple[bool, bool]:
    """(available, stale) as the SDK's big segment manager reports `store`.

    `store` is one the SDK built (`Redis.new_big_segment_store`, ...); the
    manager polls it once and is stopped, the store left to the caller.
    """
    from ldclient.config import BigSegmentsConfig  # noqa: PLC0415 -- test-only dependency
    from ldclient.impl.big_segments import BigSegmentStoreManager  # noqa: PLC0415

    manager = BigSegmentStoreManager(
        BigSegmentsConfig(
            store=store, stale_after=int(stale_after), status_poll_interval=3600
        )
    )
    try:
        status = manager.poll_store_and_update_status()
        return status.available, status.stale
    finally:
        manager.stop()  # type: ignore[no-untyped-call]  # unannotated in the SDK

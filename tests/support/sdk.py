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


async def async_sdk_store_status(store: Any, stale_after: float) -> tuple[bool, bool]:
    """(available, stale) as the asyncio SDK's big segment manager reports `store`.

    `store` is one the asyncio SDK built (`Redis.async_big_segment_store`); the
    manager polls it once, never starts its polling task, and stops the store.
    """
    from ldclient.async_config import AsyncBigSegmentsConfig  # noqa: PLC0415 -- test-only dependency
    from ldclient.impl.async_big_segments import AsyncBigSegmentStoreManager  # noqa: PLC0415

    manager = AsyncBigSegmentStoreManager(
        AsyncBigSegmentsConfig(
            store=store, stale_after=int(stale_after), status_poll_interval=3600
        )
    )
    try:
        status = await manager.poll_store_and_update_status()
        return status.available, status.stale
    finally:
        await manager.stop()  # type: ignore[no-untyped-call]  # unannotated in the SDK


def has_async_redis_big_segment_store() -> bool:
    """True when the installed SDK has the asyncio Redis big segment store (9.16+)."""
    try:
        from ldclient.integrations import Redis  # noqa: PLC0415 -- test-only dependency
    except ImportError:
        return False
    return hasattr(Redis, "async_big_segment_store")

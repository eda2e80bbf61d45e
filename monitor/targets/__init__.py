"""Targets: the model of what to probe, resolved from config and discovery."""

from monitor.targets.model import (
    LABEL_NAMES,
    CanaryCheck,
    DynamoDBEndpoint,
    Labels,
    RedisEndpoint,
    SegmentKey,
    Source,
    Target,
)
from monitor.targets.resolve import canary_segments, resolve_targets

__all__ = [
    "LABEL_NAMES",
    "CanaryCheck",
    "DynamoDBEndpoint",
    "Labels",
    "RedisEndpoint",
    "SegmentKey",
    "Source",
    "Target",
    "canary_segments",
    "resolve_targets",
]

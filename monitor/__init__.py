"""ld-store-monitor: watches LaunchDarkly big segment stores from the read side."""

__version__ = "0.1.0"

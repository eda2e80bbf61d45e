"""Benchmarks: the monitor measured against the physical floor of the same work."""

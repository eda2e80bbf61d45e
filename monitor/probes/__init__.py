"""Probes: read a store as the SDKs do; the result, the SDK status rules, the runner.

One subpackage per store kind (`redis/`, `dynamodb/`); transport failures are
read once, in `failures`, for both.
"""

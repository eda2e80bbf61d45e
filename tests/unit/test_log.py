"""Logging: the redactor masks secrets everywhere before rendering."""

from __future__ import annotations

import io
import json
import logging

import structlog

from monitor.log import MASK, Redactor, configure_logging


def test_known_secret_values_are_masked_everywhere() -> None:
    """A configured secret is masked in strings, nested values and exception reprs."""
    redactor = Redactor(["s3cret-token-value"])
    err = ValueError("login failed with s3cret-token-value")
    event = redactor.value(
        {
            "msg": "x s3cret-token-value y",
            "nested": [{"v": "s3cret-token-value"}],
            "exc": err,
        }
    )
    assert "s3cret-token-value" not in json.dumps(event)
    assert event["msg"] == f"x {MASK} y"


def test_secret_shapes_are_masked_without_being_configured() -> None:
    """URL credentials, auth headers, LD keys and AWS key ids are masked by shape."""
    redactor = Redactor()
    text = (
        "redis://mon:pa55word@h:6379 Authorization: api-12345678-1234-1234-1234-123456789abc "
        "sdk-12345678-1234-1234-1234-123456789abc AKIAABCDEFGHIJKLMNOP password=hunter22"
    )
    out = redactor.text(text)
    for secret in (
        "pa55word",
        "12345678-1234-1234-1234-123456789abc",
        "AKIAABCDEFGHIJKLMNOP",
        "hunter22",
    ):
        assert secret not in out
    assert "redis://mon:[REDACTED]@h:6379" in out


def test_secret_keys_are_masked_by_name() -> None:
    """A field named like a secret is masked whatever its value."""
    redactor = Redactor()
    assert redactor.value({"password": "x", "api_token": "y", "user": "z"}) == {
        "password": MASK,
        "api_token": MASK,
        "user": "z",
    }


def test_short_secrets_do_not_mask_ordinary_words() -> None:
    """Secrets under four characters are not substring-masked (they would eat words)."""
    redactor = Redactor(["ab"])
    assert redactor.text("about") == "about"


def test_configured_logging_renders_json_with_redaction_including_tracebacks() -> None:
    """A JSON log line has the event, and neither its fields nor its traceback show a secret."""
    stream = io.StringIO()
    redactor = Redactor(["very-secret-password"])
    configure_logging(redactor, fmt="json", level="info", stream=stream)
    log: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger("test")
    try:
        raise RuntimeError("connect with very-secret-password failed")
    except RuntimeError:
        log.exception("probe.crashed", target="redis://u:very-secret-password@h")
    logging.getLogger("aiohttp.client").warning("stdlib says very-secret-password")
    log.debug("hidden.at.info")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "probe.crashed",
        "stdlib says [REDACTED]",
    ]
    assert "very-secret-password" not in stream.getvalue()
    assert lines[0]["level"] == "error"
    structlog.reset_defaults()


def test_may_change_says_no_only_when_no_string_would_change() -> None:
    """The pre-check of JSON text: True for anything text() or value() might mask."""
    redactor = Redactor(["hunter2-known"])
    clean = {"id": "store-1", "error": None, "address": "10.0.0.1:6379", "n": 1.5}
    assert not redactor.may_change(json.dumps(clean))
    for risky in (
        {"error": "auth failed for hunter2-known"},
        {"error": 'quote "hunter2-known"'},
        {"error": "redis://user:pw@host"},
        {"error": "Authorization: Bearer abc"},
        {"error": "key AKIAABCDEFGHIJKLMNOP"},
        {"error": "PASSWORD=x"},
        {"error": "café"},
        {"my_credentials": "x"},
    ):
        text = json.dumps(risky)
        assert redactor.may_change(text), risky
    redactor.update(['a-secret-"quoted'])
    assert redactor.may_change(json.dumps({"e": 'x a-secret-"quoted y'}))

"""The redactor against hostile text: pieces of secrets, escaped forms, time.

A traceback, a repr or a length cap can cut a secret anywhere; the exposition
and JSON escape `"` and `\\`; and a long run of scheme characters once made
the URL pattern backtrack for tens of seconds. None of these may leak a
secret or hold the event loop.
"""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
import structlog

from monitor.log import (
    FRAGMENT,
    MASK,
    MAX_EXCEPTION_CHARS,
    RateLimited,
    Redactor,
    configure_logging,
    secret_forms,
)
from monitor.web.app import _masked

LONG = "LongRedisPassword-0123456789abcdef0123456789abcdef0123456789abcdef"
ESCAPED = 'Quote"Back\\slash-Secret-77'


def _exposition(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def test_every_piece_of_a_secret_from_fragment_characters_is_masked() -> None:
    """Any substring of FRAGMENT or more characters, anywhere in the text, is gone."""
    redactor = Redactor([LONG])
    for length in (FRAGMENT, FRAGMENT + 3, 59, 60, len(LONG) - 1):
        for start in range(0, len(LONG) - length + 1, 5):
            piece = LONG[start : start + length]
            out = redactor.text(f"[('AUTH', 'ldmon', '{piece}\\'+9")
            assert piece not in out, (start, length)
            assert MASK in out
            for i in range(len(piece) - FRAGMENT + 1):
                assert piece[i : i + FRAGMENT] not in out


def test_text_without_a_piece_is_left_alone() -> None:
    """Short pieces (under FRAGMENT) and unrelated text are not masked."""
    redactor = Redactor([LONG])
    text = "Long ago 0123 redis passwordless abcdef01 store"
    assert redactor.text(text) == text.replace("abcdef01", MASK)
    assert redactor.text("hello 0123456 world") == "hello 0123456 world"


def test_a_truncated_traceback_local_is_masked() -> None:
    """structlog cut locals at 80 characters: 59 characters of the password were shown."""
    redactor = Redactor([LONG])
    cut = repr([("AUTH", "ldmon", LONG)])[:80]
    assert LONG[:50] in cut
    assert LONG not in cut
    out = redactor.text(cut)
    assert LONG[:FRAGMENT] not in out
    assert MASK in out


def test_escaped_forms_of_a_secret_are_masked() -> None:
    """`"` and `\\` in a secret: masked as the exposition, JSON and repr write it."""
    redactor = Redactor([ESCAPED])
    for form in (
        _exposition(ESCAPED),
        json.dumps(ESCAPED)[1:-1],
        repr(ESCAPED)[1:-1],
    ):
        line = f'ld_store_up{{name="{form}"}} 1\n'
        assert redactor.appears_in(line.encode())
        masked = redactor.known(line)
        assert form not in masked
        assert MASK in masked
        assert form not in redactor.text(line)
    assert set(secret_forms(ESCAPED)) >= {ESCAPED, _exposition(ESCAPED)}


def test_may_change_sees_pieces() -> None:
    """The JSON pre-check of /status says "maybe" for a piece of a secret."""
    redactor = Redactor([LONG])
    assert redactor.may_change(json.dumps({"error": "x " + LONG[7:30] + " y"}))
    assert not redactor.may_change(json.dumps({"error": "nothing here"}))


def _seconds(redactor: Redactor, text: str) -> float:
    started = time.perf_counter()
    redactor.text(text)
    return time.perf_counter() - started


@pytest.mark.parametrize(
    "unit",
    [
        "a.",  # the URL scheme's characters: quadratic before the fix
        "a-",
        "a+",
        "a://",
        "a://b:",
        "a://:",
        "password=",
        "password ",
        "authorization: ",
        "token:",
        "api-",
        "AKIA",
        "x_",
        LONG[:8],  # a piece of the secret, again and again
        LONG[:4],  # one of its blocks, again and again
    ],
)
def test_redaction_is_linear_on_100_kb_of_hostile_text(unit: str) -> None:
    """100 KB of each pattern's worst case costs what 100 KB of prose costs, give or take.

    Measured against a baseline in the same test (no absolute timing): the
    old URL pattern took 28 s on 78 KB of `a.a.a.`, thousands of times the
    baseline; the bound here is 50 times, plus 50 ms.
    """
    redactor = Redactor([LONG, "api-token-value-1234"])
    size = 100_000
    baseline = min(
        _seconds(redactor, ("the quick brown fox " * (size // 20))[:size])
        for _ in range(3)
    )
    hostile = (unit * (size // len(unit) + 1))[:size]
    took = min(_seconds(redactor, hostile) for _ in range(2))
    assert took <= 50 * baseline + 0.05, (unit, took, baseline)


def _log_lines(level: str, fmt: str = "json") -> tuple[str, list[dict[str, object]]]:
    stream = io.StringIO()
    configure_logging(Redactor([LONG]), fmt=fmt, level=level, stream=stream)
    log: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger("test")

    def crash() -> None:
        handshake = [("AUTH", "ldmon", LONG)]  # a local, as in the Redis probe
        raise ValueError(f"cannot parse {handshake!r}"[:90])

    try:
        crash()
    except ValueError:
        log.exception("probe.crashed", integration_id="x")
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()] if fmt == "json" else []
    structlog.reset_defaults()
    return text, lines


def test_an_exception_above_debug_is_one_redacted_line_without_traceback() -> None:
    """Type and message, redacted, bounded; no frames, no locals, no piece of the secret."""
    text, lines = _log_lines("info")
    (line,) = lines
    exception = line["exception"]
    assert isinstance(exception, str)
    assert exception.startswith("ValueError: cannot parse")
    assert len(exception) <= MAX_EXCEPTION_CHARS + 30
    assert "locals" not in text
    assert "frames" not in text
    for i in range(len(LONG) - FRAGMENT + 1):
        assert LONG[i : i + FRAGMENT] not in text


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_debug_traceback_has_no_locals_and_no_piece_of_a_secret(fmt: str) -> None:
    """At debug level the traceback stays, without local variables, redacted."""
    text, _ = _log_lines("debug", fmt)
    assert "crash" in text  # the frame is there
    assert "locals" not in text  # its locals are not
    assert "'ldmon'" not in text.replace("'ldmon', '[REDACTED]", "")
    for i in range(len(LONG) - FRAGMENT + 1):
        assert LONG[i : i + FRAGMENT] not in text


def test_a_long_exception_message_is_cut_after_redaction() -> None:
    """The cut comes after masking: no short piece of a secret at the edge."""
    stream = io.StringIO()
    configure_logging(Redactor([LONG]), fmt="json", level="info", stream=stream)
    log: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger("test")
    try:
        raise RuntimeError("x" * (MAX_EXCEPTION_CHARS - 30) + LONG)
    except RuntimeError:
        log.exception("step.crashed")
    structlog.reset_defaults()
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert "LongRedi" not in line["exception"]
    assert MASK in line["exception"]


def test_rate_limited_logger_passes_one_line_per_second_without_traceback() -> None:
    """A flood of aiohttp.server errors: one line a second, saying how many were dropped."""
    now = [0.0]
    limit = RateLimited(1.0, monotonic=lambda: now[0])
    logger = logging.getLogger("test.flood")
    passed = []
    try:
        raise ValueError("bad header")
    except ValueError as err:
        exc = err
    for i in range(100):
        now[0] = i * 0.01
        record = logger.makeRecord(
            "test.flood", logging.ERROR, __file__, 1, "Error handling request", (), None
        )
        record.exc_info = (ValueError, exc, exc.__traceback__)
        if limit.filter(record):
            passed.append(record)
    now[0] = 1.5
    record = logger.makeRecord("x", logging.ERROR, __file__, 1, "again", (), None)
    assert limit.filter(record)
    assert len(passed) == 1
    assert passed[0].exc_info is None
    assert passed[0].getMessage() == "Error handling request: ValueError: bad header"
    assert record.getMessage() == "again (99 similar lines dropped)"


def test_configure_logging_rate_limits_the_http_server_logger() -> None:
    """configure_logging installs one limiter on aiohttp.server and asyncio, once."""
    stream = io.StringIO()
    for _ in range(2):
        configure_logging(Redactor(), fmt="json", level="info", stream=stream)
    for name in ("aiohttp.server", "asyncio"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, RateLimited) for f in filters) == 1
    server = logging.getLogger("aiohttp.server")
    for _ in range(50):
        server.error("Error handling request from %s", "127.0.0.1")
    structlog.reset_defaults()
    assert len(stream.getvalue().splitlines()) == 1


def test_metrics_chunks_mask_an_escaped_secret() -> None:
    """/metrics: a label value holding a secret with `"` and `\\` is masked as escaped."""
    redactor = Redactor([ESCAPED])
    chunk = f'ld_store_target_info{{name="{_exposition(ESCAPED)}"}} 1.0\n'.encode()
    (masked,) = _masked(redactor, [chunk])
    assert masked == f'ld_store_target_info{{name="{MASK}"}} 1.0\n'.encode()

"""Logging: structlog configured once, with a redaction step before rendering.

Every event passes through `Redactor` after exception formatting and before
the renderer, so secrets never reach a log line, including inside exception
text and reprs. The redactor knows the config's secret values (API token,
passwords) and also masks common secret shapes it was never told about.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

MASK = "[REDACTED]"
# Any piece of a configured secret this long (or a whole shorter secret) is
# masked: a traceback, a repr or a length cap may cut a secret anywhere.
FRAGMENT = 8
# Text is searched for the secrets' aligned 4-character blocks first (a C
# substring search): every piece of FRAGMENT characters contains one, so
# text without any is left alone at the cost of a few `in` tests.
_BLOCK = 4
# An exception logged above debug level is one line: its type and its
# message, redacted and cut to this many characters; no traceback.
MAX_EXCEPTION_CHARS = 500
# Keys whose values are secrets wherever they appear in an event.
_SECRET_KEY = re.compile(
    r"(?i)^(?:.*_)?(?:password|passwd|token|secret|api_?key|authorization|credentials?|"
    r"secret_access_key|session_token)$"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # user:password@ in any URL
    (
        # No left anchor and a bounded scheme: each start costs at most 31
        # steps, so a long run of scheme characters (`a.a.a.…`, which took
        # quadratic time with `\b[a-z][a-z0-9+.-]*`) is linear; a longer
        # scheme still matches, from its last 31 characters. The user part
        # stops at `:` or `/`, the password at `/` or `@`.
        re.compile(r"(?i)([a-z][a-z0-9+.-]{0,30}://[^\s:/@]*:)[^\s@/]+@"),
        r"\1" + MASK + "@",
    ),
    # Authorization headers and bearer tokens
    (
        re.compile(
            r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+(?:\s+[^\s'\",}]+)?"
        ),
        r"\1" + MASK,
    ),
    # LaunchDarkly access tokens, SDK keys and mobile keys
    (
        re.compile(
            r"\b(?:api|sdk|mob)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
        ),
        MASK,
    ),
    # AWS access key ids
    (re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b"), MASK),
    # key=value / "key": "value" pairs for secret-looking keys in free text
    (
        re.compile(
            r"(?i)((?:password|passwd|pwd|token|secret|secret_access_key|session_token|api_?key)"
            r"['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"
        ),
        r"\1" + MASK,
    ),
)

# A literal each pattern above (and `_SECRET_KEY`) needs in order to match
# ASCII text, lower-cased: `Redactor.may_change` looks for these first.
_PATTERN_WORDS = (
    "://",
    "authorization",
    "api-",
    "sdk-",
    "mob-",
    "password",
    "passwd",
    "pwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "credential",
)
_AWS_KEY_START = re.compile(r"AKIA|ASIA|AROA|AIDA")


def _exposition(value: str) -> str:
    """`value` as a Prometheus (and OpenMetrics) label value writes it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def secret_forms(secret: str) -> tuple[str, ...]:
    """The ways a secret is written where it may be seen, longest first.

    As is; JSON-escaped (ASCII and not); label-escaped (`/metrics`); and as
    Python's `repr` writes it (exception texts, tuples in tracebacks), of
    the string and of its UTF-8 bytes. A secret with a `"`, a `\\` or a
    non-ASCII character differs in each.
    """
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        _exposition(secret),
        repr(secret)[1:-1],
        repr(secret.encode("utf-8"))[2:-1],
    }
    return tuple(sorted(forms, key=len, reverse=True))


class Redactor:
    """Masks known secret values and secret-shaped text in strings and events.

    A known secret is masked whole in each of its written forms
    (`secret_forms`), and so is any piece of it of FRAGMENT characters or
    more, in `text` (logs, /status, the page, /probe, check): a traceback or
    a length cap may have cut it. Costs: whole values are a substring search
    each; pieces are looked for only where one of a secret's aligned
    4-character blocks occurs, so text holding none costs a few more
    substring searches and nothing else.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        self.generation = 0
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Replace the set of known secret values (after a config reload)."""
        # Longest first so that a secret containing another is masked whole;
        # very short values would mask ordinary words, so they rely on patterns.
        kept = {s for s in secrets if len(s) >= 4}
        forms = {form for s in kept for form in secret_forms(s)}
        self._secrets = tuple(sorted(forms, key=len, reverse=True))
        self._encoded = tuple(s.encode("utf-8") for s in self._secrets)
        self._json_secrets = tuple(
            {json.dumps(s)[1:-1] for s in self._secrets} | set(self._secrets)
        )
        # Pieces: every FRAGMENT-long window of every form of a secret that
        # long, and the aligned blocks that find them.
        grams: set[str] = set()
        blocks: set[str] = set()
        for form in forms:
            if len(form) < FRAGMENT:
                continue
            grams.update(
                form[i : i + FRAGMENT] for i in range(len(form) - FRAGMENT + 1)
            )
            blocks.update(
                form[i : i + _BLOCK] for i in range(0, len(form) - _BLOCK + 1, _BLOCK)
            )
        self._grams = frozenset(grams)
        self._blocks = tuple(sorted(blocks))
        self.generation += 1  # callers keeping redacted text drop it on a change

    def may_change(self, json_text: str) -> bool:
        """False only when `text` (and `value`) would change no string in `json_text`.

        `json_text` is JSON written with `ensure_ascii` (the default), so every
        non-ASCII character is an escape: with one, the answer is True. Else
        every string in it is ASCII, and each pattern (and each secret-looking
        key) needs a literal word that would then occur in the text as is; a
        known secret, or a piece of one, is looked for as JSON writes it. A
        substring search, a fraction of the cost of `value`: True means
        "maybe", not "yes".
        """
        if "\\u" in json_text:
            return True
        if any(secret in json_text for secret in self._json_secrets):
            return True
        if any(block in json_text for block in self._blocks):
            return True
        if _AWS_KEY_START.search(json_text):
            return True
        lowered = json_text.lower()
        return any(word in lowered for word in _PATTERN_WORDS)

    def appears_in(self, data: bytes) -> bool:
        """True when a known secret value occurs in `data` in any of its
        forms (bytes search, no decode)."""
        return any(secret in data for secret in self._encoded)

    def known(self, value: str) -> str:
        """`value` with the known secret values masked, in every form (no
        patterns, no pieces)."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def pieces(self, value: str) -> str:
        """`value` with every run of FRAGMENT or more characters of a known
        secret masked (windows of FRAGMENT that occur in some secret, merged)."""
        blocks = [b for b in self._blocks if b in value]
        if not blocks:
            return value
        grams = self._grams
        spans: list[tuple[int, int]] = []
        starts: set[int] = set()
        for block in blocks:
            at = value.find(block)
            while at >= 0:
                # A window holding this block as one of its aligned blocks
                # starts at most FRAGMENT - _BLOCK before it.
                for i in range(max(0, at - FRAGMENT + _BLOCK), at + 1):
                    if i not in starts and value[i : i + FRAGMENT] in grams:
                        starts.add(i)
                at = value.find(block, at + 1)
        if not starts:
            return value
        for i in sorted(starts):
            if spans and i <= spans[-1][1]:
                spans[-1] = (spans[-1][0], i + FRAGMENT)
            else:
                spans.append((i, i + FRAGMENT))
        out: list[str] = []
        end = 0
        for first, last in spans:
            out.append(value[end:first])
            out.append(MASK)
            end = last
        out.append(value[end:])
        return "".join(out)

    def text(self, value: str) -> str:
        """`value` with every secret masked: known values, their pieces, shapes."""
        value = self.pieces(self.known(value))
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def value(self, value: Any) -> Any:
        """Redact any JSON-like value; other objects are turned into redacted text."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {
                k: MASK
                if isinstance(k, str) and _SECRET_KEY.match(k) and v
                else self.value(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        return self.text(
            repr(value) if isinstance(value, BaseException) else str(value)
        )

    def __call__(
        self, _logger: WrappedLogger, _name: str, event: EventDict
    ) -> EventDict:
        """structlog processor: redact every field of the event."""
        redacted = self.value(event)
        assert isinstance(redacted, dict)  # noqa: S101 -- value() maps a Mapping to a dict
        return redacted


def _exception_of(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if len(exc_info) > 1 else None
    return sys.exc_info()[1] if exc_info else None


def exception_line(redactor: Redactor, exc: BaseException) -> str:
    """`Type: message`, redacted and then cut to MAX_EXCEPTION_CHARS.

    Redacted before it is cut, so a cut never leaves a piece of a secret
    shorter than the redactor recognises.
    """
    line = redactor.text(f"{type(exc).__name__}: {exc}")
    if len(line) > MAX_EXCEPTION_CHARS:
        line = line[:MAX_EXCEPTION_CHARS] + f"... ({len(line)} characters)"
    return line


def _exception_summary(redactor: Redactor, *, keep_tracebacks: bool) -> Processor:
    """Above debug level an exception is one line, never a traceback.

    Tracebacks carry frames (and, with structlog's defaults, their local
    variables, cut at 80 characters: a cut secret that no longer equals the
    configured one). At debug level the traceback stays (without locals).
    """

    def summary(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
        exc_info = event.get("exc_info")
        if not exc_info:
            return event
        if keep_tracebacks:
            return event
        del event["exc_info"]
        exc = _exception_of(exc_info)
        if exc is not None:
            event["exception"] = exception_line(redactor, exc)
        return event

    return summary


class RateLimited(logging.Filter):
    """Lets one record through per `interval` seconds, and none of their tracebacks.

    For loggers that a client can make speak at will: aiohttp's server (one
    ERROR with a traceback per malformed request) and asyncio's accept loop
    (`socket.accept() out of system resource`, once per attempt). The record
    that passes says how many were dropped before it.
    """

    def __init__(
        self, interval: float = 1.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self._monotonic = monotonic
        self._last = -float("inf")
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass at most one record per interval, flattened to one line."""
        now = self._monotonic()
        if now - self._last < self.interval:
            self.dropped += 1
            return False
        self._last = now
        message = record.getMessage()
        exc = _exception_of(record.exc_info) if record.exc_info else None
        if exc is not None:
            message = f"{message}: {type(exc).__name__}: {str(exc)[:200]}"
        if self.dropped:
            message = f"{message} ({self.dropped} similar lines dropped)"
            self.dropped = 0
        record.msg, record.args = message, None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


# Loggers whose records a client or a resource shortage can cause in bulk.
RATE_LIMITED_LOGGERS = ("aiohttp.server", "asyncio")


def _drop_color_message(
    _logger: WrappedLogger, _name: str, event: EventDict
) -> EventDict:
    event.pop("color_message", None)
    return event


def configure_logging(
    redactor: Redactor,
    *,
    fmt: str = "auto",
    level: str = "info",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and route stdlib loggers through the same processors."""
    stream = sys.stderr if stream is None else stream
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        _exception_summary(redactor, keep_tracebacks=numeric <= logging.DEBUG),
        # Frames only: local variables never reach a log (they may hold
        # secrets, and structlog cuts their reprs where no mask matches).
        structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False)
        )
        if as_json
        else structlog.processors.format_exc_info,
        _drop_color_message,
        redactor,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Loggers bind their processors once: re-binding on every call was a
        # measurable share of a probe at thousands of stores.
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # Library loggers are chatty below WARNING; botocore's debug output also
    # carries signed request headers, so it stays quiet even at debug.
    for name in (
        "aiohttp.access",
        "botocore",
        "aiobotocore",
        "boto3",
        "urllib3",
        "asyncio",
        "werkzeug",  # moto's server, in the demo and tests
    ):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    for name in RATE_LIMITED_LOGGERS:
        logger = logging.getLogger(name)
        for old_filter in [f for f in logger.filters if isinstance(f, RateLimited)]:
            logger.removeFilter(old_filter)
        logger.addFilter(RateLimited())

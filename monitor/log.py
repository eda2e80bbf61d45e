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
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

MASK = "[REDACTED]"
# Keys whose values are secrets wherever they appear in an event.
_SECRET_KEY = re.compile(
    r"(?i)^(?:.*_)?(?:password|passwd|token|secret|api_?key|authorization|credentials?|"
    r"secret_access_key|session_token)$"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # user:password@ in any URL
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@"),
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


class Redactor:
    """Masks known secret values and secret-shaped text in strings and events."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        self.generation = 0
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Replace the set of known secret values (after a config reload)."""
        # Longest first so that a secret containing another is masked whole;
        # very short values would mask ordinary words, so they rely on patterns.
        self._secrets = tuple(
            sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        )
        self._encoded = tuple(s.encode("utf-8") for s in self._secrets)
        self._json_secrets = tuple(json.dumps(s)[1:-1] for s in self._secrets)
        self.generation += 1  # callers keeping redacted text drop it on a change

    def may_change(self, json_text: str) -> bool:
        """False only when `text` (and `value`) would change no string in `json_text`.

        `json_text` is JSON written with `ensure_ascii` (the default), so every
        non-ASCII character is an escape: with one, the answer is True. Else
        every string in it is ASCII, and each pattern (and each secret-looking
        key) needs a literal word that would then occur in the text as is; a
        known secret is looked for as JSON writes it. A substring search, a
        fraction of the cost of `value`: True means "maybe", not "yes".
        """
        if "\\u" in json_text:
            return True
        if any(secret in json_text for secret in self._json_secrets):
            return True
        if _AWS_KEY_START.search(json_text):
            return True
        lowered = json_text.lower()
        return any(word in lowered for word in _PATTERN_WORDS)

    def appears_in(self, data: bytes) -> bool:
        """True when a known secret value occurs in `data` (bytes search, no decode)."""
        return any(secret in data for secret in self._encoded)

    def known(self, value: str) -> str:
        """`value` with the known secret values masked (no pattern matching)."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def text(self, value: str) -> str:
        """`value` with every secret masked."""
        value = self.known(value)
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
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.dict_tracebacks
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
    numeric = logging.getLevelNamesMapping()[level.upper()]
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

"""Values from outside made safe at the boundary: text, integers, floats.

Everything the monitor shows comes from LaunchDarkly's API or a store, and
either may send anything JSON or RESP can carry: a 400-digit integer, `NaN`,
a string with an unpaired surrogate (`"\\ud800"`, valid JSON, not encodable
as UTF-8) or control characters. Parsers pass such values through these
helpers, so that what reaches `/metrics`, `/status`, the page and `check`
is always encodable and convertible to a float; what was changed or
dropped is a parse finding of that one store.
"""

from __future__ import annotations

import math
import re

# Integers from outside (timestamps in milliseconds, versions, counts, byte
# sizes) fit in 64 bits when they are genuine; every such value converts to
# a float without overflow.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# C0 controls but tab, DEL, C1 controls, and surrogates: json.loads joins a
# valid pair into one code point, so any surrogate left is unpaired.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def safe_text(text: str) -> str:
    """`text` with unpaired surrogates and control characters but tab as U+FFFD."""
    if text.isascii() and text.isprintable():
        return text
    return _UNSAFE.sub(REPLACEMENT, text)


def int64(value: int) -> int | None:
    """`value` when it fits in a signed 64-bit integer; None otherwise."""
    return value if INT64_MIN <= value <= INT64_MAX else None


def clamp_int64(value: int) -> int:
    """`value` clamped into the signed 64-bit range."""
    return max(INT64_MIN, min(INT64_MAX, value))


def describe_int(value: int) -> str:
    """An integer of any size for a message: its digits up to 64 bits, else its size."""
    if int64(value) is not None:
        return str(value)
    return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"


def finite(value: float) -> float | None:
    """`value` when it is a finite float; None for NaN and infinities."""
    return value if math.isfinite(value) else None

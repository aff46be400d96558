"""Text as the comm can carry it: JSON from a server may hold lone surrogates (``\\ud800``)
that UTF-8 cannot encode; they become U+FFFD before anything is synced to the browser."""

from __future__ import annotations

import re
import time
from typing import Any, TypeVar

T = TypeVar("T")


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Each lone surrogate becomes U+FFFD (a proper pair is one code point in Python already)."""
    return _SURROGATE.sub("\ufffd", text)


def comm_safe(value: T) -> T:
    """``value`` with every string in it made encodable (dicts and lists are rebuilt)."""
    out: Any = value
    if isinstance(value, str):
        out = clean_text(value)
    elif isinstance(value, dict):
        out = {comm_safe(k): comm_safe(v) for k, v in value.items()}
    elif isinstance(value, list):
        out = [comm_safe(v) for v in value]
    return out  # type: ignore[no-any-return]


def shorten(text: str | None, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters at a word boundary with "…" (a word
    longer than most of the width is cut inside)."""
    flat = " ".join((text or "").split())
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1]
    space = cut.rfind(" ")
    if space >= width * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + "…"


#: C0 and C1 controls (but tab and newline), DEL, and the bidirectional overrides and isolates
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """Text for a terminal: every control character that could move the cursor, clear or
    recolour the line, or reorder what follows (ESC, CR, C1, bidi overrides) is shown as an
    escape (``\\x1b``, ``\\r``, ``\\u202e``) instead of acting; tabs and newlines stay."""
    return _CONTROL.sub(_escape, clean_text(text))


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    if char == "\r":
        return "\\r"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def money(dollars: float) -> str:
    """Dollars with as many decimals as it takes to tell the figure (at least two, at most
    six): ``$2.50``, ``$0.0123``, ``$0.0005``."""
    if dollars == 0 or dollars != dollars or dollars in (float("inf"), float("-inf")):
        return f"${dollars:.2f}"
    decimals = 2
    while decimals < 6 and abs(round(dollars, decimals) - dollars) > abs(dollars) * 0.005:
        decimals += 1
    return f"${dollars:,.{decimals}f}"


def wall_clock_in(seconds: float) -> str:
    """The local time ``seconds`` from now, as the client says it (``14:05:09``)."""
    return time.strftime("%H:%M:%S", time.localtime(time.time() + seconds))

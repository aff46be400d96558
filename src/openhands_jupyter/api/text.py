"""Text as the comm can carry it: JSON from a server may hold lone surrogates (``\\ud800``)
that UTF-8 cannot encode; they become U+FFFD before anything is synced to the browser."""

from __future__ import annotations

import re
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

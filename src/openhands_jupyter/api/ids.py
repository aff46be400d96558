"""Identifier and timestamp normalisation shared by both API generations."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from .errors import InputError


def normalize_id(value: str) -> str:
    """Return a conversation or start-task id as 32-char lowercase hex; raise on anything else."""
    text = str(value).strip()
    if text.startswith("task-"):
        text = text[5:]
    try:
        return uuid.UUID(text).hex
    except (ValueError, AttributeError):
        raise InputError(
            f"Not a conversation id: {text[:60]!r} (expected 32 hex digits, dashes optional)"
        ) from None


def lenient_id(value: Any) -> str | None:
    """Normalise an id from a server response; keep unknown formats as they are."""
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(str(value)).hex
    except ValueError:
        return str(value)


def parse_time(value: Any) -> datetime | None:
    """Read an ISO-8601 timestamp with 0-9 fraction digits. One with a zone comes back in UTC;
    one without stays naive: it is some server's local clock, not an absolute moment."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            digits += rest[i]
            i += 1
        text = f"{head}.{(digits + '000000')[:6]}{rest[i:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc)


def later(a: datetime, b: datetime) -> bool:
    """``a`` is after ``b``; False when they cannot be compared (one has a zone, one not)."""
    if (a.tzinfo is None) != (b.tzinfo is None):
        return False
    return a > b


def epoch_ms(moment: datetime | None) -> float | None:
    """Milliseconds since the epoch for a zoned time; ``None`` for a naive one, whose zone is
    unknown (nothing may compute an age from it)."""
    if moment is None or moment.tzinfo is None:
        return None
    return moment.timestamp() * 1000

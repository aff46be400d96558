"""Secret values (API keys, session keys) kept behind masked reprs and redacted from any text."""

from __future__ import annotations

import logging
import threading

_MASK = "***"
_known: set[str] = set()
_lock = threading.Lock()


class Secret:
    """A string that never shows itself in ``repr``/``str``; call :meth:`get` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= 4:
            with _lock:
                _known.add(value)

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Secret values cannot be pickled")


class SecretHeaders(dict[str, str]):
    """Request headers that carry a key: a plain dict for httpx, masked in ``repr`` (a
    verbose traceback shows every frame's locals)."""

    def __repr__(self) -> str:
        return repr({k: _MASK for k in self})

    __str__ = __repr__


def as_secret(value: str | Secret | None) -> Secret | None:
    """Wrap a plain string (empty means none)."""
    if value is None or isinstance(value, Secret):
        return value
    value = value.strip()
    return Secret(value) if value else None


def redact(text: str) -> str:
    """Replace every secret value this process has seen with a mask."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, _MASK)
    return text


class RedactingFilter(logging.Filter):
    """Logging filter that masks known secrets in every record of the package's loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def package_logger(name: str) -> logging.Logger:
    """A logger under ``openhands_jupyter`` whose records are redacted."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger

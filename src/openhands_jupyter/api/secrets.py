"""Secret values (API keys, session keys) kept behind masked reprs and redacted from any text."""

from __future__ import annotations

import logging
import threading

_MASK = "***"
_known: set[str] = set()
_lock = threading.Lock()
#: what redact() looks for, built again when a new secret is seen: the short secrets whole,
#: and every ``FRAGMENT``-long piece of the others (a set: a text is read once, however many
#: secrets the process holds)
_index: tuple[tuple[str, ...], frozenset[str]] | None = None


class Secret:
    """A string that never shows itself in ``repr``/``str``; call :meth:`get` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= 4:
            global _index
            with _lock:
                if value not in _known:
                    _known.add(value)
                    _index = None

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


#: the shortest piece of a secret that is masked wherever it shows (a log line cut short
#: can hold the start of a key)
FRAGMENT = 8


def _lookup() -> tuple[tuple[str, ...], frozenset[str]]:
    global _index
    with _lock:
        if _index is None:
            short = tuple(sorted((v for v in _known if len(v) < FRAGMENT), key=len, reverse=True))
            pieces = frozenset(
                v[i : i + FRAGMENT]
                for v in _known
                if len(v) >= FRAGMENT
                for i in range(len(v) - FRAGMENT + 1)
            )
            _index = (short, pieces)
        return _index


def redact(text: str) -> str:
    """Mask every secret value this process has seen, and every piece of one at least
    ``FRAGMENT`` characters long (a frame logger cuts a long line, and with it a key)."""
    if len(text) < 4:
        return text
    short, pieces = _lookup()
    spans: list[tuple[int, int]] = []
    for value in short:
        start = text.find(value)
        while start >= 0:
            spans.append((start, start + len(value)))
            start = text.find(value, start + 1)
    if pieces:
        spans += [
            (i, i + FRAGMENT)
            for i in range(len(text) - FRAGMENT + 1)
            if text[i : i + FRAGMENT] in pieces
        ]
    if not spans:
        return text
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, at = [], 0
    for start, end in merged:
        out += [text[at:start], _MASK]
        at = end
    out.append(text[at:])
    return "".join(out)


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


#: the loggers of the libraries requests and sockets go through: their records are masked too
#: (a header value in an error, a frame cut short), whoever turns them on
LIBRARY_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "websockets",
    "websockets.client",
    "websockets.protocol",
)


def guard_library_loggers() -> None:
    for name in LIBRARY_LOGGERS:
        package_logger(name)


guard_library_loggers()

"""The one exception hierarchy, and how a server's error body becomes a readable one-line message."""

from __future__ import annotations

import json
from typing import Any

import httpx

from .secrets import redact


class OpenHandsError(Exception):
    """Base of every error this package raises. ``str()`` is one readable line, never a secret."""

    #: the server's own message (e.g. FastAPI's ``Not Found`` for a route it does not have)
    server_message: str | None = None
    #: a 2xx answer that was not JSON at all (an HTML page): a definite "not here"
    not_json: bool = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.message = redact(" ".join(str(message).split()))
        self.status_code = status_code
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InputError(OpenHandsError, ValueError):
    """Bad input caught before any request is sent."""


class BadRequestError(OpenHandsError):
    """400 or 422: the server refused the request as malformed."""


class AuthenticationError(OpenHandsError):
    """401 or 403: missing, wrong or unauthorised credentials."""


class NotFoundError(OpenHandsError):
    """404, or ``null`` for an id that the server does not know."""


class ConflictError(OpenHandsError):
    """409: e.g. a message sent to a paused or starting sandbox."""


class GoneError(OpenHandsError):
    """410: the conversation was archived."""


class RateLimitError(OpenHandsError):
    """429: too many requests; ``retry_after`` is the server's wait in seconds when it gave one."""

    def __init__(
        self, message: str, *, status_code: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class RunCapacityError(RateLimitError):
    """429 from an agent server whose run capacity is full (1.58): what was sent is kept
    there, and only the run waits. Ask for the run again later; never send a message again."""


class ConcurrencyLimitError(OpenHandsError):
    """429 CONCURRENCY_LIMIT_REACHED: too many conversations run at once; not retried."""

    def __init__(
        self, message: str, *, limit: int | None = None, current: int | None = None
    ) -> None:
        super().__init__(message, status_code=429)
        self.limit = limit
        self.current = current


class ServerError(OpenHandsError):
    """5xx from the server."""


class APIConnectionError(OpenHandsError):
    """The server could not be reached, or the connection dropped or timed out."""


class InvalidResponseError(OpenHandsError):
    """The server answered with something that is not the expected JSON (e.g. an HTML page)."""


class UnreadableRecordError(InvalidResponseError):
    """One record in an answer has a field of a type this client cannot read; the rest of the
    answer is fine. ``field`` names it."""

    def __init__(self, field: str, record: str | None = None) -> None:
        where = f" (conversation {record})" if record else ""
        super().__init__(f"The server sent something this client can't read: {field}{where}.")
        self.field = field


class UnreadableWarning(UserWarning):
    """Some records in a listing could not be read and were left out."""


class UnsupportedError(OpenHandsError):
    """The server does not offer this endpoint (405, or FastAPI's bare 404)."""


def absent_route(exc: OpenHandsError) -> bool:
    """Whether an error says the route itself does not exist on this server: 405 (a non-GET
    to a path behind the web UI) or FastAPI's bare ``{"detail": "Not Found"}``. (An HTML page
    for a GET can also be a proxy's error page: callers decide what it means.)"""
    if exc.status_code == 405:
        return True
    return isinstance(exc, NotFoundError) and exc.server_message == "Not Found"


def extract_message(body: Any, fallback: str = "") -> str:
    """Pull the server's own message out of any of the body shapes OpenHands uses."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            parts = [str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail]
            locs = [
                ".".join(str(p) for p in d.get("loc", [])[1:])
                for d in detail
                if isinstance(d, dict) and d.get("loc")
            ]
            text = "; ".join(parts)
            return f"{text} ({', '.join(loc for loc in locs if loc)})" if any(locs) else text
        if isinstance(detail, dict):
            msg = detail.get("message")
            err = detail.get("error")
            if msg and err:
                return f"{err}: {msg}"
            if msg or err:
                return str(msg or err)
        for key in ("error", "message", "msg_id"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    if isinstance(body, str) and body:
        return body
    return fallback


def _retry_after(response: httpx.Response) -> float | None:
    import time

    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    reset = response.headers.get("x-ratelimit-reset")
    if reset:
        try:
            wait = float(reset) - time.time()
            return max(0.0, wait) if wait < 3600 else None
        except ValueError:
            pass
    return None


def error_from_response(response: httpx.Response) -> OpenHandsError:
    """Map an HTTP error response onto the hierarchy with a readable message."""
    code = response.status_code
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        text = response.text.strip()
        body = text[:200] if text and not text.lstrip().startswith("<") else ""
    reason = response.reason_phrase or "error"
    message = extract_message(body) or reason
    where = f"{response.request.method} {response.request.url.path}"
    line = f"HTTP {code} from {where}: {message}"
    if code == 429:
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, dict) and detail.get("error") == "CONCURRENCY_LIMIT_REACHED":
            return ConcurrencyLimitError(
                f"Concurrency limit reached: {detail.get('message') or message}",
                limit=_int_or_none(detail.get("limit")),
                current=_int_or_none(detail.get("current")),
            )
        return RateLimitError(f"Rate limited: {message}", retry_after=_retry_after(response))
    cls: type[OpenHandsError]
    if code in (401, 403):
        cls = AuthenticationError
        hint = " (check OPENHANDS_API_KEY)" if code == 401 else ""
        line = f"Not authorised (HTTP {code}) at {where}: {message}{hint}"
    elif code == 404:
        cls = NotFoundError
    elif code == 409:
        cls = ConflictError
    elif code == 410:
        cls = GoneError
    elif code in (400, 422):
        cls = BadRequestError
    elif code >= 500:
        cls = ServerError
    else:
        cls = OpenHandsError
    error = cls(line, status_code=code)
    error.server_message = redact(message)
    return error


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

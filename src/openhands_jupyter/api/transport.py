"""HTTP transport over httpx: auth headers, timeouts, retries with backoff, 429 and non-JSON guards."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from .errors import (
    APIConnectionError,
    InvalidResponseError,
    OpenHandsError,
    RateLimitError,
    ServerError,
    error_from_response,
)
from .loops import BackgroundLoop, running_loop
from .secrets import Secret, package_logger, redact
from .text import wall_clock_in

T = TypeVar("T")

log = package_logger("openhands_jupyter.api")

RETRY_STATUSES = frozenset({502, 503, 504})
#: the longest Retry-After a request waits out by itself; a longer one is raised at once
MAX_RETRY_WAIT = 5.0

#: A coroutine the tracker installs for its own requests (the request budget); awaited before
#: every request, retries included, made in that context.
request_gate: contextvars.ContextVar[Callable[[], Awaitable[Callable[[], None]]] | None] = (
    contextvars.ContextVar("openhands_request_gate", default=None)
)
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
#: the longest one request may take from sending to its last byte: httpx's timeouts are per
#: read, so a server that trickles a byte at a time would otherwise hold a call for ever
DEFAULT_DEADLINE = 60.0
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=900.0)


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter: a random delay in [base*2^n / 2, base*2^n]."""
    ceiling = float(min(cap, base * (2**attempt)))
    return ceiling / 2 + random.random() * ceiling / 2


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """What one request sends: the same on every try."""

    method: str
    url: str
    params: Any = None
    json_body: Any = None
    headers: dict[str, str] | None = None
    files: Any = None


class Transport:
    """One per client. Holds one ``httpx.AsyncClient`` per event loop that uses it."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: Secret | None = None,
        session_api_key: Secret | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retry_wait: float = MAX_RETRY_WAIT,
        deadline: float = DEFAULT_DEADLINE,
        allow_insecure: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        #: plain http to another host was allowed for this client (its agent servers too)
        self.allow_insecure = allow_insecure
        self.max_retry_wait = max_retry_wait
        self.deadline = deadline
        self._api_key = api_key
        self._session_api_key = session_api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self._mock = transport
        #: a transport of the caller's own (connection pools, proxies, TLS) belongs to one
        #: loop: every exchange through it runs on that one loop, whichever loop asks
        self._home = _home_of(transport)
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._lock = threading.Lock()
        #: until when (``time.monotonic``) the server asked this client to wait (a 429's
        #: Retry-After): every request waits, not only the one that was refused
        self._held_until = 0.0

    def __repr__(self) -> str:
        auth = "bearer" if self._api_key else "session-key" if self._session_api_key else "none"
        return f"Transport({self.base_url!r}, auth={auth})"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "openhands-jupyter/0.1"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key.get()}"
        if self._session_api_key:
            headers["X-Session-API-Key"] = self._session_api_key.get()
        return headers

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None or client.is_closed:
                client = httpx.AsyncClient(
                    base_url=self.base_url,
                    headers=self._headers(),
                    timeout=self.timeout,
                    transport=self._mock,
                    follow_redirects=False,
                )
                self._clients[loop] = client
            return client

    async def aclose(self) -> None:
        """Close the client that belongs to the running loop (others close with their loops),
        and the one on the home loop of a transport of the caller's own."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()
        home = self._home
        if home is not None and home.running and home.loop is not loop:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(home.submit(self.aclose()))

    async def _exchange(self, out: Outgoing) -> httpx.Response:
        """One request and its whole answer, on the loop its transport belongs to."""

        async def here() -> httpx.Response:
            return await self._client().request(
                out.method,
                out.url,
                params=out.params,
                json=out.json_body,
                headers=out.headers,
                files=out.files,
            )

        home = self._home
        if home is None or running_loop() is home.loop:
            return await here()
        return await asyncio.wrap_future(home.submit(here()))

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json_body: Any = None,
        idempotent: bool | None = None,
        retries: int | None = None,
        headers: dict[str, str] | None = None,
        expect_json: bool = True,
        gated: bool = True,
        files: Any = None,
    ) -> Any:
        """Send one request and return its decoded JSON (or raw bytes when ``expect_json`` is off).

        Requests that are safe to repeat are retried on connect errors, timeouts and 502/503/504;
        any request is retried on a connect error (nothing was sent) and on a plain 429 after the
        server's wait. ``retries=0`` turns retries off, for callers that schedule their own.
        ``gated=False`` keeps the request out of the tracker's budget (another server's).
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "DELETE")
        budget = self.max_retries if retries is None else retries
        out = Outgoing(method, url, params, json_body, headers, files)
        attempt = 0
        fresh = False
        while True:
            try:
                return await self._send_once(out, expect_json, gated)
            except RateLimitError as exc:
                if exc.retry_after is not None and exc.retry_after > self.max_retry_wait:
                    # a long wait is the caller's to schedule (the tracker waits and says
                    # so); a blocking call never hangs on it silently
                    at = wall_clock_in(exc.retry_after)
                    raise RateLimitError(
                        f"{exc} The server asks to wait {exc.retry_after:g} s: try again after "
                        f"{at}.",
                        retry_after=exc.retry_after,
                    ) from None
                if gated and exc.retry_after is not None:
                    self._held_until = max(self._held_until, time.monotonic() + exc.retry_after)
                if attempt >= budget:
                    raise
                delay = exc.retry_after if exc.retry_after is not None else backoff_delay(attempt)
            except APIConnectionError as exc:
                if idempotent and not fresh and getattr(exc, "dropped", False):
                    # once, at once, on a new connection: not one of the caller's retries
                    fresh = True
                    log.debug("%s %s: connection dropped; once more", method, url)
                    continue
                if attempt >= budget or not (idempotent or getattr(exc, "not_sent", False)):
                    raise
                delay = backoff_delay(attempt)
            except ServerError as exc:
                if attempt >= budget or not idempotent or exc.status_code not in RETRY_STATUSES:
                    raise
                delay = backoff_delay(attempt)
            attempt += 1
            log.debug("retrying %s %s in %.2fs (attempt %d)", method, url, delay, attempt)
            await asyncio.sleep(delay)

    async def _wait_if_held(self) -> None:
        """Wait out the pause a 429 asked of this client (see ``_held_until``)."""
        while (held := self._held_until - time.monotonic()) > 0:
            await asyncio.sleep(held)

    async def _send_once(self, out: Outgoing, expect_json: bool, gated: bool = True) -> Any:
        method, url = out.method, out.url
        if gated:
            await self._wait_if_held()
        gate = request_gate.get() if gated else None
        done = await gate() if gate is not None else None
        try:
            response = await within(self._exchange(out), self.deadline)
        except asyncio.TimeoutError:
            raise APIConnectionError(
                f"{self.base_url} took more than {self.deadline:g} s to answer "
                f"{method} {urlsplit(url).path or url}; it may be overloaded or behind a slow "
                "proxy"
            ) from None
        except httpx.ConnectError as exc:
            err = APIConnectionError(f"Cannot connect to {self.base_url}: {_reason(exc)}")
            err.not_sent = True  # type: ignore[attr-defined]
            raise err from None
        except httpx.TimeoutException as exc:
            raise APIConnectionError(
                f"Timed out talking to {self.base_url}: {_reason(exc)}"
            ) from None
        except httpx.HTTPError as exc:
            err = APIConnectionError(f"Connection to {self.base_url} failed: {_reason(exc)}")
            # the server closed a kept-alive connection (some do after an error answer)
            err.dropped = isinstance(exc, DROPPED)  # type: ignore[attr-defined]
            raise err from None
        finally:
            if done is not None:
                done()
        log.debug("%s %s -> %s", method, response.request.url.path, response.status_code)
        if response.is_redirect:
            _check_json_type(response)  # never followed (a key would go with it): said, raised
        if response.status_code >= 400:
            raise error_from_response(response)
        if not expect_json:
            if response.headers.get("content-type", "").lower().startswith("text/html"):
                _check_json_type(response)  # a web page where a file was due: not this route
            return response.content
        return decode_json(response)

    async def stream_json_array(
        self, method: str, url: str, *, json_body: Any = None
    ) -> AsyncIterator[Any]:
        """Yield each element of a JSON array body as it arrives (OpenHands' stream-start)."""
        await self._wait_if_held()
        gate = request_gate.get()
        if gate is not None:
            (await gate())()
        home = self._home
        if home is not None and running_loop() is not home.loop:
            async for item in _relay(home, self._stream(method, url, json_body)):
                yield item
            return
        async for item in self._stream(method, url, json_body):
            yield item

    async def _stream(self, method: str, url: str, json_body: Any) -> AsyncIterator[Any]:
        client = self._client()
        decoder = json.JSONDecoder()
        try:
            async with client.stream(
                method, url, json=json_body, timeout=STREAM_TIMEOUT
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_from_response(response)
                _check_json_type(response)
                buffer = ""
                async for chunk in response.aiter_text():
                    buffer += chunk
                    while True:
                        buffer = buffer.lstrip(" \t\r\n[,]")
                        if not buffer:
                            break
                        try:
                            item, end = decoder.raw_decode(buffer)
                        except json.JSONDecodeError:
                            break
                        buffer = buffer[end:]
                        yield item
        except httpx.ConnectError as exc:
            raise APIConnectionError(f"Cannot connect to {self.base_url}: {_reason(exc)}") from None
        except httpx.HTTPError as exc:
            raise APIConnectionError(
                f"Stream from {self.base_url} failed: {_reason(exc)}"
            ) from None


#: a connection the server closed under a request (often a kept-alive one it gave up)
DROPPED = (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)


def _reason(exc: Exception) -> str:
    """An error's first line, with any secret (or piece of one) masked: a library's message
    can quote a header it refused."""
    text = str(exc) or type(exc).__name__
    return redact(text.splitlines()[0][:200])


def _check_json_type(response: httpx.Response) -> None:
    if response.is_redirect:
        target = response.headers.get("location", "")
        where = httpx.URL(target).copy_with(query=None, fragment=None) if target else "elsewhere"
        error = InvalidResponseError(
            f"The server redirected {response.request.method} {response.request.url.path} to "
            f"{where} (HTTP {response.status_code}): is the base URL right? Use the address it "
            "redirects to, or the server's API address.",
            status_code=response.status_code,
        )
        error.not_sent = True  # type: ignore[attr-defined]  # nothing was done
        raise error
    ctype = response.headers.get("content-type", "")
    if "json" not in ctype.lower():
        error = InvalidResponseError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{ctype.split(';')[0] or 'no content type'} instead of JSON: is the base URL right, "
            "and does this server offer this API?",
            status_code=response.status_code,
        )
        error.not_json = bool(ctype) and 200 <= response.status_code < 300
        raise error


def decode_json(response: httpx.Response) -> Any:
    """Decode a 2xx body, refusing HTML pages and malformed JSON with a clear error."""
    _check_json_type(response)
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise InvalidResponseError(
            f"{response.request.method} {response.request.url.path} returned malformed JSON.",
            status_code=response.status_code,
        ) from None


__all__ = ["OpenHandsError", "Transport", "backoff_delay"]

#: the loop of each transport of a caller's own, by the transport's identity
_homes: dict[int, tuple[httpx.AsyncBaseTransport, BackgroundLoop]] = {}
_homes_lock = threading.Lock()


def _home_of(transport: httpx.AsyncBaseTransport | None) -> BackgroundLoop | None:
    """The one loop a caller's transport runs on (a mock transport, which holds no
    connections, runs on any)."""
    if transport is None or isinstance(transport, httpx.MockTransport):
        return None
    with _homes_lock:
        found = _homes.get(id(transport))
        if found is None or found[0] is not transport or not found[1].running:
            found = (transport, BackgroundLoop("openhands-transport"))
            _homes[id(transport)] = found
        return found[1]


async def _relay(home: BackgroundLoop, items: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Iterate ``items`` on ``home``'s loop, handing each to the caller's loop."""
    caller = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in items:
                caller.call_soon_threadsafe(queue.put_nowait, ("item", item))
        except BaseException as exc:
            caller.call_soon_threadsafe(queue.put_nowait, ("error", exc))
            return
        caller.call_soon_threadsafe(queue.put_nowait, ("end", None))

    future = home.submit(pump())
    try:
        while True:
            kind, value = await queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        future.cancel()


async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """``asyncio.wait_for`` without its trap: on Python 3.10/3.11 a task cancelled while it
    waits there can hang as the inner wait is cancelled. Raises ``asyncio.TimeoutError``."""
    inner = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait([inner], timeout=timeout)
    except BaseException:
        inner.cancel()
        raise
    if not done:
        inner.cancel()
        raise asyncio.TimeoutError
    return inner.result()

"""The agent server's event WebSocket (``/sockets/events/{id}``), over the ``websockets`` library.

The key goes in a first ``{"type": "auth"}`` frame, never in the URL; an agent server older than
that kind of auth (it refuses the handshake itself) gets it in the ``X-Session-API-Key`` header
instead. Every later frame from the server is one event as JSON. Close codes become the
package's errors.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from .agent import AgentEndpoint
from .errors import (
    APIConnectionError,
    AuthenticationError,
    NotFoundError,
    OpenHandsError,
    UnsupportedError,
)
from .events import events_of
from .models import Event
from .secrets import package_logger

#: close codes the agent server uses
AUTH_FAILED = 4001
NOT_FOUND = 4004
TOO_MANY = 1013
#: what this client sends when a frame is larger than it takes
TOO_BIG = 1009
#: the largest frame taken (each event is then kept as a bounded copy), and how many frames
#: may wait unread: a server cannot make the kernel buffer more than MAX_FRAME * (MAX_QUEUE+1)
MAX_FRAME = 16 * 1024 * 1024
MAX_QUEUE = 2
_frames_log = package_logger("openhands_jupyter.api.socket")


class EventSocket:
    """An open, authenticated event socket. Iterate :meth:`events`; what is not one of this
    conversation's events (a binary frame, text that is not a JSON object, JSON nested too
    deep to read, another conversation's) is left out and counted in :attr:`dropped`, by why."""

    def __init__(self, ws: ClientConnection, endpoint: AgentEndpoint) -> None:
        self._ws = ws
        self.endpoint = endpoint
        self.dropped: Counter[str] = Counter()
        #: told of each frame left out, as it is
        self.on_drop: Callable[[str], None] | None = None

    def _drop(self, why: str) -> None:
        self.dropped[why] += 1
        if self.on_drop is not None:
            self.on_drop(why)

    async def events(self) -> AsyncIterator[Event]:
        """Each of this conversation's events as it arrives; ends when the server closes
        normally, raises otherwise. A frame of another conversation, or of no kind, is left
        out (and counted); one of a kind this client does not show is passed over."""
        async for frame in self.frames():
            for event in events_of([frame], self.endpoint.conversation_id, self._drop):
                yield event

    async def frames(self) -> AsyncIterator[dict[str, Any]]:
        """Each frame as it arrives; ends when the server closes normally, raises otherwise."""
        try:
            async for message in self._ws:
                if not isinstance(message, str):
                    self._drop("a binary frame")
                    continue
                try:
                    data = json.loads(message)
                except RecursionError:
                    self._drop("nested too deep to read")
                    continue
                except (TypeError, ValueError):
                    self._drop("not JSON")
                    continue
                if isinstance(data, dict):
                    yield data
                else:
                    self._drop("not an event")
        except ConnectionClosed as exc:
            raise closed_error(exc) from None
        rcvd = self._ws.close_code
        if rcvd is not None and rcvd not in (1000, 1001):
            raise closed_error(None, rcvd, self._ws.close_reason or "")

    async def close(self) -> None:
        await self._ws.close()


def closed_error(
    exc: ConnectionClosed | None, code: int | None = None, reason: str = ""
) -> OpenHandsError:
    if exc is not None and exc.sent is not None and exc.sent.code == TOO_BIG:
        code = TOO_BIG  # this client closed it: the frame was larger than it takes
    elif exc is not None and exc.rcvd is not None:
        code, reason = exc.rcvd.code, exc.rcvd.reason
    if code == AUTH_FAILED:
        return AuthenticationError("The agent server refused this conversation's session key.")
    if code == NOT_FOUND:
        return NotFoundError("The agent server does not know this conversation.")
    if code == TOO_BIG:
        error = APIConnectionError(
            f"The agent server sent an event larger than {MAX_FRAME // 2**20} MB; it is left out "
            "(the socket reconnects without it)."
        )
        error.too_big = True  # type: ignore[attr-defined]
        return error
    if code == TOO_MANY:
        return APIConnectionError(
            "The agent server has too many connections for this conversation."
        )
    text = f"{code}" + (f" {reason}" if reason else "") if code else "no close frame"
    return APIConnectionError(f"The agent server's event socket closed ({text}).")


#: agent servers (by socket origin) that refused first-frame auth and took the header
_HEADER_AUTH: set[str] = set()


class _connect_here(connect):
    """``connect`` that never follows a redirect: the session key (in the first frame, or in
    the header) goes to the agent server the server named, and nowhere else."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


async def _connect(endpoint: AgentEndpoint, header: bool, open_timeout: float, ping: float) -> Any:
    return await _connect_here(
        endpoint.socket_url,
        additional_headers=endpoint.headers() if header else None,
        open_timeout=open_timeout,
        ping_interval=ping,
        ping_timeout=ping,
        close_timeout=2.0,
        max_size=MAX_FRAME,
        max_queue=MAX_QUEUE,
        user_agent_header="openhands-jupyter",
        # the library logs every frame at DEBUG, the auth frame and headers too: through a
        # logger that masks every known secret
        logger=_frames_log,
    )


@asynccontextmanager
async def open_event_socket(
    endpoint: AgentEndpoint, *, open_timeout: float = 10.0, ping_interval: float = 20.0
) -> AsyncIterator[EventSocket]:
    """Connect and authenticate; raises ``APIConnectionError`` / ``AuthenticationError``."""
    origin = endpoint.base_url
    header = endpoint.key is not None and origin in _HEADER_AUTH
    try:
        try:
            ws = await _connect(endpoint, header, open_timeout, ping_interval)
        except InvalidStatus as exc:
            if header or endpoint.key is None or exc.response.status_code not in (401, 403):
                raise
            # an agent server from before first-frame auth closes a socket that brings no
            # key before accepting it: the same key, in the header it reads
            ws = await _connect(endpoint, True, open_timeout, ping_interval)
            header = True
            _HEADER_AUTH.add(origin)
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise AuthenticationError(
                f"The agent server refused the event socket (HTTP {status})."
            ) from None
        if status == 404:
            raise NotFoundError("This agent server offers no event socket (HTTP 404).") from None
        if 300 <= status < 400:
            raise UnsupportedError(
                f"The agent server redirected its event socket elsewhere (HTTP {status}); not "
                "followed: the session key goes only to the agent server itself."
            ) from None
        raise APIConnectionError(
            f"The agent server refused the event socket (HTTP {status})."
        ) from None
    except (InvalidHandshake, InvalidURI) as exc:
        raise APIConnectionError(
            f"No event socket at the agent server: {_first_line(exc)}"
        ) from None
    except (OSError, TimeoutError) as exc:
        raise APIConnectionError(
            f"Cannot connect to the agent server: {_first_line(exc)}"
        ) from None
    try:
        if endpoint.key is not None and not header:
            await ws.send(json.dumps({"type": "auth", "session_api_key": endpoint.key.get()}))
        yield EventSocket(ws, endpoint)
    except ConnectionClosed as exc:
        raise closed_error(exc) from None
    finally:
        await ws.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]

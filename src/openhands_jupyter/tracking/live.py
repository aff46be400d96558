"""One watched conversation's live feed: the agent server's event socket, with a REST read on
every (re)connect so that nothing is missed, and reconnects with capped backoff and jitter."""

from __future__ import annotations

import asyncio
import contextlib
import math
from datetime import datetime, timedelta
from typing import Protocol

from ..api.agent import AgentClient, AgentEndpoint
from ..api.errors import AuthenticationError, NotFoundError, OpenHandsError, UnsupportedError
from ..api.models import Event
from ..api.secrets import package_logger
from ..api.socket import MAX_FRAME, EventSocket, open_event_socket
from ..api.text import wall_clock_in
from ..api.transport import backoff_delay, request_gate
from .clock import Clock
from .state import LIVE_CONNECTING, LIVE_FALLBACK, LIVE_ON, LIVE_RETRYING, Tracked

log = package_logger("openhands_jupyter.tracking")

#: failed connects in a row before the app server's (delayed) events take over meanwhile
FALLBACK_AFTER = 2
#: at most this many connects per conversation in a minute, in every failure mode
MAX_CONNECTS_PER_MINUTE = 6
#: a session shorter than this (seconds, scaled) did not work: it counts as a failure
HEALTHY_SESSION = 20.0
#: how far before the newest event a gap read starts, on the server's own clock (events are
#: stored a little out of timestamp order); duplicates are dropped by id
GAP_MARGIN = timedelta(seconds=5)


class LiveHost(Protocol):
    """What a live feed needs from the tracker (all called on the tracker's loop)."""

    agent: AgentClient
    clock: Clock

    def live_endpoint(self, tracked: Tracked) -> AgentEndpoint | None: ...

    def live_events(self, tracked: Tracked, events: list[Event], *, live: bool) -> None: ...

    def live_status(self, tracked: Tracked, events: list[Event]) -> None: ...

    def live_changed(self, tracked: Tracked, state: str, note: str | None) -> None: ...

    def live_key_refused(self, tracked: Tracked) -> None: ...

    def scaled(self, seconds: float) -> float: ...


def gap_since(server_time: str | None) -> str | None:
    """Where a gap read starts: a little before the newest event seen, on the server's clock."""
    if not server_time:
        return None
    try:
        moment = datetime.fromisoformat(server_time.replace("Z", "+00:00"))
    except ValueError:
        return server_time
    return (moment - GAP_MARGIN).isoformat()


class LiveFeed:
    """Runs on the tracker's loop until :meth:`stop`; every event goes to ``host.live_events``."""

    def __init__(self, host: LiveHost, tracked: Tracked, open_timeout: float = 10.0) -> None:
        self.host = host
        self.tracked = tracked
        self.open_timeout = open_timeout
        self.failures = 0
        self.connected = False
        #: when the current session connected (the tracker's clock)
        self.connected_at = -math.inf
        self.connects = 0
        #: the socket of the session under way (``None`` between sessions)
        self.socket: EventSocket | None = None
        self.task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self._run(), name=f"openhands-live-{tracked.conversation_id}"
        )

    def stop(self) -> None:
        self.task.cancel()

    @property
    def done(self) -> bool:
        return self.task.done()

    async def _run(self) -> None:
        request_gate.set(None)  # the agent server is not the app server: outside its budget
        host, tracked = self.host, self.tracked
        key_refusals = 0
        while True:
            endpoint = host.live_endpoint(tracked)
            if endpoint is None:
                host.live_changed(tracked, LIVE_FALLBACK, "the server gave no agent-server address")
                return
            state = LIVE_CONNECTING if self.failures < FALLBACK_AFTER else LIVE_FALLBACK
            if self.failures and state == LIVE_CONNECTING:
                state = LIVE_RETRYING
            if state != LIVE_FALLBACK:
                host.live_changed(tracked, state, None)
            await self._within_rate()
            self.connected_at = -math.inf
            try:
                await self._session(endpoint)
                note = "the agent server closed the event socket"
                # healthy: it stayed open a while once connected (the time the connect and
                # the history read took does not count: a busy machine makes that long)
                opened = self.connected_at
                if opened > -math.inf and host.clock.now() - opened >= host.scaled(HEALTHY_SESSION):
                    key_refusals = 0
                    self.failures = 0
            except asyncio.CancelledError:
                raise
            except AuthenticationError as exc:
                key_refusals += 1
                host.live_key_refused(tracked)
                note = str(exc)
                if key_refusals >= 3:
                    host.live_changed(tracked, LIVE_FALLBACK, note)
                    return
            except (NotFoundError, UnsupportedError) as exc:
                # no socket for this conversation there, or one this client will not follow
                host.live_changed(tracked, LIVE_FALLBACK, str(exc))
                return
            except OpenHandsError as exc:
                note = str(exc)
                if getattr(exc, "too_big", False):
                    tracked.drop(f"an event larger than {MAX_FRAME // 2**20} MB")
            except Exception as exc:  # a library failure must not end the feed quietly
                log.debug("live feed failed", exc_info=True)
                note = f"{type(exc).__name__}: {exc}"
            finally:
                self.connected = False
            self.failures += 1
            delay = backoff_delay(self.failures - 1, base=host.scaled(1.0), cap=host.scaled(30.0))
            if self.failures >= FALLBACK_AFTER:
                host.live_changed(
                    tracked, LIVE_FALLBACK, f"{note}; reconnecting at {wall_clock_in(delay)}"
                )
            await self.host.clock.sleep(delay)

    async def _session(self, endpoint: AgentEndpoint) -> None:
        host, tracked = self.host, self.tracked
        async with open_event_socket(endpoint, open_timeout=self.open_timeout) as sock:
            sock.on_drop = self._dropped
            self.socket = sock
            frames = sock.events().__aiter__()
            early: list[Event] = []
            # The server pushes the current state the moment it has subscribed this socket:
            # from then on nothing can slip between the REST read below and the socket.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.open_timeout
            pending: asyncio.Future[Event] | None = None
            try:
                while loop.time() < deadline:
                    pending = pending or asyncio.ensure_future(frames.__anext__())
                    done, _ = await asyncio.wait([pending], timeout=deadline - loop.time())
                    if not done:
                        break  # no state pushed yet: carry on, the next frame still counts
                    frame, pending = pending.result(), None
                    early.append(frame)
                    if frame.type in ("state", "stats"):
                        break
                # the status as of the subscription first (the history read after it is
                # newer and must not colour it), then the history, then what came since
                host.live_status(tracked, early)
                history = await host.agent.events_since(
                    endpoint,
                    gap_since(tracked.server_time),
                    on_drop=tracked.drop,
                    on_cut=tracked.begin_at,
                )
                self.connected = True
                self.connected_at = host.clock.now()
                self.connects += 1
                if self.failures < FALLBACK_AFTER:
                    host.live_changed(tracked, LIVE_ON, None)
                host.live_events(tracked, history, live=False)
                host.live_events(tracked, early, live=False)
                if pending is not None:
                    frame, pending = await pending, None
                    self._frame(frame)
                async for frame in frames:
                    self._frame(frame)
            except StopAsyncIteration:
                return
            finally:
                self.socket = None
                if pending is not None:
                    pending.cancel()

    def _dropped(self, why: str) -> None:
        """A frame the socket left out (binary, not JSON, too deep): counted on the
        conversation, said once in its feed."""
        self.tracked.drop(why)
        self.host.live_events(self.tracked, [], live=True)

    def _frame(self, frame: Event) -> None:
        host, tracked = self.host, self.tracked
        tracked.live_frame_at = host.clock.now()
        if self.failures:
            # frames flow again: live after all
            self.failures = 0
            host.live_changed(tracked, LIVE_ON, None)
        host.live_events(tracked, [frame], live=True)

    async def _within_rate(self) -> None:
        """Wait until one more connect keeps this conversation within its rate."""
        host, connects = self.host, self.tracked.live_connects
        window = host.scaled(60.0)
        while True:
            now = host.clock.now()
            recent = [t for t in connects if now - t < window]
            if len(recent) < MAX_CONNECTS_PER_MINUTE:
                connects.append(now)
                return
            await host.clock.sleep(recent[0] + window - now)


async def stop_all(feeds: list[LiveFeed]) -> None:
    for feed in feeds:
        feed.stop()
    for feed in feeds:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await feed.task

"""The tracker's base: its state, its loop (its own thread, or the caller's), the bridge that
runs every change to a conversation on that loop, publishing to subscribers, waiting and
shutdown. The parts in the modules beside it build on this."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ..api import status as st
from ..api.agent import AgentClient, AgentEndpoint
from ..api.backend import Backend
from ..api.errors import (
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    ServerError,
)
from ..api.models import Event
from ..api.secrets import package_logger
from ..api.transport import within
from .budget import RequestBudget
from .config import TrackerConfig
from .live import LiveFeed, stop_all
from .loops import BackgroundLoop, running_loop
from .state import Tracked

log = package_logger("openhands_jupyter.tracking")
#: what one conversation's event read can get wrong without the server as a whole being in
#: trouble (those, a 429 or a lost connection, pause every request instead)
CONVERSATION_FAULTS = (ServerError, InvalidResponseError, NotFoundError, ConflictError)
T = TypeVar("T")
BUSY = frozenset({st.STARTING, st.RUNNING, st.WAITING})


class TrackerCore:
    """The state every part of the tracker shares, and the loop they all run on. Registration
    and subscription may be called from any thread; what changes a conversation runs on the
    tracker's loop (the methods that say so must be called there)."""

    if TYPE_CHECKING:
        # defined by the parts (see ``Tracker``)
        async def _run(self) -> None: ...
        async def _gated(self) -> Callable[[], None]: ...
        def track(self, tracked: Tracked) -> None: ...
        def _entries_changed(self) -> None: ...
        def cancel_queued(self, tracked: Tracked) -> bool: ...
        def _renumber(self) -> None: ...
        async def _verify_starts(self, now: float) -> None: ...
        async def _launch_queued(self, now: float) -> None: ...
        async def _poll_start_tasks(self, starting: list[Tracked], now: float) -> None: ...
        async def _deliver_tasks(self, backend: Backend, waiting: list[Tracked]) -> None: ...
        def _needs_status(self, tracked: Tracked) -> bool: ...
        def _interval(self, tracked: Tracked) -> float: ...
        async def _poll_conversations(self, batch: list[Tracked]) -> None: ...
        def _set_status(self, tracked: Tracked, status: str) -> None: ...
        def _became_final(self, tracked: Tracked) -> None: ...
        def _answered(self, tracked: Tracked) -> None: ...
        def _events_readable(self, tracked: Tracked) -> bool: ...
        async def _poll_events(self, now: float) -> None: ...
        def _endpoint(self, tracked: Tracked) -> AgentEndpoint | None: ...
        def _live_covers(self, tracked: Tracked) -> bool: ...
        def _sync_live(self, tracked: Tracked) -> None: ...
        def live_feeds(self) -> list[LiveFeed]: ...
        def _quiet(self, tracked: Tracked, why: str) -> None: ...
        async def _check_quiet(self, now: float) -> None: ...
        async def _compare_stores(self, now: float) -> None: ...
        async def _poll_changes(self, now: float) -> None: ...
        async def _keep_titles(self, batch: list[Tracked]) -> None: ...
        def _evidence(self, tracked: Tracked, events: list[Event]) -> None: ...
        def _observe(self, tracked: Tracked, status: str, *, poll: bool) -> None: ...
        def _finish(self, tracked: Tracked, status: str | None) -> None: ...
        def _capped(self, tracked: Tracked) -> bool: ...
        def _cost_followed(self, tracked: Tracked) -> bool: ...
        def _check_cost(self, tracked: Tracked) -> None: ...
        async def command(self, *args: Any, **kwargs: Any) -> Any: ...

    def __init__(
        self,
        backend: Callable[[], Awaitable[Backend]],
        config: TrackerConfig | None = None,
        web_url: Callable[[Tracked], str | None] | None = None,
        agent: AgentClient | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self._backend = backend
        self._web_url = web_url or (lambda t: None)
        self.agent = agent or AgentClient()
        self._version: str | None = None
        self._backend_obj: Backend | None = None
        self.budget = RequestBudget(
            self.config.budget_per_minute,
            self.config.max_per_second,
            self.config.time_scale,
            self.config.clock,
        )
        self.clock = self.config.clock
        self.entries: dict[int, Tracked] = {}
        self.queue: deque[Tracked] = deque()
        self._lock = threading.RLock()
        self._launching = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._own_loop: BackgroundLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._blocked_until = 0.0
        self._failures = 0
        self._error: str | None = None
        self._queue_next_try = 0.0
        self._slot_freed = False
        self._sub_ids = 0
        self.closed = False
        self.watchers: list[Callable[[], None]] = []
        #: commands the loop sends by itself (a stop at the cost cap), kept until done
        self._background: set[asyncio.Task[None]] = set()
        self.requests = 0
        #: turns of the loop (each a tick and a sleep): a test's check that it never spins
        self.turns = 0

    def __repr__(self) -> str:
        where = "private thread" if self._own_loop else "caller's loop" if self.loop else "idle"
        return f"<Tracker {len(self.entries)} tracked, {len(self.queue)} queued, on {where}>"

    def ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.closed:
                raise RuntimeError("This client is closed.")
            loop = self.loop
            if (
                loop is not None
                and not loop.is_closed()
                and (self._own_loop is None or self._own_loop.running)
            ):
                return loop
            current = running_loop()
            if current is not None:
                self._own_loop = None
                self.loop = current
            else:
                self._own_loop = BackgroundLoop("openhands-tracker")
                self.loop = self._own_loop.loop
            self._task = None
            self._wake = None
            return self.loop

    @property
    def on_private_thread(self) -> bool:
        return self._own_loop is not None

    def _now(self) -> float:
        return self.clock.now()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the tracker's loop, from any thread."""
        loop = self.ensure_loop()
        if running_loop() is loop:
            loop.call_soon(fn, *args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def call_later(self, delay: float, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` on the tracker's loop after ``delay`` seconds (not scaled), from any
        thread."""
        self.call_soon(lambda: asyncio.get_running_loop().call_later(delay, fn))

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule a coroutine on the tracker's loop from any thread; never blocks."""
        loop = self.ensure_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def scaled(self, seconds: float) -> float:
        return self.config.s(seconds)

    def _here(self) -> bool:
        loop = self.ensure_loop()
        return running_loop() is loop

    def on_loop(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Run ``fn(*args)`` on the tracker's loop: at once when called there, else scheduled."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if self._here():
            try:
                future.set_result(fn(*args))
            except Exception as exc:
                future.set_exception(exc)
            return future

        async def call() -> T:
            return fn(*args)

        return self.submit(call())

    async def on_loop_async(self, fn: Callable[..., T], *args: Any) -> T:
        """:meth:`on_loop`, awaited from any loop."""
        return await asyncio.wrap_future(self.on_loop(fn, *args))

    def on_loop_sync(self, fn: Callable[..., T], *args: Any, timeout: float = 10.0) -> T | None:
        """:meth:`on_loop` from blocking code: waits when the tracker runs on its own thread;
        in a kernel cell (the tracker's loop is the caller's) it runs at once."""
        future = self.on_loop(fn, *args)
        if future.done() or self.on_private_thread:
            return future.result(timeout)
        return None

    def _start_task(self) -> None:
        if self.closed:
            return
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="openhands-tracker"
            )
            self._task._log_destroy_pending = False  # type: ignore[attr-defined]
        self._wake_up()

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _held_here(self, tracked: Tracked) -> None:
        """What every conversation this tracker holds gets from its settings, whether it is
        followed at once or queued first: its feed's length, its link and its start cadence."""
        tracked.feed = deque(tracked.feed, maxlen=self.config.feed_size)
        tracked.web_url = self._web_url(tracked)
        tracked.start_delay = self.config.s(self.config.start_interval)

    def wake(self) -> None:
        """Let the loop look again now (nothing once the client is closed: a widget or a
        callback may still ask after it)."""
        if self.closed:
            return
        self.call_soon(self._start_task)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        """Run ``coro`` in the background on the tracker's loop, kept until it is done."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _get_backend(self) -> Backend:
        backend = await self._backend()
        self._backend_obj = backend
        self._version = backend.version
        return backend

    def _publish(self, tracked: Tracked, force: bool = False) -> None:
        if tracked.settled and tracked.last_error and tracked.last_error.startswith("Retrying"):
            # ended and its answer read (the agent server's socket can bring both while the
            # app server is still being retried): nothing is left to retry for it
            tracked.last_error = tracked.retry_at = None
        if tracked.done is not None:
            if tracked.settled:
                tracked.done.set()
            else:
                tracked.done.clear()
        print_ = tracked.fingerprint()
        if not force and print_ == tracked._published and not tracked.pending_events:
            return
        tracked._published = print_
        new, tracked.pending_events = tuple(tracked.pending_events), []
        snap = tracked.snapshot(new)
        for fn, _ in list(tracked.subscribers.values()):
            try:
                fn(snap)
            except Exception:
                log.exception("subscriber failed")

    async def wait(self, tracked: Tracked, timeout: float | None = None) -> None:
        """Return once the status leaves queued/starting/running and the answer has been read;
        must run on the tracker loop. While it waits, the conversation counts as watched."""
        if tracked.settled:
            return
        if tracked.done is None:
            tracked.done = asyncio.Event()
        tracked.done.clear()
        self._start_task()
        async with self.watching(tracked):
            await within(tracked.done.wait(), timeout)

    @contextlib.asynccontextmanager
    async def watching(self, tracked: Tracked) -> AsyncIterator[None]:
        """Count as a watcher of ``tracked`` meanwhile (it gets the live feed). Tracker loop."""
        tracked.waiters += 1
        self._sync_live(tracked)
        try:
            yield
        finally:
            tracked.waiters -= 1
            self._sync_live(tracked)

    async def stop_task(self) -> None:
        await stop_all(self.live_feeds())
        task = self._task
        self._task = None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def reconfigure(self, config: TrackerConfig) -> None:
        """New cadence and budget for this same tracker (``%config``): what it follows, its
        sockets and its one budget stay."""
        with self._lock:
            self.config = config
            self.budget.reconfigure(
                config.budget_per_minute, config.max_per_second, config.time_scale
            )
        self.wake()

    def close(self, cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop polling and release the loop thread (if any). ``cleanup`` runs on the private
        loop before it stops (to close connections). Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self.watchers.clear()
        loop, own = self.loop, self._own_loop
        if loop is None or loop.is_closed():
            return
        if own is not None:

            async def finish() -> None:
                await self.stop_task()
                if cleanup is not None:
                    await cleanup()

            try:
                own.run(finish(), timeout=5)
            except (RuntimeError, concurrent.futures.TimeoutError):
                pass
            own.stop()
        elif running_loop() is loop:
            for feed in self.live_feeds():
                feed.stop()
            if self._task is not None:
                self._task.cancel()
        else:

            def cancel_all() -> None:
                for feed in self.live_feeds():
                    feed.stop()
                if self._task is not None:
                    self._task.cancel()

            try:
                loop.call_soon_threadsafe(cancel_all)
            except RuntimeError:
                pass

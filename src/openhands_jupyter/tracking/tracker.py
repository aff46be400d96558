"""The one polling loop per client: batched status, event tails, cadence, budget, launch queue."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ..api import status as st
from ..api.agent import AgentClient, AgentEndpoint
from ..api.backend import Backend, request_gate
from ..api.errors import (
    APIConnectionError,
    ConcurrencyLimitError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    OpenHandsError,
    RateLimitError,
    ServerError,
    UnsupportedError,
)
from ..api.models import ConversationInfo, Event, StartTask
from ..api.secrets import package_logger
from ..api.transport import backoff_delay, within
from . import changes, store_check
from .budget import RequestBudget
from .commands import SEND, Args, Under
from .config import TrackerConfig
from .live import LiveFeed, gap_since, stop_all
from .loops import BackgroundLoop, running_loop
from .state import LIVE_FALLBACK, LIVE_OFF, Subscriber, Tracked
from .steering import Steering

log = package_logger("openhands_jupyter.tracking")
#: what one conversation's event read can get wrong without the server as a whole being in
#: trouble (those, a 429 or a lost connection, pause every request instead)
CONVERSATION_FAULTS = (ServerError, InvalidResponseError, NotFoundError, ConflictError)
#: the shortest wait after a turn of the loop that sent nothing
IDLE_TURN = 0.25
#: how long after its live feed gave up a conversation's socket is tried again (seconds)
LIVE_RETRY = 60.0
#: how long a connected socket may lag a poll's new status before it counts as quiet
SOCKET_GRACE = 2.0
#: how long a busy conversation's socket may say nothing before one REST read checks it
QUIET_AFTER = 15.0
#: seconds (scaled) after the answer came live before the last read of what followed it
AFTER_ANSWER = 1.0
#: the start phase of a start whose request is on its way (``start(background=True)``)
SENDING = "SENDING_REQUEST"
T = TypeVar("T")
BUSY = frozenset({st.STARTING, st.RUNNING, st.WAITING})
MAX_START_ATTEMPTS = 4
MAX_TITLE_ATTEMPTS = 5


def live_newer_than(tracked: Tracked, sent_at: float) -> bool:
    """Whether the socket reported a status after a request sent at ``sent_at``."""
    return tracked.live_status_at > sent_at


class Tracker(Steering):
    """Follows many conversations with few requests. Registration and subscription may be
    called from any thread; what changes a conversation's state runs on the tracker's loop."""

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
        self.loops = 0

    def __repr__(self) -> str:
        where = "private thread" if self._own_loop else "caller's loop" if self.loop else "idle"
        return f"<Tracker {len(self.entries)} tracked, {len(self.queue)} queued, on {where}>"

    # -- loop management ------------------------------------------------------------------------
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

    # -- the one writer: everything that changes tracked state runs on the tracker's loop -------
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

    def wake(self) -> None:
        self.call_soon(self._start_task)

    async def _get_backend(self) -> Backend:
        backend = await self._backend()
        self._backend_obj = backend
        self._version = backend.version
        return backend

    # -- registration ---------------------------------------------------------------------------
    def track(self, tracked: Tracked) -> None:
        """Follow a conversation (or a start task) until it ends."""
        with self._lock:
            tracked.feed = deque(tracked.feed, maxlen=self.config.feed_size)
            tracked.tracking = True
            tracked.web_url = self._web_url(tracked)
            tracked.next_due = 0.0
            tracked.start_delay = self.config.s(self.config.start_interval)
            if tracked.status in st.FINAL and tracked.conversation_id and not tracked.feed:
                # attached after its end: read its last events for the feed and the answer, as
                # after an end seen live (until the finish message shows, a few times at most)
                tracked.final_left = max(tracked.final_left, self.config.final_fetches)
                tracked.events_due = 0.0
            self.entries[tracked.key] = tracked
        self.wake()
        self.call_soon(self._entries_changed)

    def _entries_changed(self) -> None:
        for watcher in list(self.watchers):
            try:
                watcher()
            except Exception:
                log.exception("watcher failed")

    def find(self, conversation_id: str) -> Tracked | None:
        """The conversation this tracker already follows under that id, if any."""
        with self._lock:
            for tracked in self.entries.values():
                if tracked.conversation_id == conversation_id:
                    return tracked
        return None

    def untrack(self, tracked: Tracked) -> None:
        with self._lock:
            self.entries.pop(tracked.key, None)
            tracked.tracking = False
            if tracked in self.queue:
                self.queue.remove(tracked)
                tracked.status = st.ERROR
                tracked.detail = "Launch cancelled before it started."
                self._renumber()
        self.call_soon(self._sync_live, tracked)
        self.call_soon(self._publish, tracked, True)
        self.call_soon(self._entries_changed)

    def cancel_queued(self, tracked: Tracked) -> bool:
        """Drop a queued launch; returns whether it was still queued."""
        with self._lock:
            if tracked not in self.queue:
                return False
        self.untrack(tracked)
        return True

    def accept_info(self, tracked: Tracked, info: ConversationInfo | None) -> None:
        """A status read outside the loop (``refresh()``), applied like the loop's own."""
        self._apply_info(tracked, info, self._now(), sent_at=-math.inf)
        self._sync_live(tracked)

    def accept_events(self, tracked: Tracked, events: list[Event]) -> None:
        """Events read outside the loop (``events()``)."""
        self._evidence(tracked, tracked.add_events(events))
        self._publish(tracked)

    def subscribe(
        self, tracked: Tracked, fn: Subscriber, *, visible: bool = True
    ) -> Callable[[], None]:
        """Call ``fn(snapshot)`` on every change (on the tracker's loop). Returns an unsubscriber.
        A visible subscriber (a widget on screen) makes the conversation watched: it gets the
        agent server's live feed."""
        with self._lock:
            self._sub_ids += 1
            sid = self._sub_ids

        def add() -> None:
            tracked.subscribers[sid] = (fn, visible)
            if visible and tracked.status not in st.FINAL:
                tracked.events_due = min(tracked.events_due, self._now())
            try:
                fn(tracked.snapshot(tuple(tracked.feed)))
            except Exception:
                log.exception("subscriber failed")
            self._sync_live(tracked)
            self._start_task()

        self.call_soon(add)

        def unsubscribe() -> None:
            def remove() -> None:
                if tracked.subscribers.pop(sid, None) is not None:
                    self._sync_live(tracked)

            with contextlib.suppress(RuntimeError):
                self.call_soon(remove)

        return unsubscribe

    # -- launching ------------------------------------------------------------------------------
    def _capacity_left(self) -> bool:
        limit = self.config.max_concurrent
        if limit is None:
            return True
        busy = sum(1 for t in self.entries.values() if t.status in BUSY and t not in self.queue)
        return busy + self._launching < limit

    def _renumber(self) -> None:
        for i, queued in enumerate(self.queue, 1):
            queued.queue_position = i

    async def launch(self, tracked: Tracked) -> None:
        """Send the start request now, or queue it. Runs on any loop. Raises what the server
        refuses outright (bad input, auth); queues on the concurrency or rate limit; after an
        answer that leaves it unknown whether the start happened, checks before sending again."""
        with self._lock:
            if self.queue or not self._capacity_left():
                self._enqueue(tracked)
                return
            self._launching += 1
        try:
            outcome = await self._attempt(tracked)
        finally:
            with self._lock:
                self._launching -= 1
        if outcome != "queued":
            self.track(tracked)

    async def launch_reporting(self, tracked: Tracked) -> None:
        """:meth:`launch` for a start nobody awaits: a refusal becomes the conversation's error
        (shown where it is shown), never an exception lost in the loop."""
        try:
            await self.launch(tracked)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = (
                str(exc) if isinstance(exc, OpenHandsError) else f"{type(exc).__name__}: {exc}"
            )
            tracked.start_phase = None
            self._set_status(tracked, st.ERROR)
            tracked.detail = message
        else:
            if tracked.start_phase == SENDING:
                tracked.start_phase = None
        self._publish(tracked)

    def _enqueue(self, tracked: Tracked, *, front: bool = False, reason: str | None = None) -> None:
        with self._lock:
            tracked.status = st.QUEUED
            tracked.detail = reason or "Waiting for a free slot (max_concurrent reached)."
            if front:
                self.queue.appendleft(tracked)
            else:
                self.queue.append(tracked)
            self._renumber()
            self.entries[tracked.key] = tracked
            tracked.tracking = True
            if self._queue_next_try <= self._now():
                self._queue_next_try = self._now() + self.config.s(self.config.queue_retry_interval)
        self.wake()
        self.call_soon(self._publish, tracked, False)
        self.call_soon(self._entries_changed)

    async def _attempt(self, tracked: Tracked, *, front: bool = False) -> str:
        """One start request: ``"started"``, ``"queued"`` or ``"verify"`` (it may have started:
        the loop looks for it before sending again)."""
        assert tracked.request is not None
        token = request_gate.set(self._gated)
        sent_at = time.time()
        backend: Backend | None = None
        try:
            backend = await self._get_backend()
            tracked.start_attempts += 1
            task = await backend.start(tracked.request)
        except ConcurrencyLimitError as exc:
            self._enqueue(tracked, front=front, reason=str(exc))
            return "queued"
        except RateLimitError as exc:
            wait = exc.retry_after if exc.retry_after is not None else self.config.s(10.0)
            with self._lock:
                self._queue_next_try = self._now() + wait
                self._blocked_until = max(self._blocked_until, self._now() + wait)
            self._enqueue(tracked, front=front, reason=f"{exc}; launching when allowed")
            return "queued"
        except (ServerError, APIConnectionError, InvalidResponseError) as exc:
            if getattr(exc, "not_sent", False) or backend is None or backend.version != "v1":
                raise
            if tracked.start_attempts >= MAX_START_ATTEMPTS:
                tracked.status = st.ERROR
                tracked.detail = f"The start failed {tracked.start_attempts} times: {exc}"
                return "started"
            tracked.verify_since = sent_at
            tracked.status = st.STARTING
            tracked.last_error = (
                f"Retrying: the start request failed ({exc}); checking whether it was created"
            )
            tracked.next_due = self._now() + self.config.s(self.config.start_interval)
            return "verify"
        finally:
            request_gate.reset(token)
        tracked.verify_since = None
        tracked.last_error = None
        self._apply_start(tracked, task)
        return "started"

    async def _verify_starts(self, now: float) -> None:
        """For starts whose answer was lost: adopt the start task if the server made one, else
        send the request again (it was never received)."""
        pending = [
            t
            for t in self.entries.values()
            if t.verify_since is not None and t.start_task_id is None and t.next_due <= now
        ]
        if not pending:
            return
        backend = await self._get_backend()
        known = {t.start_task_id for t in self.entries.values() if t.start_task_id}
        for tracked in pending:
            assert tracked.request is not None and tracked.verify_since is not None
            found = await backend.find_start_task(tracked.request, tracked.verify_since, known)
            if found is not None:
                tracked.verify_since = None
                tracked.last_error = None
                self._apply_start(tracked, found)
                known.add(found.id)
            else:
                await self._attempt(tracked)
            tracked.next_due = self._now() + self.config.s(self.config.start_interval)
            self._publish(tracked)

    async def _launch_queued(self, now: float) -> None:
        while self.queue:
            with self._lock:
                head = self.queue[0]
                if not self._capacity_left() or now < self._blocked_until:
                    return
                if (
                    self.config.max_concurrent is None
                    and not self._slot_freed
                    and (now < self._queue_next_try)
                ):
                    return
                self._slot_freed = False
                self.queue.popleft()
                self._renumber()
                head.queue_position = None
                self._launching += 1
            try:
                outcome = await self._attempt(head, front=True)
            except APIConnectionError:
                self._enqueue(head, front=True, reason=head.detail)
                raise
            except OpenHandsError as exc:
                head.status = st.ERROR
                head.detail = f"Start failed: {exc}"
                self._publish(head)
                continue
            finally:
                with self._lock:
                    self._launching -= 1
            if outcome == "queued":
                return
            head.tracking = True
            head.next_due = max(
                head.next_due, self._now() + self.config.s(self.config.start_interval)
            )
            self._publish(head)

    # -- the loop -------------------------------------------------------------------------------
    async def _run(self) -> None:
        request_gate.set(self._gated)
        wake = self._wake
        assert wake is not None
        while not self.closed:
            wake.clear()
            self.loops += 1
            sent = self.requests
            now = self._now()
            if now >= self._blocked_until:
                try:
                    await self._tick(now)
                    if self._error is not None:
                        self._set_error(None, None)
                    self._failures = 0
                except asyncio.CancelledError:
                    raise
                except OpenHandsError as exc:
                    self._on_failure(exc)
                except Exception as exc:
                    log.exception("tracker tick failed")
                    self._on_failure(OpenHandsError(f"{type(exc).__name__}: {exc}"))
            delay = self._next_wakeup() - self._now()
            if delay <= 0 and self.requests == sent:
                # something looks due but the tick had nothing to send for it: never spin
                delay = self.config.s(IDLE_TURN)
            if delay > 0:
                await self.clock.wait(wake, min(delay, 3600.0))

    async def _gated(self) -> Callable[[], None]:
        """Before each request: wait out a server-imposed pause (429), then the budget."""
        while (wait := self._blocked_until - self._now()) > 0:
            await self.clock.sleep(wait)
        done = await self.budget.acquire()
        self.requests += 1
        return done

    def _on_failure(self, exc: OpenHandsError) -> None:
        self._failures += 1
        cfg = self.config
        delay = backoff_delay(self._failures - 1, base=cfg.s(2.0), cap=cfg.s(cfg.max_backoff))
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        self._blocked_until = max(self._blocked_until, self._now() + delay)
        log.debug("tracker request failed (%s); retrying in %.1fs", exc, delay)
        self._set_error(str(exc), time.time() + delay)

    def _set_error(self, error: str | None, retry_at: float | None) -> None:
        self._error = error
        for tracked in list(self.entries.values()):
            if tracked.status in st.FINAL and tracked.final_left <= 0 and error is not None:
                continue
            tracked.last_error = f"Retrying: {error}" if error else None
            tracked.retry_at = retry_at
            self._publish(tracked)

    def _next_wakeup(self) -> float:
        now = self._now()
        if now < self._blocked_until:
            return self._blocked_until
        due = math.inf
        for tracked in list(self.entries.values()):
            due = min(
                due,
                tracked.next_due if self._needs_status(tracked) else math.inf,
                tracked.events_due if self._events_readable(tracked) else math.inf,
                tracked.changes.next_due() if tracked.visible and tracked.info else math.inf,
                tracked.store_due,
            )
        if self.queue:
            due = min(due, self._queue_next_try if self.config.max_concurrent is None else now + 1)
        return due

    def _events_readable(self, tracked: Tracked) -> bool:
        """Its events can be read now (a start task has none yet)."""
        return tracked.info is not None and tracked.events_supported

    def _needs_status(self, tracked: Tracked) -> bool:
        if tracked.status == st.QUEUED or not tracked.tracking:
            return False
        return (
            tracked.status not in st.FINAL
            or tracked.unconfirmed
            or tracked.title_checks > 0
            or tracked.command is not None
        )

    def _interval(self, tracked: Tracked) -> float:
        cfg = self.config
        if tracked.status in (st.RUNNING, st.STARTING) or tracked.command is not None:
            return cfg.s(cfg.poll_interval)
        if tracked.status in (st.IDLE, st.WAITING):
            return cfg.s(cfg.idle_interval)
        if tracked.status == st.PAUSED:
            return cfg.s(cfg.paused_interval)
        return cfg.s(cfg.poll_interval * 2)

    async def _tick(self, now: float) -> None:
        if self.queue:
            await self._launch_queued(now)
        await self._verify_starts(now)
        entries = [t for t in self.entries.values() if self._needs_status(t)]
        starting = [t for t in entries if t.conversation_id is None and t.start_task_id]
        if any(t.next_due <= now for t in starting):
            await self._poll_start_tasks(starting, now)
        convs = [t for t in entries if t.conversation_id]
        due = [t for t in convs if t.next_due <= now]
        if due:
            batch = [t for t in convs if t.next_due <= now + self._interval(t) / 2]
            await self._poll_conversations(batch)
        await self._poll_events(self._now())
        await self._check_quiet(self._now())
        await self._poll_changes(self._now())
        await self._compare_stores(self._now())

    async def _compare_stores(self, now: float) -> None:
        """A few comparisons a tick, once no event read is due: they come last."""
        if any(t.events_due <= now and self._events_readable(t) for t in self.entries.values()):
            return
        due = [t for t in self.entries.values() if t.store_due <= now]
        for tracked in due[: store_check.PER_TICK]:
            await store_check.compare(await self._get_backend(), tracked, now, self.config)
            self._publish(tracked)

    async def _poll_changes(self, now: float) -> None:
        """Read what the agent changed, for conversations a widget shows it for: after an
        edit (at most once a second) and once after the run ends. While the agent server is
        up these reads go to it, not to the app server."""
        due = [
            t
            for t in self.entries.values()
            if t.info is not None and t.visible and t.changes.wanted(now)
        ]
        if not due:
            return
        backend = await self._get_backend()
        cfg = self.config
        for tracked in sorted(due, key=lambda t: t.status not in BUSY):
            assert tracked.info is not None
            try:
                await changes.refresh(backend, tracked.info, tracked.changes)
            except CONVERSATION_FAULTS as exc:
                delay = backoff_delay(
                    tracked.changes.failures, base=cfg.s(2.0), cap=cfg.s(cfg.max_backoff)
                )
                changes.failed(tracked.changes, exc, self._now() + delay)
            else:
                tracked.changes.due = self._now() + cfg.s(changes.GAP)
            self._publish(tracked)

    async def _keep_titles(self, batch: list[Tracked]) -> None:
        """The server replaces a title given at the start with one it generates (once, some
        seconds in): give it back, and look again twice after each time (a few times at most)."""
        for tracked in batch:
            wanted = tracked.request.title if tracked.request else None
            info = tracked.info
            if not wanted or info is None or not tracked.conversation_id:
                continue
            if info.title == wanted:
                if tracked.title_checks > 0:
                    tracked.title_checks -= 1
                    self._check_title_later(tracked)
                continue
            if tracked.title_attempts >= MAX_TITLE_ATTEMPTS:
                tracked.title_checks = 0
                continue
            tracked.title_attempts += 1
            backend = await self._get_backend()
            try:
                await backend.set_title(info, wanted)
                tracked.title_checks = 2
                self._check_title_later(tracked)
            except UnsupportedError:
                tracked.title_attempts = MAX_TITLE_ATTEMPTS
                tracked.title_checks = 0
            except (NotFoundError, ConflictError) as exc:
                log.debug("could not set the title: %s", exc)

    def _check_title_later(self, tracked: Tracked) -> None:
        due = self._now() + self.config.s(self.config.poll_interval * 3)
        tracked.next_due = min(tracked.next_due, due) if tracked.status not in st.FINAL else due

    async def _poll_start_tasks(self, starting: list[Tracked], now: float) -> None:
        backend = await self._get_backend()
        ids = [t.start_task_id for t in starting if t.start_task_id]
        tasks = await backend.start_tasks(ids)
        cfg = self.config
        for tracked, task in zip(starting, tasks):
            if task is None:
                tracked.misses += 1
                if tracked.misses >= 3:
                    tracked.status = st.ERROR
                    tracked.detail = "The server does not know this start task."
            else:
                tracked.misses = 0
                self._apply_start(tracked, task)
            # someone watching wants to see the agent's first steps: keep asking every
            # start_interval (one request covers every start task); else slow down
            growth = 1.0 if tracked.watched else cfg.start_growth
            tracked.start_delay = min(tracked.start_delay * growth, cfg.s(cfg.start_max_interval))
            tracked.next_due = now + (tracked.start_delay if tracked.conversation_id is None else 0)
            self._publish(tracked)
        ready = [t for t in starting if t.conversation_id]
        if ready:
            await self._poll_conversations(ready)

    def _apply_start(self, tracked: Tracked, task: StartTask) -> None:
        tracked.start_task_id = tracked.start_task_id or task.id
        tracked.start_phase = task.status
        if task.failed:
            tracked.status = st.ERROR
            tracked.detail = task.detail or "The conversation failed to start."
            self._became_final(tracked)
        elif task.ready and task.app_conversation_id:
            tracked.conversation_id = task.app_conversation_id
            tracked.start_phase = None
            tracked.status = st.STARTING
        else:
            tracked.status = st.STARTING
        tracked.web_url = self._web_url(tracked)

    async def _poll_conversations(self, batch: list[Tracked]) -> None:
        backend = await self._get_backend()
        self._version = backend.version
        ids = [t.conversation_id for t in batch if t.conversation_id]
        has_run = frozenset(t.conversation_id for t in batch if t.has_run and t.conversation_id)
        sent_at = self._now()
        infos = await backend.conversations(ids, has_run)
        now = self._now()
        for tracked, info in zip(batch, infos):
            self._apply_info(tracked, info, now, sent_at=sent_at, asked_at=sent_at)
            self._sync_live(tracked)
        await self._keep_titles(batch)
        await self._deliver_tasks(backend, [t for t in batch if t.undelivered])

    async def _deliver_tasks(self, backend: Backend, waiting: list[Tracked]) -> None:
        """Conversations started in confirmation mode get their task once the agent server is
        up: first its policy (every action waits for the user), then the task, so that no
        action can run before the policy is in place."""
        for tracked in waiting:
            info = tracked.info
            request = tracked.request
            if info is None or request is None or (info.sandbox_status or "") != "RUNNING":
                continue
            # the task is a message like any other: what comes after the server shows it is
            # its answer (the socket can bring it before the request returns)
            tracked.expect_echo(request.task)
            try:
                await backend.start_confirmed(info, request.task)
            except CONVERSATION_FAULTS as exc:
                tracked.expect_echo(None)
                tracked.last_error = f"Retrying: the task could not be sent yet ({exc})"
                self._publish(tracked)
                continue
            tracked.delivered = True
            if tracked.last_error and tracked.last_error.startswith("Retrying: the task"):
                tracked.last_error = None
            tracked.command = Under(SEND, tracked.status, self._now(), Args(request.task))
            tracked.command.answered = True
            tracked.command_at = tracked.command.since
            tracked.next_due = tracked.events_due = self._now() + self.config.s(0.5)
            self._sync_live(tracked)
            self._publish(tracked)

    def _set_status(self, tracked: Tracked, status: str) -> None:
        """Every status change goes through here, so that ends and restarts are noticed."""
        before = tracked.status
        tracked.status = status
        if status in st.FINAL and before not in st.FINAL:
            self._became_final(tracked)
        elif status not in st.FINAL and before in st.FINAL:
            tracked.final_left = 0
        if before in BUSY and status not in BUSY:
            self._slot_freed = True
        if before == st.PAUSED and status != before and tracked.changes.error:
            tracked.changes.everything_stale()  # its files can be read again
        if before == st.PAUSED and status in st.ACTIVE | {st.RUNNING}:
            tracked.stopped_why = None

    def _apply_info(
        self,
        tracked: Tracked,
        info: ConversationInfo | None,
        now: float,
        sent_at: float = -math.inf,
        asked_at: float = math.inf,
    ) -> None:
        """Apply a status read. ``sent_at``: when it was asked, for comparing with the live
        feed; ``asked_at`` likewise, for a loop poll that may have crossed a command."""
        if info is not None and asked_at < tracked.command_at:
            # asked before the last command reached the server: it can only show the state
            # from before it; the next poll (soon) tells
            tracked.next_due = min(tracked.next_due, now + self.config.s(0.5))
            return
        if info is not None and info.unreadable:
            # only this conversation: it keeps what was known and says why, the others go on
            tracked.last_error = tracked.record_error = info.unreadable
            tracked.next_due = now + self._interval(tracked)
            self._publish(tracked)
            return
        if tracked.record_error:
            if tracked.last_error == tracked.record_error:
                tracked.last_error = None
            tracked.record_error = None
        if info is None:
            tracked.misses += 1
            if tracked.seen or tracked.misses >= 5:
                if tracked.command is not None:
                    self._finish(tracked, None)
                self._set_status(tracked, st.ARCHIVED if tracked.seen else st.ERROR)
                tracked.detail = None if tracked.seen else "The server does not know this id."
        else:
            tracked.misses = 0
            tracked.seen = True
            tracked.info = info
            tracked.info_at = asked_at if asked_at != math.inf else now
            tracked.start_phase = None
            if (info.execution_status or "").lower() in st.RAN_STATES:
                tracked.has_run = True
            live_newer = (
                live_newer_than(tracked, sent_at)
                and (info.sandbox_status or "RUNNING").upper() == "RUNNING"
            )
            if live_newer:
                pass  # the agent server said something newer while this answer was on its way
            elif tracked.undelivered:
                pass  # started in confirmation mode: starting until its task is sent
            elif tracked.command is not None:
                # asked after the command went out: the server's word, unless it still shows
                # the state from before it (then the events may hold the evidence)
                self._observe(tracked, info.status, poll=asked_at != math.inf)
                if tracked.command is not None and (
                    tracked.live is None or not tracked.live.connected
                ):
                    tracked.events_due = min(tracked.events_due, now)
            elif self._socket_behind(tracked, info, now):
                pass  # the connected socket gets a moment to bring it itself, in order
            else:
                self._set_status(tracked, info.status)
        if not live_newer_than(tracked, sent_at):
            tracked.unconfirmed = False
        tracked.next_due = now + self._interval(tracked)
        if tracked.poll_ahead is not None:
            tracked.next_due = min(tracked.next_due, now + self.config.s(SOCKET_GRACE))
        wanted = tracked.visible or tracked.status == st.WAITING or self._capped(tracked)
        if wanted and tracked.status not in st.FINAL and tracked.events_due == math.inf:
            tracked.events_due = now
        self._check_cost(tracked)
        self._publish(tracked)

    def _socket_behind(self, tracked: Tracked, info: ConversationInfo, now: float) -> bool:
        """Whether a poll's new status waits for the connected socket: the socket brings each
        state as it happens, in order, and a poll that got ahead of it must not be undone by
        the frames still on their way. If the socket has not brought it by the next poll
        (``SOCKET_GRACE`` later), it has gone quiet: the poll's word stands, and the gap is
        read."""
        live = tracked.live
        running = (info.sandbox_status or "RUNNING").upper() == "RUNNING"
        if info.status == tracked.status or live is None or not live.connected or not running:
            tracked.poll_ahead = None
            return False
        ahead = tracked.poll_ahead
        if ahead is None or ahead[0] != info.status:
            tracked.poll_ahead = (info.status, now)
            return True
        if now - ahead[1] < self.config.s(SOCKET_GRACE):
            return True
        tracked.poll_ahead = None
        self._quiet(tracked, f"the server says {info.status}; the live feed did not")
        return False

    def _quiet(self, tracked: Tracked, why: str) -> None:
        """The socket is open but brings nothing: read what it missed over REST, and open it
        again (within the connect rate); meanwhile activity may be delayed."""
        log.debug("live feed of %s went quiet: %s", tracked.conversation_id, why)
        if tracked.live is not None:
            tracked.live.stop()
            tracked.live = None
        self.live_changed(tracked, LIVE_FALLBACK, f"the live feed went quiet ({why}); reopening")
        tracked.events_due = min(tracked.events_due, self._now())
        self._wake_up()

    async def _check_quiet(self, now: float) -> None:
        """A watched, running conversation whose socket has said nothing for a while: is the
        agent just busy (a long command), or has the socket gone quiet? One REST read of what
        came since tells."""
        quiet = self.config.s(QUIET_AFTER)
        for tracked in list(self.entries.values()):
            live = tracked.live
            if (
                live is None
                or not live.connected
                or tracked.status not in BUSY
                or now - max(tracked.live_frame_at, live.connected_at) < quiet
                or now - tracked.live_checked_at < quiet
            ):
                continue
            endpoint = self._endpoint(tracked)
            if endpoint is None:
                continue
            tracked.live_checked_at = now
            try:
                raw = await self.agent.events_since(endpoint, gap_since(tracked.server_time))
            except OpenHandsError as exc:
                log.debug("quiet check of %s failed: %s", tracked.conversation_id, exc)
                continue
            missed = tracked.add_events(self._belonging(tracked, raw))
            if missed:
                self._evidence(tracked, missed)
                self._quiet(tracked, f"{len(missed)} events came that it did not bring")
                self._publish(tracked)

    def _became_final(self, tracked: Tracked) -> None:
        self._slot_freed = True
        tracked.changes.everything_stale()
        answered = tracked.status != st.FINISHED or tracked.last_finish is not None
        if tracked.conversation_id and tracked.events_supported and not answered:
            tracked.final_left = self.config.final_fetches
            lag = 0.0 if self._endpoint(tracked) else self.config.event_lag_allowance
            tracked.events_due = self._now() + self.config.s(lag)
        else:
            self._answered(tracked)
        if tracked.conversation_id and self._endpoint(tracked) and tracked.visible:
            store_check.schedule(tracked, self._now(), self.config)

    def _answered(self, tracked: Tracked) -> None:
        """It ended with its answer in. A live feed stays for one last read a moment later:
        what the agent server sends right after the answer (the final state, the last cost
        figures) would otherwise be cut off with the socket."""
        if tracked.live is not None and not tracked.live.done:
            tracked.final_left = 1
            tracked.events_due = self._now() + self.config.s(AFTER_ANSWER)
        else:
            tracked.final_left = 0
            tracked.events_due = math.inf

    async def _poll_events(self, now: float) -> None:
        due = [t for t in self.entries.values() if t.events_due <= now and self._events_readable(t)]
        # the budget goes to what is on screen first, and there to what is at work
        due.sort(key=lambda t: (not t.visible, t.status not in BUSY, t.events_due))
        if not due:
            return
        backend = await self._get_backend()
        cfg = self.config
        for tracked in due:
            final = tracked.status in st.FINAL
            # events are read for a watcher with no live feed, for the answer after the end,
            # and for evidence that a command took effect
            # and for the actions waiting for approval (a script prints them)
            wanted = (
                tracked.watched
                or tracked.command is not None
                or tracked.status == st.WAITING
                or self._capped(tracked)
            )
            if not final and (not wanted or self._live_covers(tracked)):
                tracked.events_due = math.inf
                continue
            try:
                events, whole = await self._read_events(backend, tracked)
            except UnsupportedError:
                # a definite answer: no events to read here, nor an answer to wait for
                tracked.events_supported = False
                tracked.events_due = math.inf
                tracked.final_left = 0
                self._publish(tracked)
                continue
            except CONVERSATION_FAULTS as exc:
                # this conversation's answer went wrong (a 5xx, a cut-off or garbled body):
                # it retries on its own, and the others go on
                self._events_failed(tracked, exc, final)
                continue
            if tracked.events_failures:
                tracked.events_failures = 0
                if tracked.last_error == tracked.events_error:
                    tracked.last_error = tracked.retry_at = None
                tracked.events_error = None
            self._evidence(tracked, tracked.add_events(events))
            self._check_cost(tracked)
            if final:
                tracked.final_left -= 1
                answered = tracked.status != st.FINISHED or tracked.last_finish is not None
                # a store fed by an agent server lags it by a batch: the answer is in once
                # what followed it is
                answered = answered and (whole or any(_ends(e) for e in events))
                if answered or tracked.final_left <= 0:
                    tracked.final_left = 0
                    tracked.events_due = math.inf
                else:
                    # the app server's store gets events in batches (up to 30 s apart): wait
                    # for the finish message with growing gaps rather than many requests
                    used = cfg.final_fetches - tracked.final_left
                    gap = min(cfg.poll_interval * 2 ** max(0, used - 1), cfg.max_final_gap)
                    tracked.events_due = self._now() + cfg.s(gap)
            else:
                # at the pace of its status: idle and paused conversations' events rarely
                tracked.events_due = self._now() + self._interval(tracked)
            self._publish(tracked)
            self._sync_live(tracked)

    def _events_failed(self, tracked: Tracked, exc: OpenHandsError, final: bool) -> None:
        cfg = self.config
        tracked.events_failures += 1
        delay = backoff_delay(
            tracked.events_failures - 1, base=cfg.s(2.0), cap=cfg.s(cfg.max_backoff)
        )
        tracked.events_due = self._now() + delay
        log.debug("events of %s failed (%s); again in %.1fs", tracked.conversation_id, exc, delay)
        if final:
            # a failed read for the answer counts as one of the few tries: never a wait for ever
            tracked.final_left -= 1
            if tracked.final_left <= 0:
                tracked.final_left = 0
                tracked.events_due = math.inf
                tracked.last_error = tracked.events_error = f"The answer could not be read: {exc}"
                tracked.retry_at = None
                self._publish(tracked)
                return
        tracked.last_error = tracked.events_error = f"Retrying: {exc}"
        tracked.retry_at = time.time() + delay
        self._publish(tracked)

    async def _read_events(self, backend: Backend, tracked: Tracked) -> tuple[list[Event], bool]:
        """New events: from the agent server when it can be reached (it has them at once),
        else from the app server's store (which the agent server feeds in batches). Also
        whether they are all there are: not so when an agent server runs it and the store was
        read (it may lag the agent server by a batch)."""
        endpoint = self._endpoint(tracked)
        if endpoint is not None and self.config.live_events and tracked.live_state != LIVE_FALLBACK:
            try:
                raw = await self.agent.events_since(endpoint, gap_since(tracked.server_time))
                return self._belonging(tracked, raw), True
            except OpenHandsError as exc:
                log.debug("agent-server events failed (%s); reading the app server's", exc)
        assert tracked.info is not None
        if tracked.cursor.fresh:
            # the first read (a new conversation, or one attached to): its newest events, at
            # once, rather than its history a few pages per tick
            return await backend.events_tail(tracked.info, tracked.cursor), endpoint is None
        return await backend.events(tracked.info, tracked.cursor), endpoint is None

    # -- the live feed ---------------------------------------------------------------------------
    def _endpoint(self, tracked: Tracked) -> AgentEndpoint | None:
        if self._version != "v1" or tracked.info is None or self._backend_obj is None:
            return None
        if (tracked.info.sandbox_status or "").upper() != "RUNNING":
            return None
        return self._backend_obj.endpoint(tracked.info)

    def _agent_problem(self, tracked: Tracked) -> str | None:
        info, backend = tracked.info, self._backend_obj
        if self._version != "v1" or info is None or backend is None:
            return None
        if (info.sandbox_status or "").upper() != "RUNNING" or tracked.status in st.FINAL:
            return None
        return backend.endpoint_problem(info)

    def _live_wanted(self, tracked: Tracked) -> bool:
        # someone watches it, or its cost cap needs each figure as it comes (the app server's
        # store is fed in batches up to 30 s apart)
        if self.closed or not tracked.tracking:
            return False
        if not tracked.watched and not self._capped(tracked):
            return False
        if not self.config.live_events:
            return False
        if self._now() - tracked.live_gave_up_at < self.config.s(LIVE_RETRY):
            return False  # it gave up for a reason that does not change soon: later, again
        if self._endpoint(tracked) is None:
            return False
        if tracked.status in st.FINAL:
            return tracked.final_left > 0
        return tracked.status != st.PAUSED or tracked.command is not None

    def _live_covers(self, tracked: Tracked) -> bool:
        """Whether the live feed brings this conversation's events (so the app server's
        store need not be read); while it has not connected yet, it does not."""
        live = tracked.live
        return live is not None and not live.done and tracked.live_state != LIVE_FALLBACK

    def _sync_live(self, tracked: Tracked) -> None:
        """Open or close the agent-server feed as the conversation's watchers and status say.
        Runs on the tracker's loop."""
        wanted = self._live_wanted(tracked)
        if not self.config.live_events and tracked.watched and tracked.live_state != LIVE_FALLBACK:
            tracked.live_state = LIVE_FALLBACK
            tracked.live_note = "live activity is switched off (live_events=False)"
        elif tracked.watched and tracked.live_state != LIVE_FALLBACK and not wanted:
            why = self._agent_problem(tracked)
            if why:
                # an agent server this client will not send the session key to
                tracked.live_state = LIVE_FALLBACK
                tracked.live_note = why
        live = tracked.live
        if live is not None and live.done and tracked.live_state == LIVE_FALLBACK:
            # the feed gave up (no address, an unknown conversation, a refused key): not
            # again before LIVE_RETRY, whoever asks
            tracked.live_gave_up_at = self._now()
            tracked.live = live = None
            wanted = False
        if wanted and (live is None or live.done):
            tracked.live = LiveFeed(self, tracked, open_timeout=self.config.s(10.0))
        elif not wanted and live is not None:
            live.stop()
            tracked.live = None
            if tracked.live_state != LIVE_FALLBACK or tracked.status in st.FINAL:
                tracked.live_state = LIVE_OFF
                tracked.live_note = None
            if tracked.watched and tracked.status not in st.FINAL:
                tracked.events_due = min(tracked.events_due, self._now())
            self._publish(tracked)

    def live_endpoint(self, tracked: Tracked) -> AgentEndpoint | None:
        return self._endpoint(tracked)

    def live_events(self, tracked: Tracked, frames: list[dict[str, Any]], *, live: bool) -> None:
        """Frames from the agent server. Events are de-duplicated by id; the status follows
        the socket's state updates at once (history read over REST never moves it)."""
        events = self._belonging(tracked, frames)
        # in the order the server sent them: a command's evidence, then the states after it
        for event in events:
            # the state pushed on subscribe is a status, not an event of the run
            if event.kind != "full_state":
                self._evidence(tracked, tracked.add_events([event]))
            if live and event.type == "state":
                self._live_state(tracked, event)
        if tracked.changes.stale and tracked.changes.watchers:
            self._wake_up()
        self._check_cost(tracked)
        if tracked.status in st.FINAL and tracked.final_left > 0 and tracked.last_finish:
            if live and any(_ends(e) for e in events):
                # the answer, then the end said on the socket: nothing more to wait for
                tracked.final_left = 0
                tracked.events_due = math.inf
            elif tracked.final_left > 1:
                self._answered(tracked)
        self._publish(tracked)
        if tracked.status in st.FINAL or tracked.status == st.PAUSED:
            self._sync_live(tracked)

    def live_status(self, tracked: Tracked, frames: list[dict[str, Any]]) -> None:
        """The status from state frames only (the ones a socket got as it subscribed)."""
        for event in self._belonging(tracked, frames):
            if event.type == "state":
                self._live_state(tracked, event)
        self._publish(tracked)

    def _live_state(self, tracked: Tracked, event: Event) -> None:
        paused = event.text in ("paused", "interrupted")
        self._live_status(tracked, "paused" if paused else event.text)

    def _live_status(self, tracked: Tracked, execution_status: str) -> None:
        if execution_status in (
            "running",
            "finished",
            "error",
            "stuck",
            "waiting_for_confirmation",
        ):
            tracked.has_run = True
        status = st.v1_status("RUNNING", execution_status, tracked.has_run)
        tracked.live_status_at = self._now()
        tracked.poll_ahead = None
        if tracked.command is not None:
            # pushed after the command went out, but a push of the state from before it may
            # still be on its way: only another state counts
            before = tracked.status
            self._observe(tracked, status, poll=False)
            if tracked.status != before:
                tracked.unconfirmed = True
                tracked.next_due = min(tracked.next_due, self._now() + self._interval(tracked))
            return
        if status != tracked.status:
            self._set_status(tracked, status)
            tracked.unconfirmed = True
            if tracked.status in st.FINAL and tracked.last_finish and tracked.final_left > 1:
                self._answered(tracked)
            tracked.next_due = min(tracked.next_due, self._now() + self._interval(tracked))

    def live_changed(self, tracked: Tracked, state: str, note: str | None) -> None:
        if (state, note) == (tracked.live_state, tracked.live_note):
            return
        tracked.live_state = state
        tracked.live_note = note
        if state == LIVE_FALLBACK and tracked.watched:
            tracked.events_due = min(tracked.events_due, self._now())
            self._wake_up()
        self._publish(tracked)

    def live_key_refused(self, tracked: Tracked) -> None:
        """The session key was refused: it may have been replaced; ask for the status soon."""
        tracked.next_due = min(tracked.next_due, self._now())
        self._wake_up()

    def live_feeds(self) -> list[LiveFeed]:
        return [t.live for t in list(self.entries.values()) if t.live is not None]

    @property
    def open_sockets(self) -> int:
        """How many agent-server feeds are open right now."""
        return sum(1 for feed in self.live_feeds() if not feed.done)

    # -- publishing -----------------------------------------------------------------------------
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

    # -- waiting --------------------------------------------------------------------------------
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

    # -- shutdown -------------------------------------------------------------------------------
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


def _ends(event: Event) -> bool:
    """A state event that says the run ended."""
    return event.type == "state" and st.v1_status("RUNNING", event.text, True) in st.FINAL

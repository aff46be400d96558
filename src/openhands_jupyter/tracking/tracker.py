"""The one polling loop per client: batched status, event tails, cadence, budget, launch queue."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ..api import status as st
from ..api.backend import Backend, request_gate
from ..api.errors import (
    APIConnectionError,
    ConcurrencyLimitError,
    InvalidResponseError,
    NotFoundError,
    OpenHandsError,
    RateLimitError,
    ServerError,
    UnsupportedError,
)
from ..api.models import ConversationInfo, StartTask
from ..api.secrets import package_logger
from ..api.transport import backoff_delay
from .budget import RequestBudget
from .config import TrackerConfig
from .loops import BackgroundLoop, running_loop
from .state import Subscriber, Tracked

log = package_logger("openhands_jupyter.tracking")
T = TypeVar("T")
BUSY = frozenset({st.STARTING, st.RUNNING, st.WAITING})
MAX_START_ATTEMPTS = 4


class Tracker:
    """Follows many conversations with few requests. All public methods are thread-safe."""

    def __init__(
        self,
        backend: Callable[[], Awaitable[Backend]],
        config: TrackerConfig | None = None,
        web_url: Callable[[Tracked], str | None] | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self._backend = backend
        self._web_url = web_url or (lambda t: None)
        self.budget = RequestBudget(
            self.config.budget_per_minute, self.config.max_per_second, self.config.time_scale
        )
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
        self.requests = 0

    def __repr__(self) -> str:
        where = "private thread" if self._own_loop else "caller's loop" if self.loop else "idle"
        return f"<Tracker {len(self.entries)} tracked, {len(self.queue)} queued, on {where}>"

    # -- loop management ------------------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
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
        return time.monotonic()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the tracker's loop, from any thread."""
        loop = self._ensure_loop()
        if running_loop() is loop:
            loop.call_soon(fn, *args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule a coroutine on the tracker's loop from any thread; never blocks."""
        loop = self._ensure_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop)

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

    # -- registration ---------------------------------------------------------------------------
    def track(self, tracked: Tracked) -> None:
        """Follow a conversation (or a start task) until it ends."""
        with self._lock:
            tracked.feed = deque(tracked.feed, maxlen=self.config.feed_size)
            tracked.tracking = True
            tracked.web_url = self._web_url(tracked)
            tracked.next_due = 0.0
            tracked.start_delay = self.config.s(self.config.start_interval)
            self.entries[tracked.key] = tracked
        self.wake()
        self.call_soon(self._entries_changed)

    def _entries_changed(self) -> None:
        for watcher in list(self.watchers):
            try:
                watcher()
            except Exception:
                log.exception("watcher failed")

    def untrack(self, tracked: Tracked) -> None:
        with self._lock:
            self.entries.pop(tracked.key, None)
            tracked.tracking = False
            if tracked in self.queue:
                self.queue.remove(tracked)
                tracked.status = st.ERROR
                tracked.detail = "Launch cancelled before it started."
                self._renumber()
        self.call_soon(self._publish, tracked, True)
        self.call_soon(self._entries_changed)

    def cancel_queued(self, tracked: Tracked) -> bool:
        """Drop a queued launch; returns whether it was still queued."""
        with self._lock:
            if tracked not in self.queue:
                return False
        self.untrack(tracked)
        return True

    def poke(
        self, tracked: Tracked, *, reactivate: bool = False, status: str | None = None
    ) -> None:
        """Ask about this conversation soon (after a command); ``status`` is what the command
        is known to cause, shown until the server confirms it."""
        with self._lock:
            if status is not None:
                if status != tracked.status:
                    tracked.stale_status = tracked.status
                    tracked.stale_until = self._now() + self.config.s(self.config.poll_interval * 3)
                tracked.status = status
                if status in st.ACTIVE:
                    tracked.reset_answer()
            if reactivate and tracked.key not in self.entries:
                self.entries[tracked.key] = tracked
                tracked.tracking = True
            tracked.next_due = self._now() + self.config.s(0.5)
            if reactivate:
                tracked.final_left = 0
                tracked.events_due = tracked.next_due
        self.wake()
        self.call_soon(self._publish, tracked)

    def subscribe(
        self, tracked: Tracked, fn: Subscriber, *, visible: bool = True
    ) -> Callable[[], None]:
        """Call ``fn(snapshot)`` on every change (on the tracker's loop). Returns an unsubscriber."""
        with self._lock:
            self._sub_ids += 1
            sid = self._sub_ids
            tracked.subscribers[sid] = (fn, visible)
            if visible and tracked.status not in st.FINAL:
                tracked.events_due = min(tracked.events_due, self._now())

        def deliver() -> None:
            try:
                fn(tracked.snapshot(tuple(tracked.feed)))
            except Exception:
                log.exception("subscriber failed")

        self.call_soon(deliver)
        self.wake()

        def unsubscribe() -> None:
            with self._lock:
                tracked.subscribers.pop(sid, None)

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
            backend = await self._backend()
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
        backend = await self._backend()
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
            if delay > 0:
                try:
                    await asyncio.wait_for(wake.wait(), timeout=min(delay, 3600.0))
                except asyncio.TimeoutError:
                    pass

    async def _gated(self) -> Callable[[], None]:
        """Before each request: wait out a server-imposed pause (429), then the budget."""
        while (wait := self._blocked_until - self._now()) > 0:
            await asyncio.sleep(wait)
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
                tracked.events_due,
            )
        if self.queue:
            due = min(due, self._queue_next_try if self.config.max_concurrent is None else now + 1)
        return due

    def _needs_status(self, tracked: Tracked) -> bool:
        if tracked.status == st.QUEUED or not tracked.tracking:
            return False
        return tracked.status not in st.FINAL

    def _interval(self, tracked: Tracked) -> float:
        cfg = self.config
        if tracked.status in (st.RUNNING, st.STARTING):
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
        convs = [t for t in entries if t.conversation_id and t.status not in st.FINAL]
        due = [t for t in convs if t.next_due <= now]
        if due:
            batch = [t for t in convs if t.next_due <= now + self._interval(t) / 2]
            await self._poll_conversations(batch)
        await self._poll_events(self._now())

    async def _poll_start_tasks(self, starting: list[Tracked], now: float) -> None:
        backend = await self._backend()
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
            tracked.start_delay = min(
                tracked.start_delay * cfg.start_growth, cfg.s(cfg.start_max_interval)
            )
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
        backend = await self._backend()
        ids = [t.conversation_id for t in batch if t.conversation_id]
        has_run = frozenset(t.conversation_id for t in batch if t.has_run and t.conversation_id)
        infos = await backend.conversations(ids, has_run)
        now = self._now()
        for tracked, info in zip(batch, infos):
            self._apply_info(tracked, info, now)

    def _apply_info(self, tracked: Tracked, info: ConversationInfo | None, now: float) -> None:
        before = tracked.status
        if info is None:
            tracked.misses += 1
            if tracked.seen or tracked.misses >= 5:
                tracked.status = st.ARCHIVED if tracked.seen else st.ERROR
                tracked.detail = None if tracked.seen else "The server does not know this id."
        else:
            tracked.misses = 0
            tracked.seen = True
            tracked.info = info
            if info.status == tracked.stale_status and now < tracked.stale_until:
                pass  # the server has not caught up with our command yet
            else:
                tracked.status = info.status
                tracked.stale_status = None
            if info.status in (st.RUNNING, st.FINISHED, st.ERROR, st.STUCK, st.WAITING):
                tracked.has_run = True
            tracked.start_phase = None
        tracked.next_due = now + self._interval(tracked)
        if tracked.status in st.FINAL and before not in st.FINAL:
            self._became_final(tracked)
        elif tracked.status not in st.FINAL and before in st.FINAL:
            tracked.final_left = 0
        if before in BUSY and tracked.status not in BUSY:
            self._slot_freed = True
        if tracked.visible and tracked.status not in st.FINAL and tracked.events_due == math.inf:
            tracked.events_due = now
        self._publish(tracked)

    def _became_final(self, tracked: Tracked) -> None:
        self._slot_freed = True
        if tracked.conversation_id and tracked.events_supported:
            tracked.final_left = self.config.final_fetches
            tracked.events_due = self._now() + self.config.s(self.config.event_lag_allowance)
        else:
            tracked.final_left = 0
            tracked.events_due = math.inf

    async def _poll_events(self, now: float) -> None:
        due = [
            t
            for t in self.entries.values()
            if t.events_due <= now and t.info is not None and t.events_supported
        ]
        due.sort(key=lambda t: (not t.visible, t.events_due))
        if not due:
            return
        backend = await self._backend()
        cfg = self.config
        for tracked in due:
            final = tracked.status in st.FINAL
            if not final and not tracked.visible:
                tracked.events_due = math.inf
                continue
            try:
                assert tracked.info is not None
                events = await backend.events(tracked.info, tracked.cursor)
            except (NotFoundError, UnsupportedError, InvalidResponseError) as exc:
                if isinstance(exc, InvalidResponseError) and not isinstance(exc, UnsupportedError):
                    raise
                tracked.events_supported = False
                tracked.events_due = math.inf
                continue
            tracked.add_events(events)
            if final:
                tracked.final_left -= 1
                answered = tracked.status != st.FINISHED or tracked.last_finish is not None
                if answered or tracked.final_left <= 0:
                    tracked.final_left = 0
                    tracked.events_due = math.inf
                else:
                    tracked.events_due = self._now() + cfg.s(cfg.poll_interval)
            else:
                tracked.events_due = self._now() + cfg.s(cfg.poll_interval)
            self._publish(tracked)

    # -- publishing -----------------------------------------------------------------------------
    def _publish(self, tracked: Tracked, force: bool = False) -> None:
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
        must run on the tracker loop."""
        if tracked.settled:
            return
        if tracked.done is None:
            tracked.done = asyncio.Event()
        tracked.done.clear()
        self._start_task()
        await asyncio.wait_for(tracked.done.wait(), timeout)

    # -- shutdown -------------------------------------------------------------------------------
    async def _stop_task(self) -> None:
        task = self._task
        self._task = None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

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
                await self._stop_task()
                if cleanup is not None:
                    await cleanup()

            try:
                own.run(finish(), timeout=5)
            except (RuntimeError, concurrent.futures.TimeoutError):
                pass
            own.stop()
        elif running_loop() is loop:
            if self._task is not None:
                self._task.cancel()
        else:
            try:
                loop.call_soon_threadsafe(lambda: self._task.cancel() if self._task else None)
            except RuntimeError:
                pass

"""The one polling loop per client: each turn launches what is queued, polls the statuses due
in one batch, reads the events due, and keeps the rest up, within one request budget. The
parts it is made of live beside it: the register, launching, status reconciliation, event
reads, the live feeds, the policies and steering, on the base in ``core``."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from ..api import status as st
from ..api.backend import request_gate
from ..api.errors import OpenHandsError, RateLimitError
from ..api.transport import backoff_delay
from .core import log
from .cost_cap import CostCap
from .launching import Launching
from .live_host import LiveHosting
from .policies import Policies
from .reading import Reading
from .reconcile import Reconcile
from .registry import Registry
from .steering import Steering

#: the shortest wait after a turn of the loop that sent nothing
IDLE_TURN = 0.25


class Tracker(Registry, Launching, Reconcile, Reading, LiveHosting, Policies, CostCap, Steering):
    """Follows many conversations with few requests, on one loop and one budget."""

    async def _run(self) -> None:
        request_gate.set(self._gated)
        wake = self._wake
        assert wake is not None
        while not self.closed:
            wake.clear()
            self.turns += 1
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
            if self._slot_freed:
                due = now
        return due

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

"""The tracker's sense of time: the real clock, or a manual one that tests move by hand."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time


class Clock:
    """Real time: ``time.monotonic`` and ``asyncio`` sleeps."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Until ``event`` is set or ``timeout`` seconds pass, whichever comes first."""
        # asyncio.wait, not wait_for: on Python 3.10/3.11 a task cancelled inside wait_for can
        # hang while it cancels the inner wait
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait([waiter], timeout=max(0.0, timeout))
        finally:
            waiter.cancel()


class ManualClock(Clock):
    """Time that stands still until :meth:`advance` moves it; whatever slept until then wakes.
    Tests drive the tracker's schedule with it in no real time."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def _until(self, deadline: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if deadline <= self._now:
                future.set_result(None)
            else:
                heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        return future

    async def sleep(self, seconds: float) -> None:
        await self._until(self._now + seconds)

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        waiter: asyncio.Future[object] = asyncio.ensure_future(event.wait())
        timer: asyncio.Future[object] = asyncio.ensure_future(self._until(self._now + timeout))
        try:
            await asyncio.wait([waiter, timer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            timer.cancel()

    def advance(self, seconds: float) -> None:
        """Move time on and wake every sleeper whose time has come (from any thread)."""
        with self._lock:
            self._now += seconds
            due = []
            while self._sleepers and self._sleepers[0][0] <= self._now:
                due.append(heapq.heappop(self._sleepers)[2])
        for future in due:
            loop = future.get_loop()
            loop.call_soon_threadsafe(_wake, future)

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting for time to move."""
        with self._lock:
            return sum(1 for _, _, f in self._sleepers if not f.done())


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

"""The request budget: at most N requests in any sliding minute and at most 10 in any second."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .clock import Clock

MAX_PER_SECOND = 10


class RequestBudget:
    """A sliding-window limiter shared by every request the tracker makes, from any loop.

    Each request occupies its slot from when it is sent until its answer arrives, so that the
    server, which counts arrivals, never sees more than the budget in any window.
    ``time_scale`` shrinks both windows (tests and benchmarks run on sped-up time).
    """

    def __init__(
        self,
        per_minute: int = 60,
        per_second: int = MAX_PER_SECOND,
        time_scale: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        if per_minute < 1:
            raise ValueError("The request budget must allow at least 1 request per minute.")
        self.per_minute = int(per_minute)
        self.per_second = max(1, min(int(per_second), MAX_PER_SECOND))
        self.minute = 60.0 * time_scale
        self.second = 1.0 * time_scale
        self._stamps: list[list[float]] = []
        self._lock = threading.Lock()
        self.spent = 0
        self.clock = clock or Clock()

    def reconfigure(self, per_minute: int, per_second: int, time_scale: float) -> None:
        """New limits; the requests already counted stay counted."""
        if per_minute < 1:
            raise ValueError("The request budget must allow at least 1 request per minute.")
        with self._lock:
            self.per_minute = int(per_minute)
            self.per_second = max(1, min(int(per_second), MAX_PER_SECOND))
            self.minute = 60.0 * time_scale
            self.second = 1.0 * time_scale

    def __repr__(self) -> str:
        return f"RequestBudget(per_minute={self.per_minute}, per_second={self.per_second})"

    def _delay(self, now: float) -> float:
        self._stamps = [s for s in self._stamps if s[0] > now - self.minute]
        times = sorted(s[0] for s in self._stamps)
        wait = 0.0
        if len(times) >= self.per_minute:
            wait = times[len(times) - self.per_minute] + self.minute - now
        recent = [t for t in times if t > now - self.second]
        if len(recent) >= self.per_second:
            wait = max(wait, recent[len(recent) - self.per_second] + self.second - now)
        return wait

    def try_take(self) -> tuple[float, Callable[[], None] | None]:
        """Take a slot: ``(0, done)`` where ``done()`` marks the answer's arrival, or
        ``(wait, None)`` with how long to wait before trying again."""
        with self._lock:
            now = self.clock.now()
            wait = self._delay(now)
            if wait > 0:
                return wait, None
            stamp = [now]
            self._stamps.append(stamp)
            self.spent += 1

        def done() -> None:
            with self._lock:
                stamp[0] = max(stamp[0], self.clock.now())

        return 0.0, done

    async def acquire(self) -> Callable[[], None]:
        """Wait for a slot; call the returned function when the answer has arrived."""
        while True:
            wait, done = self.try_take()
            if done is not None:
                return done
            await self.clock.sleep(wait + 0.001)

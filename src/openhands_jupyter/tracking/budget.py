"""The request budget: at most N requests in any sliding minute and at most 10 in any second."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

MAX_PER_SECOND = 10


class RequestBudget:
    """A sliding-window limiter shared by every request the tracker makes, from any loop.

    ``time_scale`` shrinks both windows (tests and benchmarks run on sped-up time).
    """

    def __init__(
        self, per_minute: int = 60, per_second: int = MAX_PER_SECOND, time_scale: float = 1.0
    ) -> None:
        if per_minute < 1:
            raise ValueError("The request budget must allow at least 1 request per minute.")
        self.per_minute = int(per_minute)
        self.per_second = max(1, min(int(per_second), MAX_PER_SECOND))
        self.minute = 60.0 * time_scale
        self.second = 1.0 * time_scale
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()
        self.spent = 0

    def __repr__(self) -> str:
        return f"RequestBudget(per_minute={self.per_minute}, per_second={self.per_second})"

    def _delay(self, now: float) -> float:
        stamps = self._stamps
        while stamps and stamps[0] <= now - self.minute:
            stamps.popleft()
        wait = 0.0
        if len(stamps) >= self.per_minute:
            wait = stamps[len(stamps) - self.per_minute] + self.minute - now
        recent = sum(1 for s in reversed(stamps) if s > now - self.second) if stamps else 0
        if recent >= self.per_second:
            oldest_in_second = stamps[len(stamps) - self.per_second]
            wait = max(wait, oldest_in_second + self.second - now)
        return wait

    def try_take(self) -> float:
        """Take a slot and return 0, or return how long to wait before trying again."""
        with self._lock:
            now = time.monotonic()
            wait = self._delay(now)
            if wait <= 0:
                self._stamps.append(now)
                self.spent += 1
            return max(0.0, wait)

    async def acquire(self) -> None:
        while True:
            wait = self.try_take()
            if wait <= 0:
                return
            await asyncio.sleep(wait + 0.001)

    def used_in_last_minute(self) -> int:
        with self._lock:
            now = time.monotonic()
            return sum(1 for s in self._stamps if s > now - self.minute)

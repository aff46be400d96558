"""Waiting for a conversation and following its events as they come, for :class:`Conversation`:
``wait``, ``follow`` and their async forms, on the tracker's loop from any thread or cell."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Iterator
from typing import Any, TypeVar

from ..api.models import HIDDEN_TYPES, Event
from ..tracking import Snapshot, Tracked
from ..tracking.loops import reenter, running_loop
from .files import Host

T = TypeVar("T")
F = TypeVar("F", bound="FollowMixin")


class FollowMixin:
    """``wait()``, ``follow()`` and their ``*_async`` forms for :class:`Conversation`."""

    _tracked: Tracked
    _host: Host

    @property
    def status(self) -> str:  # pragma: no cover - the handle defines it
        raise NotImplementedError

    def track(self) -> Any:  # pragma: no cover - the handle defines it
        raise NotImplementedError

    async def wait_async(self: F, timeout: float | None = None) -> F:
        """Wait without blocking the loop until the agent stops working (see :meth:`wait`)."""
        tracker = self._host.tracker
        if self._tracked.settled:
            return self
        loop = tracker.ensure_loop()
        if not self._tracked.tracking:
            self.track()
        if running_loop() is loop:
            await tracker.wait(self._tracked, timeout)
        else:
            future = tracker.submit(tracker.wait(self._tracked, timeout))
            try:
                await asyncio.wrap_future(future)
            finally:
                future.cancel()
        return self

    def wait(self: F, timeout: float | None = None) -> F:
        """Block until the status is no longer queued, starting or running; return ``self``.

        In a notebook the kernel's loop keeps running meanwhile, so widgets stay live.
        Raises ``TimeoutError`` after ``timeout`` seconds; an interrupt ends the wait and
        tracking goes on.
        """
        if self._tracked.settled:
            return self
        tracker = self._host.tracker
        loop = tracker.ensure_loop()
        if not self._tracked.tracking:
            self.track()
        try:
            if running_loop() is loop:
                reenter(loop, self.wait_async(timeout))
            else:
                future = tracker.submit(tracker.wait(self._tracked, timeout))
                try:
                    future.result()
                finally:
                    future.cancel()
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"{self!r} is still {self.status} after {timeout:g} s; tracking goes on."
            ) from None
        except KeyboardInterrupt:
            # in a kernel the interrupt can land in the tracker's own step (it shares the
            # loop): tracking goes on, started again if it was stopped
            tracker.wake()
            raise
        return self

    async def _follow(self, queue: asyncio.Queue[Event | None]) -> None:
        """On the tracker's loop: feed ``queue`` with every new event until the agent stops."""
        tracker, tracked = self._host.tracker, self._tracked
        if not tracked.tracking:
            tracker.track(tracked)
        for event in list(tracked.feed):
            queue.put_nowait(event)

        def on_snapshot(snap: Snapshot) -> None:
            for event in snap.new_events:
                queue.put_nowait(event)

        unsubscribe = tracker.subscribe(tracked, on_snapshot, visible=False)
        try:
            async with tracker.watching(tracked):
                await tracker.wait(tracked)
        finally:
            unsubscribe()
            queue.put_nowait(None)

    async def follow_async(self) -> AsyncGenerator[Event, None]:
        """Each event as the agent works (first those already seen), until it stops working.
        While you follow, the conversation gets the agent server's live feed."""
        tracker = self._host.tracker
        loop = tracker.ensure_loop()
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        if running_loop() is loop:
            task: Any = asyncio.ensure_future(self._follow(queue))
            get = queue.get
        else:
            mine = asyncio.get_running_loop()
            relay: asyncio.Queue[Event | None] = asyncio.Queue()

            async def pump() -> None:
                while (item := await queue.get()) is not None:
                    mine.call_soon_threadsafe(relay.put_nowait, item)
                mine.call_soon_threadsafe(relay.put_nowait, None)

            async def both() -> None:
                await asyncio.gather(self._follow(queue), pump())

            task = asyncio.wrap_future(tracker.submit(both()))
            get = relay.get
        try:
            while (event := await get()) is not None:
                if event.type not in HIDDEN_TYPES:
                    yield event
        finally:
            task.cancel()

    def follow(self, timeout: float | None = None) -> Iterator[Event]:
        """:meth:`follow_async` for plain code: yields each event as it comes; ``timeout``
        bounds the wait for each one (``TimeoutError``)."""
        tracker = self._host.tracker
        loop = tracker.ensure_loop()
        agen = self.follow_async()
        try:
            while True:
                step = asyncio.wait_for(agen.__anext__(), timeout)
                try:
                    if running_loop() is loop:
                        event = reenter(loop, step)
                    else:
                        event = tracker.submit(_call(step)).result()
                except StopAsyncIteration:
                    return
                except asyncio.TimeoutError:
                    raise TimeoutError(
                        f"No new event from {self!r} within {timeout:g} s; tracking goes on."
                    ) from None
                yield event
        finally:
            closer = agen.aclose()
            if running_loop() is loop:
                reenter(loop, closer)
            else:
                with contextlib.suppress(Exception):
                    tracker.submit(closer).result(5)


async def _call(awaitable: Awaitable[T]) -> T:
    return await awaitable

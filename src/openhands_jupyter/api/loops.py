"""Event loops in daemon threads (stopped at interpreter exit), and the running loop if any:
where the tracker, blocking calls and a user's own httpx transport run."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
import weakref
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    """An event loop running forever in a daemon thread; stopped at interpreter exit."""

    def __init__(self, name: str = "openhands-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()
        self._ready.wait()
        _alive.add(self)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine there and block this thread for its result."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("Blocking call made from the client's own I/O thread.")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:
            return
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)
        _alive.discard(self)

    @property
    def running(self) -> bool:
        return self.thread.is_alive() and not self.loop.is_closed()


_alive: weakref.WeakSet[BackgroundLoop] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for loop in list(_alive):
        loop.stop(timeout=2.0)


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def reenter(loop: asyncio.AbstractEventLoop, awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` to completion on ``loop``, which is running (a kernel's), re-entrantly
    with nest-asyncio2; return its result.

    The loop's turn that runs this call may have begun before the loop was made re-entrant:
    that turn counted the callbacks ready then and pops that many once this call returns. The
    ones this call ran meanwhile are made up for with callbacks that do nothing, or that turn
    would pop an empty queue and stop the kernel's loop for good."""
    import nest_asyncio2

    if not getattr(loop, "_nest_patched", False):
        nest_asyncio2.apply(loop)
    ready: Any = getattr(loop, "_ready", None)
    waiting = len(ready) if ready is not None else 0
    task = asyncio.ensure_future(awaitable, loop=loop)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        task.cancel()
        raise
    finally:
        if ready is not None:
            for _ in range(waiting - len(ready)):
                loop.call_soon(_nothing)


def _nothing() -> None:
    """A callback that does nothing (see :func:`reenter`)."""

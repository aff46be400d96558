"""``Conversation``: the handle users hold for one OpenHands conversation, sync and async."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .api import status as st
from .api.backend import EventCursor
from .api.errors import ConflictError, InputError, NotFoundError
from .api.models import ConversationInfo, Event
from .tracking import Snapshot, Tracked
from .tracking.loops import running_loop

if TYPE_CHECKING:
    from .client import AsyncOpenHands


class Conversation:
    """One conversation: its live status, its events and the commands that steer it.

    Every blocking method has an ``*_async`` twin for use with ``await``.
    """

    def __init__(self, client: AsyncOpenHands, tracked: Tracked) -> None:
        self._client = client
        self._tracked = tracked

    # -- what it is -----------------------------------------------------------------------------
    @property
    def id(self) -> str | None:
        """The conversation id (32 hex digits); ``None`` while the start task runs or it is queued."""
        return self._tracked.conversation_id

    @property
    def start_task_id(self) -> str | None:
        return self._tracked.start_task_id

    @property
    def status(self) -> str:
        """One of queued, starting, running, idle, waiting, paused, finished, error, stuck,
        archived (or a newer server's own word)."""
        return self._tracked.status

    @property
    def start_phase(self) -> str | None:
        return self._tracked.start_phase

    @property
    def detail(self) -> str | None:
        """Why it failed or why it is queued, when the server or the client said so."""
        return self._tracked.detail

    @property
    def last_error(self) -> str | None:
        """The tracker's last request problem while it retries, else ``None``."""
        return self._tracked.last_error

    @property
    def info(self) -> ConversationInfo | None:
        return self._tracked.info

    @property
    def raw(self) -> dict[str, Any]:
        """The server's own fields (secrets masked)."""
        return dict(self._tracked.info.raw) if self._tracked.info else {}

    @property
    def task(self) -> str | None:
        return self._tracked.request.task if self._tracked.request else None

    @property
    def title(self) -> str | None:
        return self._tracked.title

    @property
    def repository(self) -> str | None:
        return self._tracked.repository

    @property
    def branch(self) -> str | None:
        return self._tracked.branch

    @property
    def url(self) -> str | None:
        """Where to open it in the OpenHands web app."""
        return self._client.web_url(self._tracked)

    @property
    def created_at(self) -> datetime | None:
        return self._tracked.info.created_at if self._tracked.info else None

    @property
    def updated_at(self) -> datetime | None:
        return self._tracked.info.updated_at if self._tracked.info else None

    @property
    def cost(self) -> float | None:
        return self._tracked.info.cost if self._tracked.info else None

    @property
    def pr_numbers(self) -> tuple[int, ...]:
        return self._tracked.info.pr_numbers if self._tracked.info else ()

    @property
    def feed(self) -> list[Event]:
        """The latest events the tracker has seen (bounded)."""
        return list(self._tracked.feed)

    @property
    def tracked(self) -> bool:
        return self._tracked.tracking

    @property
    def result(self) -> str | None:
        """The agent's final answer: its last finish message, else its last message."""
        tracked = self._tracked
        missing = tracked.last_finish is None and (
            self.status == st.FINISHED or tracked.last_agent_message is None
        )
        if missing and self.id and self.status not in st.ACTIVE:
            with contextlib.suppress(Exception):
                self.events()
        return tracked.result

    def __repr__(self) -> str:
        ident = (self.id or self.start_task_id or "pending")[:8]
        label = (self.title or self.task or "").replace("\n", " ")
        if len(label) > 40:
            label = label[:39] + "…"
        return f"<Conversation {ident} {self.status}{' ' + repr(label) if label else ''}>"

    def snapshot(self) -> Snapshot:
        return self._tracked.snapshot()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Conversation) and other._tracked is self._tracked

    def __hash__(self) -> int:
        return hash(self._tracked.key)

    # -- reading --------------------------------------------------------------------------------
    def _need_id(self) -> str:
        if not self.id:
            raise ConflictError(
                f"The conversation is {self.status}: it has no id yet. Wait for it to start."
            )
        return self.id

    async def refresh_async(self) -> Conversation:
        """Ask the server for the current state now."""
        cid = self._need_id()
        backend = await self._client.backend()
        [info] = await backend.conversations(
            [cid], frozenset([cid]) if self._tracked.has_run else frozenset()
        )
        if info is None:
            raise NotFoundError(f"Conversation {cid} not found.")
        self._client.tracker.call_soon(self._apply, info)
        self._tracked.info = info
        self._tracked.status = info.status
        return self

    def _apply(self, info: ConversationInfo) -> None:
        tracker = self._client.tracker
        tracker._apply_info(self._tracked, info, tracker._now())

    def refresh(self) -> Conversation:
        return self._client._run(self.refresh_async())

    async def events_async(self, limit: int | None = None) -> list[Event]:
        """All of the conversation's events from the server, oldest first (the last ``limit``)."""
        cid = self._need_id()
        backend = await self._client.backend()
        info = self._tracked.info or ConversationInfo(id=cid, status=self.status)
        events = await backend.events(info, EventCursor(), max_pages=50)
        finishes = [e.text for e in events if e.type == "finish" and e.text]
        messages = [
            e.text for e in events if e.type == "message" and e.source == "agent" and e.text
        ]
        if finishes:
            self._tracked.last_finish = finishes[-1]
        if messages:
            self._tracked.last_agent_message = messages[-1]
        return events[-limit:] if limit else events

    def events(self, limit: int | None = None) -> list[Event]:
        return self._client._run(self.events_async(limit))

    # -- steering -------------------------------------------------------------------------------
    async def send_async(self, text: str) -> None:
        """Send a follow-up message; the agent runs again."""
        if not text or not str(text).strip():
            raise InputError("The message is empty.")
        cid = self._need_id()
        backend = await self._client.backend()
        info = self._tracked.info or ConversationInfo(id=cid, status=self.status)
        await backend.send(info, str(text))
        self._client.tracker.poke(self._tracked, reactivate=True, status=st.RUNNING)

    def send(self, text: str) -> None:
        self._client._run(self.send_async(text))

    async def stop_async(self) -> None:
        """Pause the conversation's sandbox (V1) or stop it (V0); state is kept."""
        if self.status == st.QUEUED:
            self._client.tracker.cancel_queued(self._tracked)
            return
        backend = await self._client.backend()
        await backend.pause(await self._info())
        self._client.tracker.poke(self._tracked, reactivate=True, status=st.PAUSED)

    def stop(self) -> None:
        self._client._run(self.stop_async())

    async def resume_async(self) -> None:
        """Resume a paused conversation."""
        backend = await self._client.backend()
        await backend.resume(await self._info())
        self._client.tracker.poke(self._tracked, reactivate=True, status=st.STARTING)

    def resume(self) -> None:
        self._client._run(self.resume_async())

    async def delete_async(self) -> None:
        """Delete the conversation on the server and stop tracking it."""
        cid = self._need_id()
        backend = await self._client.backend()
        await backend.delete(cid)
        self._client.tracker.poke(self._tracked, status=st.ARCHIVED)

    def delete(self) -> None:
        self._client._run(self.delete_async())

    async def download_async(self) -> bytes:
        backend = await self._client.backend()
        return await backend.download(self._need_id())

    def download(self) -> bytes:
        """The conversation as a zip archive (V1 servers)."""
        return self._client._run(self.download_async())

    async def _info(self) -> ConversationInfo:
        if self._tracked.info is None or not self._tracked.info.sandbox_id:
            await self.refresh_async()
        assert self._tracked.info is not None
        return self._tracked.info

    # -- tracking -------------------------------------------------------------------------------
    def track(self) -> Conversation:
        """Follow it live (the default after start or get)."""
        self._client.tracker.track(self._tracked)
        return self

    def untrack(self) -> None:
        """Stop following it (a queued launch is cancelled)."""
        self._client.tracker.untrack(self._tracked)

    def cancel(self) -> bool:
        """Cancel a queued launch; returns whether it was still queued."""
        return self._client.tracker.cancel_queued(self._tracked)

    def subscribe(
        self, fn: Callable[[Snapshot], None], *, visible: bool = True
    ) -> Callable[[], None]:
        """Call ``fn(snapshot)`` on every change; returns a function that unsubscribes."""
        return self._client.tracker.subscribe(self._tracked, fn, visible=visible)

    async def wait_async(self, timeout: float | None = None) -> Conversation:
        """Wait without blocking the loop until the agent stops working (see :meth:`wait`)."""
        tracker = self._client.tracker
        if self._tracked.settled:
            return self
        loop = tracker._ensure_loop()
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

    def wait(self, timeout: float | None = None) -> Conversation:
        """Block until the status is no longer queued, starting or running; return ``self``.

        In a notebook the kernel's loop keeps running meanwhile, so widgets stay live.
        Raises ``TimeoutError`` after ``timeout`` seconds; an interrupt ends the wait and
        tracking goes on.
        """
        if self._tracked.settled:
            return self
        tracker = self._client.tracker
        loop = tracker._ensure_loop()
        if not self._tracked.tracking:
            self.track()
        try:
            if running_loop() is loop:
                _reenter(loop, self.wait_async(timeout))
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
        return self


def _reenter(loop: asyncio.AbstractEventLoop, coro: Any) -> None:
    """Run ``coro`` to completion on the already-running ``loop`` (a kernel's), re-entrantly."""
    import nest_asyncio2

    if not getattr(loop, "_nest_patched", False):
        nest_asyncio2.apply(loop)
    task = asyncio.ensure_future(coro, loop=loop)
    try:
        loop.run_until_complete(task)
    except BaseException:
        task.cancel()
        raise

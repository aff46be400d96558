"""``Conversation``: the handle users hold for one OpenHands conversation, sync and async."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..api import status as st
from ..api.actions import PendingAction
from ..api.backend import EventCursor
from ..api.errors import ConflictError, InputError, NotFoundError, OpenHandsError
from ..api.models import HIDDEN_TYPES, ConversationInfo, Event, PlanItem
from ..api.text import shorten, visible
from ..tracking import Snapshot, Tracked, Tracker
from ..tracking.commands import COMMANDS, STOP
from ..tracking.loops import reenter, running_loop
from .files import Host, WorkspaceMixin
from .following import FollowMixin
from .notify import NotifyMixin
from .results import ResultsMixin

T = TypeVar("T")
C = TypeVar("C", bound="Conversation")
P = ParamSpec("P")


def blocking(
    method: Callable[Concatenate[C, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[C, P], T]:
    """The blocking twin of a conversation's ``*_async`` steering method: the same arguments
    and text, run to its end (in a notebook the kernel's loop keeps running meanwhile)."""

    def twin(self: C, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._steered(method(self, *args, **kwargs))

    name = method.__name__.removesuffix("_async")
    twin.__name__, twin.__qualname__ = name, f"Conversation.{name}"
    twin.__doc__ = method.__doc__
    # help() and ``conv.stop?`` show the real arguments, not *args, **kwargs
    setattr(twin, "__signature__", inspect.signature(method))  # noqa: B010
    return twin


#: the commands a button may send (:meth:`Conversation.command_async`)
COMMAND_NAMES = frozenset(COMMANDS)


class Conversation(WorkspaceMixin, ResultsMixin, FollowMixin, NotifyMixin):
    """One conversation: its live status, its events and the commands that steer it.

    Every blocking method has an ``*_async`` twin for use with ``await``.
    """

    def __init__(self, host: Host, tracked: Tracked) -> None:
        self._host = host
        self._tracked = tracked

    @classmethod
    def of(cls: type[C], other: Conversation) -> C:
        """The same conversation behind another kind of handle."""
        return cls(other._host, other._tracked)

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
        return self._host.web_url(self._tracked)

    @property
    def created_at(self) -> datetime | None:
        return self._tracked.info.created_at if self._tracked.info else None

    @property
    def updated_at(self) -> datetime | None:
        return self._tracked.info.updated_at if self._tracked.info else None

    @property
    def cost(self) -> float | None:
        """Dollars spent so far, when the server reports it (``None`` on V0 servers)."""
        usage = self._tracked.usage
        return usage.cost if usage else None

    @property
    def tokens(self) -> dict[str, int | None]:
        """Prompt and completion tokens so far (``None`` where the server reports none)."""
        usage = self._tracked.usage
        return {
            "prompt": usage.prompt_tokens if usage else None,
            "completion": usage.completion_tokens if usage else None,
        }

    @property
    def pr_numbers(self) -> tuple[int, ...]:
        return self._tracked.info.pr_numbers if self._tracked.info else ()

    @property
    def feed(self) -> list[Event]:
        """The latest events the tracker has seen (bounded)."""
        return list(self._tracked.feed)

    @property
    def plan(self) -> list[PlanItem]:
        """The agent's plan: its task tracker's list as the agent last wrote it, each task
        with its ``title``, ``status`` (``todo``, ``in_progress``, ``done``) and ``notes``;
        empty when it made none (followed live, or read with :meth:`events`)."""
        return list(self._tracked.plan)

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
        ident = self.id[:8] if self.id else "(no id yet)"
        label = shorten(self.title or self.task, 40)
        status = visible(self.status)
        return f"<Conversation {ident} {status}{' ' + repr(label) if label else ''}>"

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

    async def _fetch_info(self) -> ConversationInfo:
        cid = self._need_id()
        backend = await self._host.backend()
        [info] = await backend.conversations(
            [cid], frozenset([cid]) if self._tracked.has_run else frozenset()
        )
        if info is None:
            raise NotFoundError(f"Conversation {cid} not found.")
        info.readable()
        return info

    async def refresh_async(self) -> Conversation:
        """Ask the server for the current state now."""
        sent_at = self._tracker.clock.now()
        info = await self._fetch_info()
        await self._tracker.on_loop_async(self._tracker.accept_info, self._tracked, info, sent_at)
        return self

    def refresh(self) -> Conversation:
        sent_at = self._tracker.clock.now()
        info = self._host.run_sync(self._fetch_info())
        self._tracker.on_loop_sync(self._tracker.accept_info, self._tracked, info, sent_at)
        return self

    async def _fetch_events(self) -> list[Event]:
        cid = self._need_id()
        backend = await self._host.backend()
        info = self._tracked.info or ConversationInfo(id=cid, status=self.status)
        endpoint = backend.endpoint(info) if backend.version == "v1" else None
        if endpoint is not None and (info.sandbox_status or "").upper() == "RUNNING":
            try:
                return await backend.agent.all_events(endpoint)
            except OpenHandsError:
                pass  # the app server's store has them too (perhaps a little behind)
        return await backend.events(info, EventCursor(), max_pages=0)  # every page

    async def events_async(self, limit: int | None = None) -> list[Event]:
        """All of the conversation's events, oldest first (the last ``limit``): from the agent
        server while it runs (complete at once), else from the app server's store."""
        events = await self._fetch_events()
        await self._tracker.on_loop_async(self._tracker.accept_events, self._tracked, events)
        shown = [e for e in events if e.type not in HIDDEN_TYPES]
        return shown[-limit:] if limit else shown

    def events(self, limit: int | None = None) -> list[Event]:
        events = self._host.run_sync(self._fetch_events())
        self._tracker.on_loop_sync(self._tracker.accept_events, self._tracked, events)
        shown = [e for e in events if e.type not in HIDDEN_TYPES]
        return shown[-limit:] if limit else shown

    # -- steering -------------------------------------------------------------------------------
    # Every command goes through the tracker's one command path (``tracking.commands``): it
    # is checked against the status, shown as under way until the server confirms it, and a
    # ``wait()`` after it waits for its outcome.
    async def command_async(
        self, name: str, text: str = "", ids: tuple[str, ...] | list[str] | None = None
    ) -> Any:
        """Send command ``name`` (one of :data:`COMMAND_NAMES`); returns once the
        server has accepted it."""
        tracker = self._tracker
        coro = tracker.command(self._tracked, name, text=text, ids=ids)
        if running_loop() is tracker.ensure_loop():
            return await coro
        return await asyncio.wrap_future(tracker.submit(coro))

    def _steered(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run one of the steering coroutines to its end from blocking code, on the tracker's
        loop (in a notebook the kernel's loop keeps running meanwhile)."""
        tracker = self._tracker
        loop = tracker.ensure_loop()
        if running_loop() is loop:
            return reenter(loop, coro)
        return tracker.submit(coro).result()

    async def send_async(self, text: str) -> None:
        """Send a follow-up message; the agent runs again."""
        await self.command_async("send", _message(text))

    async def approve_async(self, ids: list[str] | tuple[str, ...] | None = None) -> None:
        """Run the actions waiting for approval that you saw: those in :attr:`pending` now (or
        ``ids``). If the server has other actions waiting by then, nothing is approved and
        ``ConflictError`` says what waits instead. The agent goes on; :meth:`wait` returns at
        its next stop point (the next action to approve, or the end)."""
        await self.command_async("approve", ids=_ids(ids))

    async def reject_async(
        self, reason: str | None = None, ids: list[str] | tuple[str, ...] | None = None
    ) -> None:
        """Refuse the actions waiting for approval that you saw (as :meth:`approve`); the agent
        stops (idle) and is told ``reason``. A follow-up message sets it going again."""
        await self.command_async("reject", _reason(reason), _ids(ids))

    @property
    def pending(self) -> list[PendingAction]:
        """The actions waiting for approval (while the status is ``waiting``)."""
        return list(self._tracked.pending)

    @property
    def doing(self) -> str | None:
        """The command under way until the server confirms it (``"stopping…"``), else
        ``None``."""
        under = self._tracked.command
        return under.doing if under else None

    async def stop_async(self) -> None:
        """Stop this conversation's agent at once, even in the middle of a command (a queued
        launch is cancelled). Returns once the server has the request; the status says
        ``paused`` when the server confirms it. Its sandbox, and any other conversation in
        it, keep running; :meth:`resume` runs it again. While an action waits for approval
        there is nothing running to stop: :meth:`reject` stops the agent."""
        await self.command_async(STOP.name)

    async def resume_async(self) -> None:
        """Run a stopped conversation again (resuming its sandbox if that was paused)."""
        await self.command_async("resume")

    async def pause_sandbox_async(self) -> list[str]:
        """Pause the whole sandbox this conversation runs in, to free its resources. Every
        conversation in that sandbox stops; returns their ids."""
        return list(await self.command_async("pause_sandbox"))

    async def delete_async(self) -> None:
        """Delete the conversation on the server and stop tracking it."""
        await self.command_async("delete")

    # the blocking twins of the steering calls: the same arguments and text, run to the end
    command = blocking(command_async)
    send = blocking(send_async)
    approve = blocking(approve_async)
    reject = blocking(reject_async)
    stop = blocking(stop_async)
    resume = blocking(resume_async)
    pause_sandbox = blocking(pause_sandbox_async)
    delete = blocking(delete_async)

    async def download_async(self) -> bytes:
        backend = await self._host.backend()
        return await backend.download(self._need_id())

    def download(self, path: str | None = None, dest: str | Path | None = None) -> Any:
        """The conversation as a zip archive (V1 servers); with ``path``, that file from the
        agent's workspace saved to ``dest`` instead (see :meth:`save_file`), and its path."""
        if path is not None:
            return self.save_file(path, dest)
        return self._host.run_sync(self.download_async())

    async def _info(self) -> ConversationInfo:
        """The server's current description, read again unless the tracker's is current (it
        is not applied here: this may run on the client's I/O thread; the loop applies it)."""
        info = self._tracked.info
        if info is None or not info.sandbox_id or info.status != self._tracked.status:
            info = await self._fetch_info()
        return info

    @property
    def tracker(self) -> Tracker:
        """The client's tracker, which follows this conversation (and every other)."""
        return self._host.tracker

    @property
    def _tracker(self) -> Tracker:
        return self._host.tracker

    @property
    def key(self) -> int:
        """This conversation's number within its client (the same for every handle to it)."""
        return self._tracked.key

    def in_background(
        self,
        coro: Coroutine[Any, Any, T],
        then: Callable[[concurrent.futures.Future[T]], None] | None = None,
    ) -> concurrent.futures.Future[T]:
        """Run ``coro`` (one of this handle's ``*_async`` calls) on the client's loop without
        waiting for it; ``then(future)`` runs on that loop once it is done."""
        return self._host.in_background(coro, then)

    def later(self, seconds: float, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` on the client's loop after ``seconds`` (wall-clock seconds)."""
        self._host.later(seconds, fn)

    # -- tracking -------------------------------------------------------------------------------
    def track(self) -> Conversation:
        """Follow it live (the default after start or get)."""
        self._host.tracker.track(self._tracked)
        return self

    def untrack(self) -> None:
        """Stop following it (a queued launch is cancelled)."""
        self._host.tracker.untrack(self._tracked)

    def cancel(self) -> bool:
        """Cancel a queued launch; returns whether it was still queued."""
        return self._host.tracker.cancel_queued(self._tracked)

    def subscribe(
        self, fn: Callable[[Snapshot], None], *, visible: bool = True
    ) -> Callable[[], None]:
        """Call ``fn(snapshot)`` on every change; returns a function that unsubscribes."""
        return self._host.tracker.subscribe(self._tracked, fn, visible=visible)


def _message(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InputError("The message is empty.")
    return text


def _ids(ids: object) -> tuple[str, ...] | None:
    if ids is None:
        return None
    if isinstance(ids, (list, tuple)) and all(isinstance(i, str) for i in ids):
        return tuple(ids)
    raise InputError(f"ids is a list of action ids (from .pending), not {ids!r}.")


def _reason(reason: str | None) -> str:
    if reason is not None and not isinstance(reason, str):
        raise InputError(f"A reason is text, not {reason!r}.")
    return " ".join((reason or "").split()) or "Rejected by the user."

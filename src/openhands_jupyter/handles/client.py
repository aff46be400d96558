"""``AsyncOpenHands`` and ``OpenHands``: configuration, start/get/list, and one tracker each."""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import dataclasses
import os
import threading
import warnings
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import httpx

from ..api import status as st
from ..api.agent import AgentClient
from ..api.backend import Backend, StartRequest
from ..api.errors import AuthenticationError, NotFoundError, UnreadableWarning
from ..api.ids import normalize_id
from ..api.probe import backend_for, is_cloud, probe_version
from ..api.secrets import Secret, as_secret
from ..api.transport import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, Transport
from ..api.validate import (
    check_api_version,
    check_base_url,
    check_branch,
    check_key,
    check_max_cost,
    check_task,
    normalize_repository,
)
from ..constants import CLOUD_URL
from ..settings import from_environment
from ..tracking import Tracked, Tracker, TrackerConfig
from ..tracking.config import SANDBOX_STARTS
from ..tracking.launching import SENDING
from ..tracking.loops import BackgroundLoop, running_loop
from .conversation import Conversation
from .progress import ProgressPrinter
from .uploads import uploads_for

__all__ = ["CLOUD_URL", "AsyncOpenHands", "TrackerConfig", "in_kernel", "st"]

T = TypeVar("T")


def in_kernel() -> bool:
    """Whether this runs inside a Jupyter kernel (where widgets show progress instead of text)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class AsyncOpenHands:
    """An OpenHands client for ``await``. Configuration comes from the arguments, else from
    ``OPENHANDS_API_KEY``, ``OPENHANDS_BASE_URL`` (default the Cloud) and
    ``OPENHANDS_SESSION_API_KEY``."""

    def __init__(
        self,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        *,
        session_api_key: str | Secret | None = None,
        api_version: str | None = None,
        allow_insecure: bool = False,
        poll_interval: float = 5.0,
        budget_per_minute: int = 60,
        max_concurrent: int | None = None,
        progress: bool | None = None,
        tracker_config: TrackerConfig | None = None,
        timeout: httpx.Timeout | float | None = None,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        # the keys become Secrets first, so no frame (in a verbose traceback, say) holds them
        # as plain text; os.environ is never held in a local
        api_key = as_secret(api_key if api_key is not None else _env("OPENHANDS_API_KEY"))
        session_api_key = as_secret(
            session_api_key if session_api_key is not None else _env("OPENHANDS_SESSION_API_KEY")
        )
        check_key(api_key, "API key", "api_key / OPENHANDS_API_KEY")
        check_key(session_api_key, "session API key", "session_api_key / OPENHANDS_SESSION_API_KEY")
        self._api_key = api_key
        self._session_api_key = session_api_key
        self.base_url = check_base_url(
            base_url or from_environment("base_url") or CLOUD_URL, allow_insecure=allow_insecure
        )
        self.api_version = check_api_version(api_version or from_environment("api_version"))
        config = self._for_server(
            tracker_config
            or TrackerConfig(
                poll_interval=poll_interval,
                budget_per_minute=budget_per_minute,
                max_concurrent=max_concurrent,
            )
        )
        self.transport = Transport(
            self.base_url,
            api_key=self._api_key,
            session_api_key=self._session_api_key,
            timeout=httpx.Timeout(timeout)
            if isinstance(timeout, (int, float))
            else (timeout or DEFAULT_TIMEOUT),
            max_retries=max_retries,
            transport=transport,
            deadline=deadline,
            allow_insecure=allow_insecure,
        )
        self.agent = AgentClient(
            {
                "timeout": self.transport.timeout,
                "max_retries": max_retries,
                "transport": transport,
                "deadline": deadline,
            }
        )
        self.progress = (not in_kernel()) if progress is None else progress
        self.tracker = Tracker(self.backend, config, web_url=self.web_url, agent=self.agent)
        self._backend: Backend | None = None
        self._version: str | None = None if self.api_version == "auto" else self.api_version
        self._portal: BackgroundLoop | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key}, "
            f"api_version={self._version or self.api_version!r})"
        )

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    @property
    def generation(self) -> str | None:
        """The API generation in use (``v1`` or ``v0``); ``None`` until the first request
        when ``api_version`` is ``auto``."""
        return self._version

    # -- plumbing -------------------------------------------------------------------------------
    async def backend(self) -> Backend:
        """The backend for this server, probing the API generation once when set to auto."""
        if self._backend is not None:
            return self._backend
        if self._api_key is None and is_cloud(self.base_url):
            raise AuthenticationError(
                "No API key for OpenHands Cloud: create one under Settings › API Keys and set "
                "OPENHANDS_API_KEY (or pass api_key=...)."
            )
        version = self._version or await probe_version(self.transport)
        self._version = version
        self._backend = backend_for(version, self.transport, self.agent)
        return self._backend

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine to completion from synchronous code, on the client's I/O thread."""
        with self._lock:
            if self._portal is None or not self._portal.running:
                self._portal = BackgroundLoop("openhands-io")
            portal = self._portal
        return portal.run(coro)

    def web_url(self, tracked: Tracked) -> str | None:
        if tracked.conversation_id:
            return f"{self.base_url}/conversations/{tracked.conversation_id}"
        if tracked.start_task_id:
            return f"{self.base_url}/conversations/task-{tracked.start_task_id}"
        return None

    def _handle(self, tracked: Tracked, progress: bool = True) -> Conversation:
        conv = Conversation(self, tracked)
        if self.progress and progress:
            label = (tracked.request.task if tracked.request else None) or tracked.title or ""
            self.tracker.subscribe(tracked, ProgressPrinter(label), visible=False)
        return conv

    @staticmethod
    def build_request(
        task: str,
        repository: str | None = None,
        branch: str | None = None,
        title: str | None = None,
        **extra: Any,
    ) -> StartRequest:
        """Check the inputs and build a start request; raises ``InputError`` on bad input."""
        task = check_task(task)
        repo, provider = normalize_repository(repository)
        branch = check_branch(branch)
        if branch and not repo:
            from ..api.errors import InputError

            raise InputError("A branch needs a repository (repository='owner/repo').")
        title = title.strip() if title and title.strip() else None
        confirm = extra.pop("confirm", False)
        if not isinstance(confirm, bool):
            from ..api.errors import InputError

            raise InputError(f"confirm is True or False, not {confirm!r}.")
        max_cost = check_max_cost(extra.pop("max_cost", None))
        provider = extra.pop("git_provider", provider)
        uploads = uploads_for(extra.pop("data", None), extra.pop("files", None))
        return StartRequest(
            task,
            repo,
            branch,
            provider,
            title,
            extra,
            confirm=confirm,
            max_cost=max_cost,
            uploads=uploads,
        )

    # -- public API -----------------------------------------------------------------------------
    async def start(
        self,
        task: str,
        repository: str | None = None,
        branch: str | None = None,
        title: str | None = None,
        background: bool = False,
        **extra: Any,
    ) -> Conversation:
        """Start a conversation and follow it; returns with a handle once the server has the
        request. ``background=True`` returns at once, before the server has answered (a slow
        server cannot hold the caller): the handle says "sending the request" until then, and
        a refusal shows as its error."""
        request = self.build_request(task, repository, branch, title, **extra)
        return await self.start_request(request, background)

    async def start_request(self, request: StartRequest, background: bool = False) -> Conversation:
        """:meth:`start` with a request :meth:`build_request` made."""
        tracked = Tracked(request=request)
        self.tracker.ensure_loop()
        if background:
            tracked.start_phase = SENDING
            self.tracker.track(tracked)
            self.tracker.submit(self.tracker.launch_reporting(tracked))
        else:
            await self.tracker.launch(tracked)
        return self._handle(tracked)

    async def start_many(self, tasks: Iterable[Any]) -> list[Conversation]:
        """Start many conversations through the launch queue. Each item is a task string, a dict
        with ``task`` (and ``repository``, ``branch``, ``title``), or a DataFrame row."""
        requests = [self.build_request(**start_kwargs(item)) for item in task_rows(tasks)]
        out = []
        for request in requests:
            tracked = Tracked(request=request)
            self.tracker.ensure_loop()
            await self.tracker.launch(tracked)
            out.append(self._handle(tracked))
        return out

    async def get(self, conversation_id: str, *, track: bool = True) -> Conversation:
        """Attach to an existing conversation by id (e.g. after a kernel restart)."""
        cid = normalize_id(conversation_id)
        backend = await self.backend()
        sent_at = self.tracker.clock.now()
        [info] = await backend.conversations([cid], frozenset([cid]))
        if info is None:
            raise NotFoundError(f"Conversation {cid} not found on {self.base_url}.")
        info = info.readable()
        followed = self.tracker.find(cid)
        if followed is not None:
            # already followed: the same conversation, the same state (and one socket)
            self.tracker.call_soon(self.tracker.accept_info, followed, info, sent_at)
            if track and not followed.tracking:
                self.tracker.track(followed)
            return Conversation(self, followed)
        tracked = Tracked(
            conversation_id=cid,
            info=info,
            status=info.status,
            seen=True,
            has_run=True,
            start_phase=None,
        )
        conv = self._handle(tracked)
        if track:
            self.tracker.ensure_loop()
            self.tracker.track(tracked)
        return conv

    async def list(self, limit: int = 20) -> builtins.list[Conversation]:
        """The most recent conversations, newest first (not tracked until you ``track()`` one).
        Records the server sent in a form this client cannot read are left out, with an
        ``UnreadableWarning`` that says which field."""
        return left_out(*await self._list(limit))

    async def _list(self, limit: int) -> tuple[builtins.list[Conversation], builtins.list[str]]:
        if int(limit) < 1:
            from ..api.errors import InputError

            raise InputError(f"limit must be at least 1, got {limit!r}.")
        backend = await self.backend()
        infos = await backend.search(limit=int(limit))
        convs = [
            Conversation(
                self,
                Tracked(conversation_id=i.id, info=i, status=i.status, seen=True, has_run=True),
            )
            for i in infos
            if not i.unreadable
        ]
        return convs, [i.unreadable for i in infos if i.unreadable]

    async def count(self) -> int:
        backend = await self.backend()
        return await backend.count()

    @property
    def tracked(self) -> builtins.list[Conversation]:
        """Handles for every conversation the tracker follows (including queued ones)."""
        return [Conversation(self, t) for t in list(self.tracker.entries.values())]

    # -- for what shows the conversations (the widgets): the client's loop --------------------
    def on_tracked_changed(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn()`` on the client's loop whenever a conversation is followed or let go
        (and once soon); returns a function that stops it."""
        tracker = self.tracker
        tracker.watchers.append(fn)
        # once soon, unless it was stopped (or the client closed) by then
        tracker.call_soon(lambda: fn() if fn in tracker.watchers else None)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self.tracker.watchers.remove(fn)

        return remove

    def in_background(
        self,
        coro: Coroutine[Any, Any, T],
        then: Callable[[concurrent.futures.Future[T]], None] | None = None,
    ) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the client's loop without waiting for it; ``then(future)`` runs on
        that loop once it is done (its result or its error)."""
        future = self.tracker.submit(coro)
        if then is not None:
            tracker = self.tracker
            future.add_done_callback(lambda f: tracker.call_soon(then, f))
        return future

    def later(self, seconds: float, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` on the client's loop after ``seconds`` (wall-clock seconds)."""
        self.tracker.call_later(seconds, fn)

    @property
    def settings(self) -> TrackerConfig:
        """How this client follows conversations: cadence, budget, concurrency."""
        return self.tracker.config

    def _for_server(self, config: TrackerConfig) -> TrackerConfig:
        """The settings as this server needs them: OpenHands Cloud makes its sandboxes on
        machines of its own, so starts need not wait for each other's sandbox there."""
        if is_cloud(self.base_url) and config.sandbox_starts == SANDBOX_STARTS:
            return dataclasses.replace(config, sandbox_starts=None)
        return config

    def reconfigure(self, settings: TrackerConfig) -> None:
        """Follow with new settings: what it follows, its sockets and its budget stay."""
        settings = self._for_server(settings)
        if settings != self.tracker.config:
            self.tracker.reconfigure(settings)

    @property
    def closed(self) -> bool:
        return self.tracker.closed

    def untrack_all(self) -> None:
        """Stop following every conversation, and return once their widgets have been told."""
        for conv in self.tracked:
            conv.untrack()
        self.tracker.on_loop_sync(lambda: None)

    async def _close_connections(self) -> None:
        await self.transport.aclose()
        await self.agent.aclose()

    async def aclose(self) -> None:
        """Stop tracking and release threads and connections, from the loop."""
        if self.tracker.loop is asyncio.get_running_loop():
            await self.tracker.stop_task()
        await self._close_connections()
        self.close()

    def close(self) -> None:
        """Stop tracking and release threads and connections."""
        self.tracker.close(cleanup=self._close_connections)
        loop = self.tracker.loop
        if not self.tracker.on_private_thread and loop is not None and not loop.is_closed():
            if running_loop() is loop:
                loop.create_task(self._close_connections())
            else:
                with contextlib.suppress(RuntimeError):
                    asyncio.run_coroutine_threadsafe(self._close_connections(), loop)
        if self._portal is not None:
            portal, self._portal = self._portal, None
            with contextlib.suppress(Exception):
                portal.run(self._close_connections(), timeout=5)
            portal.stop()

    async def __aenter__(self) -> AsyncOpenHands:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def task_rows(tasks: Iterable[Any]) -> Iterable[Any]:
    to_dict = getattr(tasks, "to_dict", None)
    if callable(to_dict) and hasattr(tasks, "columns"):
        return list(to_dict(orient="records"))
    if isinstance(tasks, (str, bytes)):
        return [tasks]
    return list(tasks)


def start_kwargs(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        return {"task": item}
    if isinstance(item, dict):
        known = {"task", "repository", "branch", "title"}
        out = {
            k: item[k] for k in known if k in item and item[k] is not None and item[k] == item[k]
        }
        if "repo" in item and "repository" not in out:
            out["repository"] = item["repo"]
        out.setdefault("task", "")
        return out
    raise TypeError(f"Cannot start a conversation from {type(item).__name__}: give a str or dict.")


def left_out(convs: list[Conversation], unreadable: list[str]) -> list[Conversation]:
    """The readable conversations; a warning (in the caller's thread) names what was left out."""
    if unreadable:
        warnings.warn(
            f"{len(unreadable)} of {len(convs) + len(unreadable)} conversations left out: "
            f"{unreadable[0]}",
            UnreadableWarning,
            stacklevel=3,
        )
    return convs


def _env(name: str) -> str | None:
    return os.environ.get(name)

"""The small interface both API generations implement, and what a start request carries."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from .agent import AgentClient, AgentEndpoint, key_problem, locate_agent
from .errors import OpenHandsError, UnsupportedError, absent_route
from .models import ConversationInfo, Event, StartTask
from .transport import Transport, request_gate
from .workspace import FileChange, FileDiff

__all__ = ["Backend", "EventCursor", "StartRequest", "request_gate"]


@dataclass(frozen=True)
class Upload:
    """A file sent into the agent's workspace before its task: its name in the upload folder,
    its bytes, and what it is, in words, for the task."""

    name: str
    data: bytes = field(repr=False)
    about: str = ""


@dataclass(frozen=True)
class StartRequest:
    """What to start: the task text and where the agent works."""

    task: str
    repository: str | None = None
    branch: str | None = None
    git_provider: str | None = None
    title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: confirmation mode: each action the agent takes waits for approve() or reject()
    confirm: bool = False
    #: stop the agent once its cost passes this many dollars
    max_cost: float | None = None
    #: files sent into the workspace before the task (which then says where they are)
    uploads: tuple[Upload, ...] = ()

    @property
    def deferred(self) -> bool:
        """Started with no message: the task goes to the agent server once it is up (after
        the confirmation policy, and the uploads)."""
        return self.confirm or bool(self.uploads)


@dataclass
class EventCursor:
    """Where an incremental event tail stands for one conversation."""

    last_timestamp: str | None = None
    seen_at_last: set[str] = field(default_factory=set)
    next_start_id: int = 0
    #: the next page of the current ``timestamp >= last`` read, when a read stopped short of
    #: its end (more events than a few pages can share one timestamp)
    page_id: str | None = None
    page_from: str | None = None

    @property
    def fresh(self) -> bool:
        """Nothing has been read yet."""
        return self.last_timestamp is None and self.next_start_id == 0


class Backend(abc.ABC):
    """One API generation. Every method sends real requests through the shared transport."""

    version: str = ""

    def __init__(self, transport: Transport, agent: AgentClient | None = None) -> None:
        self.transport = transport
        self.agent = agent or AgentClient()

    async def call(self, method: str, url: str, *, what: str | None = None, **kwargs: Any) -> Any:
        """One request to the app server. With ``what``, an answer that says the route does
        not exist (405, FastAPI's bare 404, an HTML page) becomes ``UnsupportedError``."""
        if request_gate.get() is not None:
            kwargs.setdefault("retries", 0)  # the tracker schedules its own retries
        try:
            return await self.transport.request(method, url, **kwargs)
        except OpenHandsError as exc:
            # a web page for a user's own call means the same (the tracker's polls retry one,
            # which may come from a proxy in trouble)
            page = exc.not_json and request_gate.get() is None
            if what and (absent_route(exc) or page):
                raise UnsupportedError(
                    f"This server does not offer {what}.", status_code=exc.status_code
                ) from None
            raise

    def endpoint(self, info: ConversationInfo) -> AgentEndpoint | None:
        """Where this conversation's agent server is, when the server said (V1, running) and
        its key may go there (see :meth:`endpoint_problem`)."""
        base, _why = locate_agent(
            info.conversation_url,
            self.transport.base_url,
            allow_insecure=self.transport.allow_insecure,
        )
        if base is None or not info.id or key_problem(info.session_api_key):
            return None
        return AgentEndpoint(base, info.id, info.session_api_key)

    def endpoint_problem(self, info: ConversationInfo) -> str | None:
        """Why this conversation's agent server is not used, when it is not."""
        _base, why = locate_agent(
            info.conversation_url,
            self.transport.base_url,
            allow_insecure=self.transport.allow_insecure,
        )
        return why or key_problem(info.session_api_key)

    async def paged(self, url: str, limit: int, key: str) -> list[dict[str, Any]]:
        """Up to ``limit`` items of a paged list (``page_id`` / ``next_page_id``), newest first."""
        from .errors import InvalidResponseError

        found: list[dict[str, Any]] = []
        page: str | None = None
        while len(found) < limit:
            params: dict[str, Any] = {"limit": min(100, limit - len(found))}
            if page:
                params["page_id"] = page
            data = await self.call("GET", url, params=params)
            if not isinstance(data, dict):
                raise InvalidResponseError(f"Unexpected answer from {url}: {type(data).__name__}")
            found.extend(i for i in data.get(key, []) if isinstance(i, dict))
            page = data.get("next_page_id")
            if not page:
                break
        return found[:limit]

    @abc.abstractmethod
    async def start(self, request: StartRequest) -> StartTask: ...

    @abc.abstractmethod
    def stream_start(self, request: StartRequest) -> AsyncIterator[StartTask]: ...

    async def find_start_task(
        self, request: StartRequest, since: float, exclude: set[str]
    ) -> StartTask | None:
        """The start task this request made, if the server made one after ``since`` (epoch s).
        Used when a start's answer was lost; backends that cannot tell raise UnsupportedError."""
        from .errors import UnsupportedError

        raise UnsupportedError("This server cannot tell whether a lost start was received.")

    @abc.abstractmethod
    async def start_tasks(self, ids: list[str]) -> list[StartTask | None]: ...

    @abc.abstractmethod
    async def conversations(
        self, ids: list[str], has_run: frozenset[str] = frozenset()
    ) -> list[ConversationInfo | None]: ...

    @abc.abstractmethod
    async def search(self, limit: int = 20) -> list[ConversationInfo]: ...

    @abc.abstractmethod
    async def count(self) -> int: ...

    @abc.abstractmethod
    async def events(
        self, info: ConversationInfo, cursor: EventCursor, max_pages: int = 5
    ) -> list[Event]:
        """The events after ``cursor`` in order, at most ``max_pages`` pages; the cursor moves
        past them (``max_pages=0``: every page)."""

    @abc.abstractmethod
    async def events_tail(
        self,
        info: ConversationInfo,
        cursor: EventCursor,
        limit: int = 100,
        on_cut: Callable[[str], None] | None = None,
    ) -> list[Event]:
        """The newest ``limit`` events, oldest first, read newest first (one request); the
        cursor moves to the newest, so that :meth:`events` goes on from there. If older
        events were left out, ``on_cut`` is given the oldest timestamp read."""

    @abc.abstractmethod
    async def send(self, info: ConversationInfo, text: str) -> None: ...

    @abc.abstractmethod
    async def stop(self, info: ConversationInfo) -> None:
        """Stop this conversation's agent at once; other conversations are not touched."""

    @abc.abstractmethod
    async def resume(self, info: ConversationInfo) -> None: ...

    async def pause_sandbox(self, info: ConversationInfo) -> list[str]:
        """Pause the sandbox that runs this conversation, and return the ids of every
        conversation it stops (servers that have no sandboxes raise UnsupportedError)."""
        raise UnsupportedError("This server has no sandboxes to pause.")

    async def set_title(self, info: ConversationInfo, title: str) -> None:
        """Give the conversation this title on the server (where the server allows it)."""
        raise UnsupportedError("This server cannot rename conversations.")

    async def start_confirmed(
        self, info: ConversationInfo, task: str, confirm: bool = True
    ) -> None:
        """For a conversation started with no message: set the confirmation policy (when
        ``confirm``), then send the task."""
        raise UnsupportedError("This server does not offer confirmation mode.")

    async def agent_home(self, info: ConversationInfo) -> str:
        """The home folder of the agent server's user (an absolute path)."""
        raise UnsupportedError("This server does not take files for the agent (V1 does).")

    async def upload(self, info: ConversationInfo, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` (absolute) in the agent's workspace."""
        raise UnsupportedError("This server does not take files for the agent (V1 does).")

    async def respond(self, info: ConversationInfo, accept: bool, reason: str) -> None:
        """Approve or reject the actions waiting for confirmation."""
        raise UnsupportedError("This server does not offer confirmation mode.")

    async def workspace_root(self, info: ConversationInfo) -> str:
        """The directory of the project the agent works in (a git repository)."""
        raise UnsupportedError("This server does not offer reading a conversation's files.")

    async def changes(self, info: ConversationInfo, root: str) -> list[FileChange]:
        """The files changed under ``root`` (status only; counts come from their diffs)."""
        raise UnsupportedError("This server does not offer reading a conversation's changes.")

    async def file_diff(self, info: ConversationInfo, root: str, path: str) -> FileDiff:
        raise UnsupportedError("This server does not offer reading a conversation's changes.")

    async def read_file(self, info: ConversationInfo, root: str, path: str) -> bytes:
        raise UnsupportedError("This server does not offer reading a conversation's files.")

    @abc.abstractmethod
    async def delete(self, conversation_id: str) -> None: ...

    @abc.abstractmethod
    async def download(self, conversation_id: str) -> bytes: ...

"""``Tracked``: everything known about one conversation the tracker follows (no secrets shown)."""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..api import status as st
from ..api.actions import PendingAction
from ..api.backend import EventCursor, StartRequest
from ..api.models import ConversationInfo, Event, Usage
from .changes import MAX_COUNTED
from .commands import Under, buttons
from .heard import Heard
from .snapshot import Snapshot

_PLACEHOLDER = re.compile(r"^Conversation [0-9a-f]{5,32}$")

Subscriber = Callable[[Snapshot], None]

#: the agent-server feed's states
LIVE_OFF = ""
LIVE_CONNECTING = "connecting"
LIVE_ON = "live"
LIVE_RETRYING = "retrying"
LIVE_FALLBACK = "delayed"


@dataclass(eq=False)
class Tracked(Heard):
    """The live state of one conversation: what its events said (``Heard``), and what the
    tracker knows of it and plans for it. Changed on the tracker's loop, except what the
    tracker's register sets under its lock as it takes a conversation in or lets it go."""

    request: StartRequest | None = None
    start_task_id: str | None = None
    conversation_id: str | None = None
    status: str = st.STARTING
    start_phase: str | None = None
    detail: str | None = None
    info: ConversationInfo | None = None
    last_error: str | None = None
    #: when the last command (send, stop, resume, delete) reached the server, on the tracker's
    #: clock: a status read sent before it is stale
    command_at: float = -math.inf
    #: when the status read now in ``info`` was asked (same clock)
    info_at: float = -math.inf
    #: why the server's last record of it could not be read (only this conversation)
    record_error: str | None = None
    #: why reading its events failed last (only this conversation), and how often in a row
    events_error: str | None = None
    events_failures: int = 0
    retry_at: float | None = None
    queue_position: int | None = None
    tracking: bool = False
    web_url: str | None = None
    # scheduling, owned by the tracker
    next_due: float = 0.0
    events_due: float = math.inf
    start_delay: float = 0.0
    final_left: int = 0
    #: when the app server's store is next compared with what the agent server showed, how
    #: many comparisons are left, and what the card says while it is behind
    store_due: float = math.inf
    store_checks: int = 0
    store_note: str | None = None
    start_attempts: int = 0
    verify_since: float | None = None
    #: the command sent and not yet confirmed by the server (see ``commands``)
    command: Under | None = None
    #: what the last command left to say (the server has not confirmed it)
    command_note: str | None = None
    seen: bool = False
    misses: int = 0
    events_supported: bool = True
    cursor: EventCursor = field(default_factory=EventCursor)
    subscribers: dict[int, tuple[Subscriber, bool]] = field(default_factory=dict)
    waiters: int = 0
    done: asyncio.Event | None = None
    _published: tuple[object, ...] = ()
    # the agent-server feed
    live: Any = None
    live_state: str = LIVE_OFF
    live_note: str | None = None
    live_status_at: float = -math.inf
    #: when the agent-server socket was last opened (the tracker's clock), the newest few:
    #: every feed of this conversation, old or new, keeps within the connect rate
    live_connects: deque[float] = field(default_factory=lambda: deque(maxlen=16))
    #: when a frame last came on the socket, and when its silence was last checked over REST
    live_frame_at: float = -math.inf
    live_gave_up_at: float = -math.inf
    live_checked_at: float = -math.inf
    #: a status a poll showed that the connected socket has not brought yet, and since when
    poll_ahead: tuple[str, float] | None = None
    unconfirmed: bool = False
    """The socket moved the status; the next batched status poll confirms it."""
    # the title the user asked for, kept against the server's own title step
    title_attempts: int = 0
    title_checks: int = 0
    #: the cost cap stopped it (at most once), and what to tell the user
    cost_stopped: bool = False
    stopped_why: str | None = None
    #: a conversation started in confirmation mode has had its task sent
    delivered: bool = False

    @property
    def title(self) -> str | None:
        """The title the user gave, else the server's (unless still ``Conversation <hex>``)."""
        if self.request and self.request.title:
            return self.request.title
        if self.info and self.info.title and not _PLACEHOLDER.match(self.info.title):
            return self.info.title
        return None

    @property
    def undelivered(self) -> bool:
        """Started with no message (confirmation mode, or files to send first) and its task
        not sent yet: it is sent, after the policy and the files, once the agent server is
        up."""
        return bool(self.request and self.request.deferred and not self.delivered)

    @property
    def repository(self) -> str | None:
        if self.info and self.info.repository:
            return self.info.repository
        return self.request.repository if self.request else None

    @property
    def git_provider(self) -> str | None:
        raw = self.info.raw.get("git_provider") if self.info else None
        if isinstance(raw, str) and raw:
            return raw
        return self.request.git_provider if self.request else None

    @property
    def branch(self) -> str | None:
        if self.info and self.info.branch:
            return self.info.branch
        return self.request.branch if self.request else None

    @property
    def visible(self) -> bool:
        return any(v for _, v in self.subscribers.values())

    @property
    def watched(self) -> bool:
        """Someone is looking: a widget on screen, a ``wait()`` or a ``follow()``."""
        return self.visible or self.waiters > 0

    @property
    def usage(self) -> Usage | None:
        """Cost and tokens: the conversation's metrics or the agent's stats events, whichever
        is further on (a server may report zero metrics while the stats carry the figures, and
        its metrics come in batches, behind the stats the agent server sends at once)."""
        info = self.info.usage if self.info else None
        stats = self.stats_usage
        if info is None or info.empty:
            return stats or info
        if stats is None:
            return info
        # both only grow: the larger is the newer (the app server's copy lags the agent's)
        return max(info, stats, key=_usage_size)

    @property
    def pending(self) -> tuple[PendingAction, ...]:
        """The actions waiting for approval (only while the status is waiting)."""
        if self.status != st.WAITING:
            return ()
        return tuple(
            PendingAction.from_event(e, self.risks.get(e.id))
            for e in list(self.unmatched.values())[-5:]
        )

    @property
    def result(self) -> str | None:
        """The final answer: the last finish message, else the last agent message, but not
        while the events that may still carry the finish message are being read."""
        if self.last_finish:
            return self.last_finish
        if self.status in st.FINAL and self.final_left > 0:
            return None
        return self.last_agent_message

    @property
    def answer_in(self) -> bool:
        """It ended, and its answer is known (a run that did not finish has none to wait for)."""
        return self.status != st.FINISHED or self.last_finish is not None

    @property
    def settled(self) -> bool:
        """Not working any more, the final event fetch (the answer) done, no command under way
        (``wait()`` after a command waits for its outcome), and when it waits for approval,
        the action it waits for known. What comes after the answer (the run's last state)
        is still read then, but not waited for."""
        if self.status in st.ACTIVE or self.command is not None:
            return False
        if self.final_left > 0 and not self.answer_in:
            return False
        return not (self.status == st.WAITING and self.events_supported and not self.pending)

    @property
    def activity(self) -> str:
        """Where the feed comes from: ``live`` (the agent server), ``delayed`` (the app
        server's batched store), or ``""`` while nobody watches."""
        if self.live_state == LIVE_ON:
            return "live"
        if self.live_state == LIVE_FALLBACK:
            return "delayed"
        return ""

    def snapshot(self, new_events: tuple[Event, ...] = ()) -> Snapshot:
        """A picture of the current state carrying ``new_events``."""
        info = self.info
        usage = self.usage
        return Snapshot(
            key=self.key,
            status=self.status,
            conversation_id=self.conversation_id,
            start_task_id=self.start_task_id,
            start_phase=self.start_phase,
            title=self.title,
            repository=self.repository,
            branch=self.branch,
            cost=usage.cost if usage else None,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            pr_numbers=info.pr_numbers if info else (),
            detail=self.detail,
            result=self.result,
            new_events=new_events,
            last_error=self.last_error,
            retry_at=self.retry_at,
            queue_position=self.queue_position,
            url=self.web_url,
            tracking=self.tracking,
            activity=self.activity,
            activity_note=self.live_note if self.live_state == LIVE_FALLBACK else None,
            changes=self.changes.files,
            changes_read=self.changes.read,
            changes_counted=MAX_COUNTED if self.changes.capped else None,
            changes_error=self.changes.error,
            edited=tuple(self.changes.edited),
            pending=self.pending,
            stopped_why=self.stopped_why,
            doing=self.command.doing if self.command else None,
            command_note=self.command_note,
            store_note=self.store_note,
            buttons=tuple(buttons(self.status, self.command)),
            git_provider=self.git_provider,
            plan=self.plan,
            max_cost=self.request.max_cost if self.request else None,
        )

    def fingerprint(self) -> tuple[object, ...]:
        usage = self.usage
        return (
            self.status,
            self.start_phase,
            self.title,
            usage,
            self.info.pr_numbers if self.info else (),
            self.detail,
            self.result,
            self.last_error,
            self.retry_at,
            self.queue_position,
            self.settled,
            self.tracking,
            self.conversation_id,
            self.activity,
            self.live_note,
            self.changes.version,
            len(self.changes.edited),
            tuple(self.unmatched) if self.status == st.WAITING else (),
            self.stopped_why,
            self.command.doing if self.command else None,
            self.command_note,
            self.store_note,
            tuple(self.risks.get(k) for k in self.unmatched) if self.status == st.WAITING else (),
            self.plan,
        )


def _usage_size(usage: Usage) -> tuple[float, int]:
    return (usage.cost or 0.0, (usage.prompt_tokens or 0) + (usage.completion_tokens or 0))

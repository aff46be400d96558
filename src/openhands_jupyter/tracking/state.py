"""``Tracked``: everything known about one conversation the tracker follows (no secrets shown)."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..api import status as st
from ..api.backend import EventCursor, StartRequest
from ..api.models import ConversationInfo, Event
from .snapshot import Snapshot

_keys = itertools.count(1)
_PLACEHOLDER = re.compile(r"^Conversation [0-9a-f]{5,32}$")

Subscriber = Callable[[Snapshot], None]


@dataclass(eq=False)
class Tracked:
    """The live state of one conversation. Written only on the tracker's loop."""

    request: StartRequest | None = None
    start_task_id: str | None = None
    conversation_id: str | None = None
    status: str = st.STARTING
    start_phase: str | None = None
    detail: str | None = None
    info: ConversationInfo | None = None
    last_error: str | None = None
    retry_at: float | None = None
    queue_position: int | None = None
    tracking: bool = False
    web_url: str | None = None
    key: int = field(default_factory=lambda: next(_keys))
    feed: deque[Event] = field(default_factory=lambda: deque(maxlen=200))
    # scheduling, owned by the tracker
    next_due: float = 0.0
    events_due: float = math.inf
    start_delay: float = 0.0
    final_left: int = 0
    has_run: bool = False
    start_attempts: int = 0
    verify_since: float | None = None
    stale_status: str | None = None
    stale_until: float = 0.0
    seen: bool = False
    misses: int = 0
    events_supported: bool = True
    cursor: EventCursor = field(default_factory=EventCursor)
    subscribers: dict[int, tuple[Subscriber, bool]] = field(default_factory=dict)
    done: asyncio.Event | None = None
    pending_events: list[Event] = field(default_factory=list)
    _published: tuple[object, ...] = ()

    @property
    def title(self) -> str | None:
        """The server's title, unless it is still the placeholder ``Conversation <hex>``."""
        if self.info and self.info.title and not _PLACEHOLDER.match(self.info.title):
            return self.info.title
        return self.request.title if self.request else None

    @property
    def repository(self) -> str | None:
        if self.info and self.info.repository:
            return self.info.repository
        return self.request.repository if self.request else None

    @property
    def branch(self) -> str | None:
        if self.info and self.info.branch:
            return self.info.branch
        return self.request.branch if self.request else None

    @property
    def visible(self) -> bool:
        return any(v for _, v in self.subscribers.values())

    last_finish: str | None = None
    last_agent_message: str | None = None

    def add_events(self, events: list[Event]) -> None:
        self.feed.extend(events)
        self.pending_events.extend(events)
        for event in events:
            if event.type == "finish" and event.text:
                self.last_finish = event.text
            elif event.type == "message" and event.source == "agent" and event.text:
                self.last_agent_message = event.text

    @property
    def result(self) -> str | None:
        """The final answer: the last finish message, else the last agent message, but not
        while the events that may still carry the finish message are being read."""
        if self.last_finish:
            return self.last_finish
        if self.status in st.FINAL and self.final_left > 0:
            return None
        return self.last_agent_message

    def reset_answer(self) -> None:
        """A new run begins: the previous answer no longer stands."""
        self.last_finish = self.last_agent_message = None

    @property
    def settled(self) -> bool:
        """Not working any more, and the final event fetch (the answer) is done."""
        return self.status not in st.ACTIVE and self.final_left <= 0

    def snapshot(self, new_events: tuple[Event, ...] = ()) -> Snapshot:
        """A picture of the current state carrying ``new_events``."""
        info = self.info
        return Snapshot(
            key=self.key,
            status=self.status,
            conversation_id=self.conversation_id,
            start_task_id=self.start_task_id,
            start_phase=self.start_phase,
            title=self.title,
            repository=self.repository,
            branch=self.branch,
            cost=info.cost if info else None,
            pr_numbers=info.pr_numbers if info else (),
            detail=self.detail,
            result=self.result,
            new_events=new_events,
            last_error=self.last_error,
            retry_at=self.retry_at,
            queue_position=self.queue_position,
            url=self.web_url,
            tracking=self.tracking,
        )

    def fingerprint(self) -> tuple[object, ...]:
        info = self.info
        return (
            self.status,
            self.start_phase,
            self.title,
            info.cost if info else None,
            info.pr_numbers if info else (),
            self.detail,
            self.result,
            self.last_error,
            self.retry_at,
            self.queue_position,
            self.settled,
            self.tracking,
            self.conversation_id,
        )

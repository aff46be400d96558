"""``Tracked``: everything known about one conversation the tracker follows (no secrets shown)."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..api import status as st
from ..api.actions import PendingAction
from ..api.backend import EventCursor, StartRequest
from ..api.ids import later, parse_time
from ..api.models import HIDDEN_TYPES, ConversationInfo, Event, Usage, risks_of
from .changes import MAX_COUNTED, ChangeSet
from .commands import Under, buttons
from .snapshot import Snapshot

_keys = itertools.count(1)
#: the feed's text, in characters at most (each event is bounded too: see ``api.models``)
FEED_BYTES = 4 * 1024 * 1024
#: event ids remembered to drop repeats
MAX_SEEN_IDS = 20_000
_PLACEHOLDER = re.compile(r"^Conversation [0-9a-f]{5,32}$")

Subscriber = Callable[[Snapshot], None]

#: the agent-server feed's states
LIVE_OFF = ""
LIVE_CONNECTING = "connecting"
LIVE_ON = "live"
LIVE_RETRYING = "retrying"
LIVE_FALLBACK = "delayed"


@dataclass(eq=False)
class Tracked:
    """The live state of one conversation. Changed on the tracker's loop, except what the
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
    key: int = field(default_factory=lambda: next(_keys))
    feed: deque[Event] = field(default_factory=lambda: deque(maxlen=200))
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
    has_run: bool = False
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
    pending_events: list[Event] = field(default_factory=list)
    _published: tuple[object, ...] = ()
    # what the events said
    #: the ids of the newest events seen (an ordered set, bounded: a gap read goes back
    #: seconds, not hours)
    seen_ids: dict[str, None] = field(default_factory=dict)
    #: events a server sent that were left out, by why (another conversation's, no kind, a
    #: binary frame, nested too deep), and the notes said of them in the feed
    dropped: dict[str, int] = field(default_factory=dict)
    notes: int = 0
    server_time: str | None = None
    """The newest event timestamp, exactly as the server wrote it (its own clock)."""
    state_events: int = 0
    stats_usage: Usage | None = None
    last_finish: str | None = None
    last_agent_message: str | None = None
    #: the start of a message this client sent, until the server shows it
    awaiting: str | None = None
    #: server times of the answer shown and of the newest user message: events arrive from
    #: several sources and out of order, and only what the agent said after the newest user
    #: message answers it
    answer_time: datetime | None = None
    user_time: datetime | None = None
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
    #: the agent's actions with no answer yet, by id (the newest few): while the status is
    #: waiting, these wait for the user's approval
    unmatched: dict[str, Event] = field(default_factory=dict)
    #: a security analyzer's risk for each action it rated, by action id (the newest 50)
    risks: dict[str, str] = field(default_factory=dict)
    #: the cost cap stopped it (at most once), and what to tell the user
    cost_stopped: bool = False
    stopped_why: str | None = None
    #: a conversation started in confirmation mode has had its task sent
    delivered: bool = False
    #: what the agent changed in its workspace (read while a widget shows it)
    changes: ChangeSet = field(default_factory=ChangeSet)

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
        """Started in confirmation mode and its task not sent yet (it is sent, after the
        policy, once the agent server is up)."""
        return bool(self.request and self.request.confirm and not self.delivered)

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

    def add_events(self, events: list[Event]) -> list[Event]:
        """Take events from any source; returns those not seen before (by id), bookkeeping
        ones included (the feed gets only what is worth showing)."""
        fresh = []
        new: list[Event] = []
        for event in events:
            if event.id and event.id in self.seen_ids:
                continue
            if event.id:
                self.seen_ids[event.id] = None
                if len(self.seen_ids) > MAX_SEEN_IDS:
                    del self.seen_ids[next(iter(self.seen_ids))]
            new.append(event)
            stamp = event.raw.get("timestamp") if event.raw else None
            if isinstance(stamp, str) and (self.server_time is None or stamp > self.server_time):
                self.server_time = stamp
            if event.type == "stats":
                if event.usage is not None:
                    self.stats_usage = event.usage
                continue
            self._match(event)
            if event.type == "risk":
                self.risks.update(risks_of(event))
                while len(self.risks) > 50:
                    del self.risks[next(iter(self.risks))]
            if event.type in ("state", "finish"):
                self.state_events += 1
            self._note_answer(event, stamp if isinstance(stamp, str) else None)
            if event.type in HIDDEN_TYPES:
                continue
            if event.source == "agent" or (event.type == "state" and event.text == "running"):
                self.has_run = True
            fresh.append(event)
        self._show(fresh)
        self.changes.note_events(fresh)
        return new

    def _show(self, events: list[Event]) -> None:
        """Add to the feed: at most its length in events and ``FEED_BYTES`` in text."""
        self.feed.extend(events)
        self.pending_events.extend(events)
        size = sum(len(e.text) for e in self.feed)
        while size > FEED_BYTES and len(self.feed) > 1:
            size -= len(self.feed.popleft().text)

    def drop(self, why: str, count: int = 1) -> None:
        """Events a server sent that do not belong here: counted, and said once per reason in
        the feed (a later count updates nothing: the feed is not a log)."""
        first = why not in self.dropped
        self.dropped[why] = self.dropped.get(why, 0) + count
        if first:
            self.note(f"left out an event the server sent: {why}")

    def note(self, text: str) -> None:
        """A line of this client's own in the feed."""
        self.notes += 1
        self._show(
            [Event(id=f"ohj-note-{self.key}-{self.notes}", type="note", source="client", text=text)]
        )

    def _match(self, event: Event) -> None:
        raw = event.raw or {}
        answered = raw.get("action_id")
        if isinstance(answered, str):
            self.unmatched.pop(answered, None)
        if event.kind == "InterruptEvent":
            self.unmatched.clear()  # the step under way was cancelled: nothing waits
        call = raw.get("tool_call_id")
        if event.kind == "AgentErrorEvent" and isinstance(call, str):
            # an action that failed (or was cut short) is answered by its error
            for key, action in list(self.unmatched.items()):
                if (action.raw or {}).get("tool_call_id") == call:
                    self.unmatched.pop(key)
        if event.kind == "ActionEvent" and event.type != "finish" and event.id:
            self.unmatched[event.id] = event
            while len(self.unmatched) > 20:
                self.unmatched.pop(next(iter(self.unmatched)))

    @property
    def pending(self) -> tuple[PendingAction, ...]:
        """The actions waiting for approval (only while the status is waiting)."""
        if self.status != st.WAITING:
            return ()
        return tuple(
            PendingAction.from_event(e, self.risks.get(e.id))
            for e in list(self.unmatched.values())[-5:]
        )

    def expect_echo(self, text: str | None) -> None:
        """A message from this client is on its way: until the server shows it (its user
        message event), nothing the agent says answers it. ``None``: it was not sent."""
        self.awaiting = gist(text) if text is not None else None

    def _note_answer(self, event: Event, raw_stamp: str | None) -> None:
        # compare moments, not strings (zones and precision differ between sources); a time
        # that cannot be compared never hides an answer
        stamp = parse_time(raw_stamp) if raw_stamp else None
        if event.type == "message" and event.source == "user":
            if self.awaiting is not None and gist(event.text) == self.awaiting:
                # the message this client sent: what comes after it is its answer (an event
                # store fed in batches can bring an earlier run's answer after it)
                self.awaiting = None
                self.reset_answer()
                self.answer_time = None
                if stamp is not None:
                    self.user_time = stamp
                return
            if stamp is not None and (self.user_time is None or later(stamp, self.user_time)):
                self.user_time = stamp
                if self.answer_time is not None and later(stamp, self.answer_time):
                    self.reset_answer()  # a new question: the older answer no longer stands
            return
        answer = event.type == "finish" or (event.type == "message" and event.source == "agent")
        if not answer or not event.text or self.awaiting is not None:
            return
        if stamp is not None:
            if self.user_time is not None and later(self.user_time, stamp):
                return  # said before the newest question
            if (
                self.answer_time is not None
                and later(self.answer_time, stamp)
                and (event.type != "finish" or self.last_finish is not None)
            ):
                return  # older than the answer already shown
            self.answer_time = stamp
        if event.type == "finish":
            self.last_finish = event.text
        else:
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
    def answer_in(self) -> bool:
        """It ended, and its answer is known (a run that did not finish has none to wait for)."""
        return self.status != st.FINISHED or self.last_finish is not None

    @property
    def end_shown(self) -> bool:
        """Whether the newest state in the feed says the run ended."""
        last = next((e for e in reversed(self.feed) if e.type == "state"), None)
        return last is not None and run_ended(last)

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
            pending=self.pending,
            stopped_why=self.stopped_why,
            doing=self.command.doing if self.command else None,
            command_note=self.command_note,
            store_note=self.store_note,
            buttons=tuple(buttons(self.status, self.command)),
            git_provider=self.git_provider,
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
            tuple(self.unmatched) if self.status == st.WAITING else (),
            self.stopped_why,
            self.command.doing if self.command else None,
            self.command_note,
            self.store_note,
            tuple(self.risks.get(k) for k in self.unmatched) if self.status == st.WAITING else (),
        )


def _usage_size(usage: Usage) -> tuple[float, int]:
    return (usage.cost or 0.0, (usage.prompt_tokens or 0) + (usage.completion_tokens or 0))


def gist(text: str | None) -> str:
    """What identifies a message's text across sources: its first 200 characters, whitespace
    folded."""
    return " ".join((text or "").split())[:200]


def run_ended(event: Event) -> bool:
    """A state event that says the run ended."""
    return event.type == "state" and st.v1_status("RUNNING", event.text, True) in st.FINAL

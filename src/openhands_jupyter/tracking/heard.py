"""``Heard``: what one conversation's events said (its feed, its answer, the actions waiting
for an answer, the analyzer's risks), kept apart from the tracker's own bookkeeping."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from ..api import status as st
from ..api.events import plan_of, risks_of
from ..api.ids import later, parse_time
from ..api.models import HIDDEN_TYPES, Event, PlanItem, Usage
from .changes import ChangeSet

_keys = itertools.count(1)
#: the feed's text, in characters at most (each event is bounded too: see ``api.models``)
FEED_BYTES = 4 * 1024 * 1024
#: event ids remembered to drop repeats
MAX_SEEN_IDS = 20_000


@dataclass(eq=False)
class Heard:
    """What the events of one conversation said, from every source, each event taken once.
    Changed on the tracker's loop."""

    key: int = field(default_factory=lambda: next(_keys))
    feed: deque[Event] = field(default_factory=lambda: deque(maxlen=200))
    #: what the feed gained since the last publish
    pending_events: list[Event] = field(default_factory=list)
    #: the ids of the newest events seen (an ordered set, bounded: a gap read goes back
    #: seconds, not hours)
    seen_ids: dict[str, None] = field(default_factory=dict)
    #: events a server sent that were left out, by why (another conversation's, no kind, a
    #: binary frame, nested too deep), and the notes said of them in the feed
    dropped: dict[str, int] = field(default_factory=dict)
    notes: int = 0
    server_time: str | None = None
    """The newest event timestamp, exactly as the server wrote it (its own clock)."""
    #: where the feed begins when the first read took only the newest page (a long history,
    #: or a late first read): older events found later are history, not news, and would
    #: land out of order; they are taken as seen and counted, never shown
    floor: str | None = None
    earlier: int = 0
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
    #: the agent's actions with no answer yet, by id (the newest few): while the status is
    #: waiting, these wait for the user's approval
    unmatched: dict[str, Event] = field(default_factory=dict)
    #: a security analyzer's risk for each action it rated, by action id (the newest 50)
    risks: dict[str, str] = field(default_factory=dict)
    #: what the agent changed in its workspace (read while a widget shows it)
    changes: ChangeSet = field(default_factory=ChangeSet)
    #: the agent has run at least once (an agent event, or a state that says running)
    has_run: bool = False
    #: the agent's plan (its task tracker's list) as the newest event that carries it says,
    #: and that event's server time (events come from several sources, out of order)
    plan: tuple[PlanItem, ...] = ()
    plan_time: str | None = None

    def begin_at(self, stamp: str) -> None:
        """A read of only the newest events left older ones out: if nothing was heard before
        it, the feed begins at ``stamp``."""
        if self.server_time is None and self.floor is None:
            self.floor = stamp

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
            stamp = event.raw.get("timestamp") if event.raw else None
            if self.floor is not None and isinstance(stamp, str) and stamp < self.floor:
                self.earlier += 1
                continue
            new.append(event)
            if isinstance(stamp, str) and (self.server_time is None or stamp > self.server_time):
                self.server_time = stamp
            if event.type == "stats":
                if event.usage is not None:
                    self.stats_usage = event.usage
                continue
            self._match(event)
            self._note_plan(event, stamp if isinstance(stamp, str) else None)
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

    def _note_plan(self, event: Event, stamp: str | None) -> None:
        items = plan_of(event)
        if items is None:
            return
        if stamp is not None and self.plan_time is not None and stamp < self.plan_time:
            return  # an older list, read late
        self.plan = items
        self.plan_time = stamp or self.plan_time

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

    def reset_answer(self) -> None:
        """A new run begins: the previous answer no longer stands."""
        self.last_finish = self.last_agent_message = None

    @property
    def end_shown(self) -> bool:
        """Whether the newest state in the feed says the run ended."""
        last = next((e for e in reversed(self.feed) if e.type == "state"), None)
        return last is not None and run_ended(last)


def gist(text: str | None) -> str:
    """What identifies a message's text across sources: its first 200 characters, whitespace
    folded."""
    return " ".join((text or "").split())[:200]


def run_ended(event: Event) -> bool:
    """A state event that says the run ended."""
    return event.type == "state" and st.v1_status("RUNNING", event.text, True) in st.FINAL

"""The tracker's register: what it follows, found by id, subscribed to, and let go."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from ..api import status as st
from ..api.models import Event
from .core import TrackerCore, log
from .state import Subscriber, Tracked


class Registry(TrackerCore):
    """What the tracker follows: registration from any thread, subscriptions, and reads made outside the loop."""

    def track(self, tracked: Tracked) -> None:
        """Follow a conversation (or a start task) until it ends."""
        with self._lock:
            self._held_here(tracked)
            tracked.tracking = True
            tracked.next_due = 0.0
            if tracked.status in st.FINAL and tracked.conversation_id and not tracked.feed:
                # attached after its end: read its last events for the feed and the answer, as
                # after an end seen live (until the finish message shows, a few times at most)
                tracked.final_left = max(tracked.final_left, self.config.final_fetches)
                tracked.events_due = 0.0
            self.entries[tracked.key] = tracked
        self.wake()
        self.call_soon(self._entries_changed)

    def _entries_changed(self) -> None:
        for watcher in list(self.watchers):  # none once closed (``close`` lets them go)
            try:
                watcher()
            except Exception:
                log.exception("watcher failed")

    def find(self, conversation_id: str) -> Tracked | None:
        """The conversation this tracker already follows under that id, if any."""
        with self._lock:
            for tracked in self.entries.values():
                if tracked.conversation_id == conversation_id:
                    return tracked
        return None

    def untrack(self, tracked: Tracked) -> None:
        with self._lock:
            self.entries.pop(tracked.key, None)
            tracked.tracking = False
            if tracked in self.queue:
                self.queue.remove(tracked)
                self._set_status(tracked, st.ERROR)
                tracked.detail = "Launch cancelled before it started."
                self._renumber()
        self.call_soon(self._sync_live, tracked)
        self.call_soon(self._publish, tracked, True)
        self.call_soon(self._entries_changed)

    def cancel_queued(self, tracked: Tracked) -> bool:
        """Drop a queued launch; returns whether it was still queued."""
        with self._lock:
            if tracked not in self.queue:
                return False
        self.untrack(tracked)
        return True

    def accept_events(self, tracked: Tracked, events: list[Event]) -> None:
        """Events read outside the loop (``events()``)."""
        self._evidence(tracked, tracked.add_events(events))
        self._publish(tracked)

    def subscribe(
        self, tracked: Tracked, fn: Subscriber, *, visible: bool = True
    ) -> Callable[[], None]:
        """Call ``fn(snapshot)`` on every change (on the tracker's loop). Returns an unsubscriber.
        A visible subscriber (a widget on screen) makes the conversation watched: it gets the
        agent server's live feed."""
        with self._lock:
            self._sub_ids += 1
            sid = self._sub_ids

        def add() -> None:
            tracked.subscribers[sid] = (fn, visible)
            if visible and tracked.status not in st.FINAL:
                tracked.events_due = min(tracked.events_due, self._now())
            try:
                fn(tracked.snapshot(tuple(tracked.feed)))
            except Exception:
                log.exception("subscriber failed")
            self._sync_live(tracked)
            self._start_task()

        self.call_soon(add)

        def unsubscribe() -> None:
            def remove() -> None:
                if tracked.subscribers.pop(sid, None) is not None:
                    self._sync_live(tracked)

            with contextlib.suppress(RuntimeError):
                self.call_soon(remove)

        return unsubscribe

"""Event reads: a conversation's new events from its agent server or the app server's store,
and the reads for the answer after the end."""

from __future__ import annotations

import math
import time

from ..api import status as st
from ..api.backend import Backend
from ..api.errors import (
    OpenHandsError,
    UnsupportedError,
)
from ..api.models import Event
from ..api.transport import backoff_delay
from .core import BUSY, CONVERSATION_FAULTS, TrackerCore, log
from .live import gap_since
from .state import LIVE_FALLBACK, Tracked


class Reading(TrackerCore):
    """Reads events when no live feed brings them, and the answer after the end."""

    def _events_readable(self, tracked: Tracked) -> bool:
        """Its events can be read now (a start task has none yet)."""
        return tracked.info is not None and tracked.events_supported

    async def _poll_events(self, now: float) -> None:
        due = [t for t in self.entries.values() if t.events_due <= now and self._events_readable(t)]
        # the budget goes to what is on screen first, and there to what is at work
        due.sort(key=lambda t: (not t.visible, t.status not in BUSY, t.events_due))
        if not due:
            return
        backend = await self._get_backend()
        cfg = self.config
        for tracked in due:
            final = tracked.status in st.FINAL
            # events are read for a watcher with no live feed, for the answer after the end,
            # and for evidence that a command took effect
            # and for the actions waiting for approval (a script prints them)
            wanted = (
                tracked.watched
                or tracked.command is not None
                or tracked.status == st.WAITING
                or self._cost_followed(tracked)
            )
            if not final and (not wanted or self._live_covers(tracked)):
                tracked.events_due = math.inf
                continue
            try:
                events, whole = await self._read_events(backend, tracked)
            except UnsupportedError:
                # a definite answer: no events to read here, nor an answer to wait for
                tracked.events_supported = False
                tracked.events_due = math.inf
                tracked.final_left = 0
                self._publish(tracked)
                continue
            except CONVERSATION_FAULTS as exc:
                # this conversation's answer went wrong (a 5xx, a cut-off or garbled body):
                # it retries on its own, and the others go on
                self._events_failed(tracked, exc, final)
                continue
            if tracked.events_failures:
                tracked.events_failures = 0
                if tracked.last_error == tracked.events_error:
                    tracked.last_error = tracked.retry_at = None
                tracked.events_error = None
            self._evidence(tracked, tracked.add_events(events))
            self._check_cost(tracked)
            if final:
                tracked.final_left -= 1
                # a store fed by an agent server lags it by a batch: the answer is in once
                # what followed it is
                answered = tracked.answer_in and (whole or tracked.end_shown)
                if answered or tracked.final_left <= 0:
                    tracked.final_left = 0
                    tracked.events_due = math.inf
                else:
                    # the app server's store gets events in batches (up to 30 s apart): wait
                    # for the finish message with growing gaps rather than many requests
                    used = cfg.final_fetches - tracked.final_left
                    gap = min(cfg.poll_interval * 2 ** max(0, used - 1), cfg.max_final_gap)
                    tracked.events_due = self._now() + cfg.s(gap)
            else:
                # at the pace of its status: idle and paused conversations' events rarely
                tracked.events_due = self._now() + self._interval(tracked)
            self._publish(tracked)
            self._sync_live(tracked)

    def _events_failed(self, tracked: Tracked, exc: OpenHandsError, final: bool) -> None:
        cfg = self.config
        tracked.events_failures += 1
        delay = backoff_delay(
            tracked.events_failures - 1, base=cfg.s(2.0), cap=cfg.s(cfg.max_backoff)
        )
        tracked.events_due = self._now() + delay
        log.debug("events of %s failed (%s); again in %.1fs", tracked.conversation_id, exc, delay)
        if final:
            # a failed read for the answer counts as one of the few tries: never a wait for ever
            tracked.final_left -= 1
            if tracked.final_left <= 0:
                tracked.final_left = 0
                tracked.events_due = math.inf
                tracked.last_error = tracked.events_error = f"The answer could not be read: {exc}"
                tracked.retry_at = None
                self._publish(tracked)
                return
        tracked.last_error = tracked.events_error = f"Retrying: {exc}"
        tracked.retry_at = time.time() + delay
        self._publish(tracked)

    async def _read_events(self, backend: Backend, tracked: Tracked) -> tuple[list[Event], bool]:
        """New events: from the agent server when it can be reached (it has them at once),
        else from the app server's store (which the agent server feeds in batches). Also
        whether they are all there are: not so when an agent server runs it and the store was
        read (it may lag the agent server by a batch)."""
        endpoint = self._endpoint(tracked)
        if endpoint is not None and self.config.live_events and tracked.live_state != LIVE_FALLBACK:
            try:
                since = gap_since(tracked.server_time)
                found = await self.agent.events_since(
                    endpoint, since, on_drop=tracked.drop, on_cut=tracked.begin_at
                )
                return found, True
            except OpenHandsError as exc:
                log.debug("agent-server events failed (%s); reading the app server's", exc)
        assert tracked.info is not None
        if tracked.cursor.fresh:
            # the first read (a new conversation, or one attached to): its newest events, at
            # once, rather than its history a few pages per tick
            tail = await backend.events_tail(tracked.info, tracked.cursor, on_cut=tracked.begin_at)
            return tail, endpoint is None
        return await backend.events(tracked.info, tracked.cursor), endpoint is None

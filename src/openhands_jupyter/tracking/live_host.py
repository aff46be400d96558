"""The tracker's side of the live feeds: when a conversation's agent-server socket is opened
or closed, what its frames change, and the check that it has not gone quiet."""

from __future__ import annotations

import math

from ..api import status as st
from ..api.agent import AgentEndpoint
from ..api.errors import (
    OpenHandsError,
)
from ..api.models import Event
from .core import BUSY, TrackerCore, log
from .heard import run_ended
from .live import LiveFeed, gap_since
from .state import LIVE_FALLBACK, LIVE_OFF, Tracked

#: how long after its live feed gave up a conversation's socket is tried again (seconds)
LIVE_RETRY = 60.0
#: how long a busy conversation's socket may say nothing before one REST read checks it
QUIET_AFTER = 15.0


class LiveHosting(TrackerCore):
    """Opens and closes live feeds and takes their frames."""

    def _endpoint(self, tracked: Tracked) -> AgentEndpoint | None:
        if self._version != "v1" or tracked.info is None or self._backend_obj is None:
            return None
        if (tracked.info.sandbox_status or "").upper() != "RUNNING":
            return None
        return self._backend_obj.endpoint(tracked.info)

    def _agent_problem(self, tracked: Tracked) -> str | None:
        info, backend = tracked.info, self._backend_obj
        if self._version != "v1" or info is None or backend is None:
            return None
        if (info.sandbox_status or "").upper() != "RUNNING" or tracked.status in st.FINAL:
            return None
        return backend.endpoint_problem(info)

    def _live_wanted(self, tracked: Tracked) -> bool:
        # someone watches it, or its cost cap needs each figure as it comes, up to the stop
        # (the app server's store is fed in batches up to 30 s apart)
        if self.closed or not tracked.tracking:
            return False
        if not tracked.watched and not self._cost_followed(tracked):
            return False
        if not self.config.live_events:
            return False
        if self._now() - tracked.live_gave_up_at < self.config.s(LIVE_RETRY):
            return False  # it gave up for a reason that does not change soon: later, again
        if self._endpoint(tracked) is None:
            return False
        if tracked.status in st.FINAL:
            return tracked.final_left > 0
        return tracked.status != st.PAUSED or tracked.command is not None

    def _live_covers(self, tracked: Tracked) -> bool:
        """Whether the live feed brings this conversation's events (so the app server's
        store need not be read); while it has not connected yet, it does not."""
        live = tracked.live
        return live is not None and not live.done and tracked.live_state != LIVE_FALLBACK

    def _sync_live(self, tracked: Tracked) -> None:
        """Open or close the agent-server feed as the conversation's watchers and status say.
        Runs on the tracker's loop."""
        wanted = self._live_wanted(tracked)
        if not self.config.live_events and tracked.watched and tracked.live_state != LIVE_FALLBACK:
            tracked.live_state = LIVE_FALLBACK
            tracked.live_note = "live activity is switched off (live_events=False)"
        elif tracked.watched and tracked.live_state != LIVE_FALLBACK and not wanted:
            why = self._agent_problem(tracked)
            if why:
                # an agent server this client will not send the session key to
                tracked.live_state = LIVE_FALLBACK
                tracked.live_note = why
        live = tracked.live
        if live is not None and live.done and tracked.live_state == LIVE_FALLBACK:
            # the feed gave up (no address, an unknown conversation, a refused key): not
            # again before LIVE_RETRY, whoever asks
            tracked.live_gave_up_at = self._now()
            tracked.live = live = None
            wanted = False
        if wanted and (live is None or live.done):
            tracked.live = LiveFeed(self, tracked, open_timeout=self.config.s(10.0))
        elif not wanted and live is not None:
            live.stop()
            tracked.live = None
            if tracked.live_state != LIVE_FALLBACK or tracked.status in st.FINAL:
                tracked.live_state = LIVE_OFF
                tracked.live_note = None
            if tracked.watched and tracked.status not in st.FINAL:
                tracked.events_due = min(tracked.events_due, self._now())
            self._publish(tracked)

    def live_endpoint(self, tracked: Tracked) -> AgentEndpoint | None:
        return self._endpoint(tracked)

    def live_events(self, tracked: Tracked, events: list[Event], *, live: bool) -> None:
        """Frames from the agent server. Events are de-duplicated by id; the status follows
        the socket's state updates at once (history read over REST never moves it)."""
        # in the order the server sent them: a command's evidence, then the states after it
        for event in events:
            # the state pushed on subscribe is a status, not an event of the run
            if event.kind != "full_state":
                self._evidence(tracked, tracked.add_events([event]))
            if live and event.type == "state":
                self._live_state(tracked, event)
        if tracked.changes.stale and tracked.changes.watchers:
            self._wake_up()
        self._check_cost(tracked)
        if tracked.status in st.FINAL and tracked.final_left > 0 and tracked.last_finish:
            if live and any(run_ended(e) for e in events):
                # the answer, then the end said on the socket: nothing more to wait for
                tracked.final_left = 0
                tracked.events_due = math.inf
            elif tracked.final_left > 1:
                self._answered(tracked)
        self._publish(tracked)
        if tracked.status in st.FINAL or tracked.status == st.PAUSED:
            self._sync_live(tracked)

    def live_status(self, tracked: Tracked, events: list[Event]) -> None:
        """The status from state frames only (the ones a socket got as it subscribed)."""
        for event in events:
            if event.type == "state":
                self._live_state(tracked, event)
        self._publish(tracked)

    def _live_state(self, tracked: Tracked, event: Event) -> None:
        paused = event.text in ("paused", "interrupted")
        self._live_status(tracked, "paused" if paused else event.text)

    def _live_status(self, tracked: Tracked, execution_status: str) -> None:
        if execution_status in (
            "running",
            "finished",
            "error",
            "stuck",
            "waiting_for_confirmation",
        ):
            tracked.has_run = True
        status = st.v1_status("RUNNING", execution_status, tracked.has_run)
        tracked.live_status_at = self._now()
        tracked.poll_ahead = None
        if tracked.command is not None:
            # pushed after the command went out, but a push of the state from before it may
            # still be on its way: only another state counts
            before = tracked.status
            self._observe(tracked, status, poll=False)
            if tracked.status != before:
                tracked.unconfirmed = True
                tracked.next_due = min(tracked.next_due, self._now() + self._interval(tracked))
            return
        if status != tracked.status:
            self._set_status(tracked, status)
            tracked.unconfirmed = True
            if tracked.status in st.FINAL and tracked.last_finish and tracked.final_left > 1:
                self._answered(tracked)
            tracked.next_due = min(tracked.next_due, self._now() + self._interval(tracked))

    def live_changed(self, tracked: Tracked, state: str, note: str | None) -> None:
        if (state, note) == (tracked.live_state, tracked.live_note):
            return
        tracked.live_state = state
        tracked.live_note = note
        if state == LIVE_FALLBACK and tracked.watched:
            tracked.events_due = min(tracked.events_due, self._now())
            self._wake_up()
        self._publish(tracked)

    def live_key_refused(self, tracked: Tracked) -> None:
        """The session key was refused: it may have been replaced; ask for the status soon."""
        tracked.next_due = min(tracked.next_due, self._now())
        self._wake_up()

    def live_feeds(self) -> list[LiveFeed]:
        return [t.live for t in list(self.entries.values()) if t.live is not None]

    @property
    def open_sockets(self) -> int:
        """How many agent-server feeds are open right now."""
        return sum(1 for feed in self.live_feeds() if not feed.done)

    def _quiet(self, tracked: Tracked, why: str) -> None:
        """The socket is open but brings nothing: read what it missed over REST, and open it
        again (within the connect rate); meanwhile activity may be delayed."""
        log.debug("live feed of %s went quiet: %s", tracked.conversation_id, why)
        if tracked.live is not None:
            tracked.live.stop()
            tracked.live = None
        self.live_changed(tracked, LIVE_FALLBACK, f"the live feed went quiet ({why}); reopening")
        tracked.events_due = min(tracked.events_due, self._now())
        self._wake_up()

    async def _check_quiet(self, now: float) -> None:
        """A watched, running conversation whose socket has said nothing for a while: is the
        agent just busy (a long command), or has the socket gone quiet? One REST read of what
        came since tells."""
        quiet = self.config.s(QUIET_AFTER)
        for tracked in list(self.entries.values()):
            live = tracked.live
            if (
                live is None
                or not live.connected
                or tracked.status not in BUSY
                or now - max(tracked.live_frame_at, live.connected_at) < quiet
                or now - tracked.live_checked_at < quiet
            ):
                continue
            endpoint = self._endpoint(tracked)
            if endpoint is None:
                continue
            tracked.live_checked_at = now
            try:
                found = await self.agent.events_since(
                    endpoint,
                    gap_since(tracked.server_time),
                    on_drop=tracked.drop,
                    on_cut=tracked.begin_at,
                )
            except OpenHandsError as exc:
                log.debug("quiet check of %s failed: %s", tracked.conversation_id, exc)
                continue
            missed = tracked.add_events(found)
            if missed:
                self._evidence(tracked, missed)
                self._quiet(tracked, f"{len(missed)} events came that it did not bring")
                self._publish(tracked)

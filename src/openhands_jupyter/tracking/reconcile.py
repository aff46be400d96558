"""Status reconciliation: batched status polls applied against commands under way and the
live feed, and every status change through one function (ends and restarts noticed there)."""

from __future__ import annotations

import math

from ..api import status as st
from ..api.models import ConversationInfo
from . import store_check
from .core import BUSY, TrackerCore
from .state import Tracked

#: how long a connected socket may lag a poll's new status before it counts as quiet
SOCKET_GRACE = 2.0
#: seconds (scaled) after the answer came live before the last read of what followed it
AFTER_ANSWER = 1.0


def live_newer_than(tracked: Tracked, sent_at: float) -> bool:
    """Whether the socket reported a status after a request sent at ``sent_at``."""
    return tracked.live_status_at > sent_at


class Reconcile(TrackerCore):
    """Reads statuses and applies them; every status change goes through ``_set_status``."""

    def _needs_status(self, tracked: Tracked) -> bool:
        if tracked.status == st.QUEUED or not tracked.tracking:
            return False
        return (
            tracked.status not in st.FINAL
            or tracked.unconfirmed
            or tracked.title_checks > 0
            or tracked.command is not None
        )

    def _interval(self, tracked: Tracked) -> float:
        cfg = self.config
        if tracked.status in (st.RUNNING, st.STARTING) or tracked.command is not None:
            return cfg.s(cfg.poll_interval)
        if tracked.status in (st.IDLE, st.WAITING):
            return cfg.s(cfg.idle_interval)
        if tracked.status == st.PAUSED:
            return cfg.s(cfg.paused_interval)
        return cfg.s(cfg.poll_interval * 2)

    async def _poll_conversations(self, batch: list[Tracked]) -> None:
        backend = await self._get_backend()
        self._version = backend.version
        ids = [t.conversation_id for t in batch if t.conversation_id]
        has_run = frozenset(t.conversation_id for t in batch if t.has_run and t.conversation_id)
        sent_at = self._now()
        infos = await backend.conversations(ids, has_run)
        now = self._now()
        for tracked, info in zip(batch, infos):
            self._apply_info(tracked, info, now, sent_at=sent_at, asked_at=sent_at)
            self._sync_live(tracked)
        await self._keep_titles(batch)
        await self._deliver_tasks(backend, [t for t in batch if t.undelivered])

    def _set_status(self, tracked: Tracked, status: str) -> None:
        """Every status change goes through here (the only place that writes it), so that ends
        and restarts are noticed."""
        before = tracked.status
        tracked.status = status
        if status in st.FINAL and before not in st.FINAL:
            self._became_final(tracked)
        elif status not in st.FINAL and before in st.FINAL:
            tracked.final_left = 0
        if before in BUSY and status not in BUSY | {st.QUEUED}:
            self._slot_freed = True  # (a start sent back to the queue frees no slot)
        if before == st.PAUSED and status != before and tracked.changes.error:
            tracked.changes.everything_stale()  # its files can be read again
        if before == st.PAUSED and status in st.ACTIVE | {st.RUNNING}:
            tracked.stopped_why = None

    def accept_info(self, tracked: Tracked, info: ConversationInfo | None, sent_at: float) -> None:
        """A status read outside the loop (``refresh()``) and asked at ``sent_at`` (the
        tracker's clock), applied like the loop's own: only a live status heard after it was
        asked is newer."""
        self._apply_info(tracked, info, self._now(), sent_at=sent_at)
        self._sync_live(tracked)

    def _apply_info(
        self,
        tracked: Tracked,
        info: ConversationInfo | None,
        now: float,
        sent_at: float = -math.inf,
        asked_at: float = math.inf,
    ) -> None:
        """Apply a status read. ``sent_at``: when it was asked, for comparing with the live
        feed; ``asked_at`` likewise, for a loop poll that may have crossed a command."""
        if info is not None and asked_at < tracked.command_at:
            # asked before the last command reached the server: it can only show the state
            # from before it; the next poll (soon) tells
            tracked.next_due = min(tracked.next_due, now + self.config.s(0.5))
            return
        if info is not None and info.unreadable:
            # only this conversation: it keeps what was known and says why, the others go on
            tracked.last_error = tracked.record_error = info.unreadable
            tracked.next_due = now + self._interval(tracked)
            self._publish(tracked)
            return
        if tracked.record_error:
            if tracked.last_error == tracked.record_error:
                tracked.last_error = None
            tracked.record_error = None
        if info is None:
            tracked.misses += 1
            if tracked.seen or tracked.misses >= 5:
                if tracked.command is not None:
                    self._finish(tracked, None)
                self._set_status(tracked, st.ARCHIVED if tracked.seen else st.ERROR)
                tracked.detail = None if tracked.seen else "The server does not know this id."
        else:
            tracked.misses = 0
            tracked.seen = True
            tracked.info = info
            tracked.info_at = asked_at if asked_at != math.inf else now
            tracked.start_phase = None
            if (info.execution_status or "").lower() in st.RAN_STATES:
                tracked.has_run = True
            live_newer = (
                live_newer_than(tracked, sent_at)
                and (info.sandbox_status or "RUNNING").upper() == "RUNNING"
            )
            if live_newer:
                pass  # the agent server said something newer while this answer was on its way
            elif tracked.undelivered:
                pass  # started in confirmation mode: starting until its task is sent
            elif tracked.command is not None:
                # asked after the command went out: the server's word, unless it still shows
                # the state from before it (then the events may hold the evidence)
                self._observe(tracked, info.status, poll=asked_at != math.inf)
                if tracked.command is not None and (
                    tracked.live is None or not tracked.live.connected
                ):
                    tracked.events_due = min(tracked.events_due, now)
            elif self._socket_behind(tracked, info, now):
                pass  # the connected socket gets a moment to bring it itself, in order
            else:
                self._set_status(tracked, info.status)
        if not live_newer_than(tracked, sent_at):
            tracked.unconfirmed = False
        tracked.next_due = now + self._interval(tracked)
        if tracked.poll_ahead is not None:
            tracked.next_due = min(tracked.next_due, now + self.config.s(SOCKET_GRACE))
        wanted = tracked.visible or tracked.status == st.WAITING or self._cost_followed(tracked)
        if wanted and tracked.status not in st.FINAL and tracked.events_due == math.inf:
            tracked.events_due = now
        self._check_cost(tracked)
        self._publish(tracked)

    def _socket_behind(self, tracked: Tracked, info: ConversationInfo, now: float) -> bool:
        """Whether a poll's new status waits for the connected socket: the socket brings each
        state as it happens, in order, and a poll that got ahead of it must not be undone by
        the frames still on their way. If the socket has not brought it by the next poll
        (``SOCKET_GRACE`` later), it has gone quiet: the poll's word stands, and the gap is
        read."""
        live = tracked.live
        running = (info.sandbox_status or "RUNNING").upper() == "RUNNING"
        if info.status == tracked.status or live is None or not live.connected or not running:
            tracked.poll_ahead = None
            return False
        ahead = tracked.poll_ahead
        if ahead is None or ahead[0] != info.status:
            tracked.poll_ahead = (info.status, now)
            return True
        if now - ahead[1] < self.config.s(SOCKET_GRACE):
            return True
        tracked.poll_ahead = None
        self._quiet(tracked, f"the server says {info.status}; the live feed did not")
        return False

    def _became_final(self, tracked: Tracked) -> None:
        self._slot_freed = True
        tracked.changes.everything_stale()
        if tracked.conversation_id and tracked.events_supported and not tracked.answer_in:
            tracked.final_left = self.config.final_fetches
            lag = 0.0 if self._endpoint(tracked) else self.config.event_lag_allowance
            tracked.events_due = self._now() + self.config.s(lag)
        else:
            self._answered(tracked)
        if tracked.conversation_id and self._endpoint(tracked) and tracked.visible:
            store_check.schedule(tracked, self._now(), self.config)

    def _answered(self, tracked: Tracked) -> None:
        """It ended with its answer in. What the agent server sends right after the answer
        (the run's end, the last cost figures) is still read: a live feed stays for one last
        read a moment later (closing it at once would cut those off), and a store that an agent
        server feeds is read until it shows the end (it lags by a batch)."""
        if tracked.live is not None and not tracked.live.done:
            tracked.final_left = 1
            tracked.events_due = self._now() + self.config.s(AFTER_ANSWER)
        elif self._endpoint(tracked) is not None and not tracked.end_shown:
            tracked.final_left = self.config.final_fetches
            tracked.events_due = self._now() + self.config.s(self.config.event_lag_allowance)
        else:
            tracked.final_left = 0
            tracked.events_due = math.inf

"""What the loop keeps up beside statuses and events: the changed files a widget shows, the
title given at the start, and the store comparison after the end."""

from __future__ import annotations

from ..api import status as st
from ..api.errors import (
    ConflictError,
    NotFoundError,
    UnsupportedError,
)
from ..api.transport import backoff_delay
from . import changes, store_check
from .core import BUSY, CONVERSATION_FAULTS, TrackerCore, log
from .state import Tracked

MAX_TITLE_ATTEMPTS = 5


class Policies(TrackerCore):
    """Keeps the changed files, the given title and the store comparison."""

    async def _compare_stores(self, now: float) -> None:
        """A few comparisons a tick, once no event read is due: they come last."""
        if any(t.events_due <= now and self._events_readable(t) for t in self.entries.values()):
            return
        due = [t for t in self.entries.values() if t.store_due <= now]
        for tracked in due[: store_check.PER_TICK]:
            await store_check.compare(await self._get_backend(), tracked, now, self.config)
            self._publish(tracked)

    async def _poll_changes(self, now: float) -> None:
        """Read what the agent changed, for conversations a widget shows it for: after an
        edit (at most once a second) and once after the run ends. While the agent server is
        up these reads go to it, not to the app server."""
        due = [
            t
            for t in self.entries.values()
            if t.info is not None and t.visible and t.changes.wanted(now)
        ]
        if not due:
            return
        backend = await self._get_backend()
        cfg = self.config
        for tracked in sorted(due, key=lambda t: t.status not in BUSY):
            assert tracked.info is not None
            try:
                await changes.refresh(backend, tracked.info, tracked.changes)
            except CONVERSATION_FAULTS as exc:
                delay = backoff_delay(
                    tracked.changes.failures, base=cfg.s(2.0), cap=cfg.s(cfg.max_backoff)
                )
                changes.failed(tracked.changes, exc, self._now() + delay)
            else:
                tracked.changes.due = self._now() + cfg.s(changes.GAP)
            self._publish(tracked)

    async def _keep_titles(self, batch: list[Tracked]) -> None:
        """The server replaces a title given at the start with one it generates (once, some
        seconds in): give it back, and look again twice after each time (a few times at most)."""
        for tracked in batch:
            wanted = tracked.request.title if tracked.request else None
            info = tracked.info
            if not wanted or info is None or not tracked.conversation_id:
                continue
            if info.title == wanted:
                if tracked.title_checks > 0:
                    tracked.title_checks -= 1
                    self._check_title_later(tracked)
                continue
            if tracked.title_attempts >= MAX_TITLE_ATTEMPTS:
                tracked.title_checks = 0
                continue
            tracked.title_attempts += 1
            backend = await self._get_backend()
            try:
                await backend.set_title(info, wanted)
                tracked.title_checks = 2
                self._check_title_later(tracked)
            except UnsupportedError:
                tracked.title_attempts = MAX_TITLE_ATTEMPTS
                tracked.title_checks = 0
            except (NotFoundError, ConflictError) as exc:
                log.debug("could not set the title: %s", exc)

    def _check_title_later(self, tracked: Tracked) -> None:
        due = self._now() + self.config.s(self.config.poll_interval * 3)
        tracked.next_due = min(tracked.next_due, due) if tracked.status not in st.FINAL else due

"""``conv.on(status, callback)``: a function of the user's, run when a conversation reaches a
status (it finished, it waits for an approval, it failed), on the client's loop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ..api import status as st
from ..api.errors import InputError
from ..tracking import Snapshot, Tracked

log = logging.getLogger("openhands_jupyter")
N = TypeVar("N", bound="NotifyMixin")
#: what ``on`` can wait for: every status, and ``ended`` (any status the run ends in)
WHEN = (*sorted(st.RULES), "ended")


class NotifyMixin:
    """``on()`` for :class:`Conversation`."""

    _tracked: Tracked

    def subscribe(  # pragma: no cover - the handle defines it
        self, fn: Callable[[Snapshot], None], *, visible: bool = True
    ) -> Callable[[], None]:
        raise NotImplementedError

    def track(self) -> Any:  # pragma: no cover - the handle defines it
        raise NotImplementedError

    def on(self: N, status: str, callback: Callable[[N], object]) -> Callable[[], None]:
        """Call ``callback(conversation)`` each time the status becomes ``status``:
        ``"finished"``, ``"waiting"`` (an action waits for your approval), ``"error"``, any
        other status, or ``"ended"`` (any status a run ends in). When it already is, the call
        comes at once. It runs on the client's loop (in a notebook, the kernel's, between
        cells); what it raises is logged, never shown in another cell. Returns a function that
        stops the calls."""
        if status not in WHEN:
            raise InputError(f"on() takes one of {', '.join(WHEN)}; not {status!r}.")
        if not callable(callback):
            raise InputError(f"on() needs a function to call, not {callback!r}.")

        tracked = self._tracked

        def reached(snap: Snapshot | None) -> bool:
            if snap is None:
                return False
            if status == "ended":
                return snap.status in st.FINAL
            if status == st.WAITING and tracked.events_supported:
                # once the actions that wait are known, so that the callback can see them
                return snap.status == st.WAITING and bool(snap.pending)
            return snap.status == status

        last: list[Snapshot | None] = [None]

        def seen(snap: Snapshot) -> None:
            before, last[0] = last[0], snap
            if reached(snap) and not reached(before):
                try:
                    callback(self)
                except Exception:
                    log.exception("the on(%r) callback failed", status)

        if not self._tracked.tracking:
            self.track()
        # not a view: it costs no live feed
        return self.subscribe(seen, visible=False)

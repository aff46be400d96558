"""Text progress for scripts and terminals: one printed line per status change."""

from __future__ import annotations

import sys
from typing import TextIO

from ..api import status as st
from ..api.text import shorten, visible
from ..tracking import Snapshot


class ProgressPrinter:
    """A subscriber that prints ``[openhands] <label>: <status>`` when the status changes.

    A conversation is named by its task (``label``), else by its title or short id (one
    attached to); its server id is printed once, on its own line, as soon as the server has
    given it (a start only has a start-task id until then). Every line is one line, with the
    control characters of the server's text shown, not acted on.
    """

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = shorten(label, 50)
        self.stream = stream
        self._last: tuple[str, str | None, str | None, str | None] | None = None
        self._answered = False
        self._id_said = False
        self._pending_said: tuple[str, ...] = ()

    def _print(self, text: str) -> None:
        line = " ".join(visible(f"[openhands] {self.label}: {text}").split())
        print(line, file=self.stream or sys.stdout, flush=True)

    def __call__(self, snap: Snapshot) -> None:
        if not self.label:
            ident = snap.conversation_id
            self.label = shorten(snap.title, 50) or (f"conversation {ident[:8]}" if ident else "")
        if snap.conversation_id and not self._id_said:
            self._id_said = True
            self._print(f"conversation id {snap.conversation_id}")
        state = (
            snap.status,
            snap.start_phase if snap.status == st.STARTING else None,
            snap.last_error or snap.command_note,
            snap.doing,
        )
        rules = st.rules(snap.status)
        self._say_pending(snap)
        if state == self._last:
            if snap.status == st.WAITING:
                return  # waits for the user: what it would do is said, not an answer
            if snap.result and not self._answered and not rules.active:
                self._answered = True
                self._print("answer: " + shorten(snap.result.strip().splitlines()[0], 120))
            return
        self._last = state
        if rules.active:
            self._answered = False
        line = rules.label
        if snap.doing:
            line += f" — {snap.doing}"
        if state[1]:
            line += f" ({state[1].lower().replace('_', ' ')})"
        if snap.status == st.QUEUED and snap.queue_position:
            line += f" (#{snap.queue_position} in queue)"
        if snap.detail and snap.status in (st.ERROR, st.QUEUED):
            line += f" — {snap.detail}"
        if state[2]:
            line += f" — {state[2]}"
        if snap.stopped_why and not snap.doing and snap.status in (st.PAUSED, st.IDLE):
            line += f" — {snap.stopped_why}"
        self._print(line)

    def _say_pending(self, snap: Snapshot) -> None:
        """Each action waiting for approval, once, and how to answer it."""
        ids = tuple(a.id for a in snap.pending)
        if not ids or ids == self._pending_said:
            return
        self._pending_said = ids
        for action in snap.pending:
            self._print("waits for approval: " + action.line())
        self._print("approve with .approve() or refuse with .reject('why') on its conversation")

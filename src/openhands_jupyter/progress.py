"""Text progress for scripts and terminals: one printed line per status change."""

from __future__ import annotations

import sys
from typing import TextIO

from .tracking import Snapshot


class ProgressPrinter:
    """A subscriber that prints ``[openhands] <id> <label>: <status>`` when the status changes."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        label = " ".join(label.split())
        self.label = label if len(label) <= 50 else label[:49] + "…"
        self.stream = stream
        self._last: tuple[str, str | None, str | None] | None = None
        self._answered = False

    def __call__(self, snap: Snapshot) -> None:
        state = (
            snap.status,
            snap.start_phase if snap.status == "starting" else None,
            snap.last_error,
        )
        ident = (snap.conversation_id or snap.start_task_id or "--------")[:8]
        out = self.stream or sys.stdout
        if state == self._last:
            if snap.result and not self._answered and snap.status not in ("running", "starting"):
                self._answered = True
                answer = snap.result.strip().splitlines()[0][:120]
                print(f"[openhands] {ident} {self.label}: answer: {answer}", file=out, flush=True)
            return
        self._last = state
        if snap.status in ("running", "starting"):
            self._answered = False
        line = f"[openhands] {ident} {self.label}: {snap.status}"
        if state[1]:
            line += f" ({state[1].lower().replace('_', ' ')})"
        if snap.status == "queued" and snap.queue_position:
            line += f" (#{snap.queue_position} in queue)"
        if snap.detail and snap.status in ("error", "queued"):
            line += f" — {snap.detail}"
        if snap.last_error:
            line += f" — {snap.last_error}"
        print(line, file=out, flush=True)

"""The panel (anywidget): every tracked conversation in one table, and a launch form."""

from __future__ import annotations

import functools
import time
from collections.abc import Coroutine
from typing import Any

import anywidget
import traitlets

from ..api import status as st
from ..api.errors import OpenHandsError
from ..api.ids import epoch_ms
from ..api.text import comm_safe, shorten, visible
from ..handles.blocking import OpenHands
from ..handles.client import AsyncOpenHands
from ..handles.conversation import COMMAND_NAMES, Conversation
from ..handles.fanout import stop_at_work
from ..tracking import Snapshot
from .assets import asset
from .shared import shared_client
from .widget import tokens_state

FLUSH_SECONDS = 0.25


class Panel(anywidget.AnyWidget):
    """A table of the client's tracked conversations with stop/resume/untrack and a launch form.

    ``Panel()`` uses the client of the ``%openhands`` magic; pass one to use another.
    """

    _esm = asset("widget.js")
    _css = asset("widget.css")

    rows: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    #: a fan-out's table: these conversations only, with their changes and answers, a Stop
    #: all button and no launch form
    fanout = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self,
        client: OpenHands | AsyncOpenHands | None = None,
        conversations: list[Conversation] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if conversations is not None:
            self.fanout = True
        if client is None:
            client = shared_client()
        self.client: AsyncOpenHands = client.aio if isinstance(client, OpenHands) else client
        self._only = None if conversations is None else {c.key for c in conversations}
        self._rows: dict[int, dict[str, Any]] = {}
        self._subs: dict[int, Any] = {}
        self._started: dict[int, float] = {}
        self._ended: dict[int, float] = {}
        self._flush_pending = False
        self.on_msg(self._handle_custom)
        self._unwatch = self.client.on_tracked_changed(self._sync_entries)

    # -- rows -----------------------------------------------------------------------------------
    def _sync_entries(self) -> None:
        entries = {
            conv.key: conv
            for conv in self.client.tracked
            if self._only is None or conv.key in self._only
        }
        for key in list(self._subs):
            if key not in entries:
                self._subs.pop(key)()
                self._rows.pop(key, None)
        for key, conv in entries.items():
            if key not in self._subs:
                self._subs[key] = conv.subscribe(
                    functools.partial(self._on_snapshot, conv), visible=False
                )
        self._schedule_flush()

    def _on_snapshot(self, conv: Conversation, snap: Snapshot) -> None:
        key = conv.key
        if not conv.tracked:
            return
        started = self._started.setdefault(
            key, min(epoch_ms(conv.created_at) or time.time() * 1000, time.time() * 1000)
        )
        if snap.status in st.ACTIVE or snap.status in (st.WAITING,):
            self._ended.pop(key, None)
        else:
            self._ended.setdefault(key, time.time() * 1000)
        url = snap.url or ""
        self._rows[key] = comm_safe(
            {
                "key": key,
                "id": snap.conversation_id or "",
                "status": snap.status,
                "rules": st.rules(snap.status).state(),
                "title": snap.title or "",
                "task": " ".join((conv.task or "").split())[:200],
                "repository": snap.repository or "",
                "branch": snap.branch or "",
                "cost": snap.cost,
                "tokens": tokens_state(snap),
                "url": url if url.startswith(("http://", "https://")) else "",
                "detail": snap.detail or snap.last_error or "",
                "pending": snap.pending[0].line() if snap.pending else "",
                "doing": snap.doing or "",
                "buttons": [b for b in snap.buttons if b["place"] == "bar"],
                "started_at": started,
                "ended_at": self._ended.get(key),
                "queue_position": snap.queue_position,
                "changes": len(snap.changes) if snap.changes_read else None,
                "answer": (snap.result or "")[:200] if snap.status != st.WAITING else "",
            }
        )
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_pending:
            return
        self._flush_pending = True
        self.client.later(FLUSH_SECONDS, self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        # the panel: newest first; a fan-out: in its rows' order
        self.rows = sorted(self._rows.values(), key=lambda r: r["key"], reverse=not self.fanout)

    # -- actions --------------------------------------------------------------------------------
    def _conversation(self, key: Any) -> Conversation | None:
        wanted = int(key) if str(key).isdigit() else None
        return next((c for c in self.client.tracked if c.key == wanted), None)

    def _handle_custom(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        action = content.get("action")
        coro: Coroutine[Any, Any, Any]
        if action == "stop_all":
            targets = [c for c in self.client.tracked if self._only and c.key in self._only]
            coro = stop_at_work(targets)
        elif action == "launch":
            self.busy = True
            self.message = ""
            coro = self.client.start(
                str(content.get("task") or ""),
                repository=str(content.get("repository") or "") or None,
                branch=str(content.get("branch") or "") or None,
            )
        else:
            conv = self._conversation(content.get("key"))
            if conv is None:
                return
            if action == "untrack":
                conv.untrack()
                return
            if action not in COMMAND_NAMES:
                return
            coro = conv.command_async(str(action))
        self.client.in_background(coro, self._done)

    def _done(self, future: Any) -> None:
        self.busy = False
        exc = None if future.cancelled() else future.exception()
        if exc is not None:
            self.message = str(exc) if isinstance(exc, OpenHandsError) else f"Failed: {exc}"
        self._schedule_flush()

    def text_table(self) -> str:
        """What the panel shows, as text (a terminal, a saved notebook): a line per tracked
        conversation, read from the tracker itself (the rows reach the widget a moment later)."""
        convs = {c.key: c for c in self.client.tracked}
        snaps = [c.snapshot() for c in convs.values()]
        snaps.sort(key=lambda s: s.key, reverse=True)
        counts: dict[str, int] = {}
        for snap in snaps:
            counts[snap.status] = counts.get(snap.status, 0) + 1
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"
        waiting = sum(1 for s in snaps if s.pending)
        head = f"OpenHands panel: {len(snaps)} tracked ({summary})"
        if waiting:
            head += f"; {waiting} waiting for your approval"
        lines = [head]
        for snap in snaps:
            ident = (snap.conversation_id or "")[:8] or "-"
            conv = convs.get(snap.key)
            label = shorten(visible(snap.title or (conv.task if conv else "") or ""), 50)
            line = f"  {ident:<8}  {st.rules(snap.status).label:<9}  {label}"
            if snap.pending:
                line += f"  [waits for approval: {snap.pending[0].line()}]"
            lines.append(visible(line))
        return "\n".join(lines)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["text/plain"] = self.text_table()
        return bundle

    def close(self) -> None:
        self._unwatch()
        for unsubscribe in self._subs.values():
            unsubscribe()
        self._subs.clear()
        super().close()

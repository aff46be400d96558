"""The live conversation widget (anywidget): Python side, fed by tracker snapshots."""

from __future__ import annotations

import functools
import html
import threading
import time
from typing import Any

import anywidget
import traitlets

from ..api import status as st
from ..api.errors import OpenHandsError
from ..api.ids import epoch_ms
from ..api.text import comm_safe, money, shorten, visible
from ..handles.conversation import COMMAND_NAMES, Conversation
from ..tracking import Snapshot
from .assets import asset
from .changes import changes_state, diff_message, view_message
from .links import pr_links

FEED_LIMIT = 200
#: seconds a new widget counts as on screen before any view of it has reported
VIEW_GRACE = 30.0
#: what the card does itself (every other action is a command of ``tracking.commands``)
LOCAL_ACTIONS = ("refresh", "untrack")


def _excerpt(text: str | None, size: int = 200) -> str:
    return shorten(text, size)


def tokens_state(snap: Snapshot) -> dict[str, int | None] | None:
    """Prompt and completion tokens for the frontend, or ``None`` when none were reported."""
    if snap.prompt_tokens is None and snap.completion_tokens is None:
        return None
    return {"prompt": snap.prompt_tokens, "completion": snap.completion_tokens}


def _merged(feed: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The feed with the new items added: none twice, no status line that repeats the one before
    it. Pauses are the widget's own marks (made when the status changes), so the server's pause
    events, which may arrive late or twice, are left out."""
    known = {e["id"] for e in feed}
    states = [e["text"] for e in feed if e["type"] == "state"]
    last_state = states[-1] if states else None
    out = list(feed)
    for item in new:
        if item["id"] in known:
            continue
        if item["type"] == "state":
            server_pause = item["source"] != "client" and item["text"] in ("paused", "interrupted")
            if server_pause or item["text"] == last_state:
                continue
            last_state = item["text"]
        known.add(item["id"])
        out.append(item)
    return out


def phase_line(snap: Snapshot) -> str:
    """ "Starting: preparing sandbox" or "Queued (#3)": the line under the title, if any."""
    if snap.status == st.STARTING and snap.start_phase:
        return "Starting: " + snap.start_phase.lower().replace("_", " ")
    if snap.status == st.QUEUED:
        return f"Queued (#{snap.queue_position})" if snap.queue_position else "Queued"
    return ""


class ConversationWidget(anywidget.AnyWidget):
    """Shows one conversation live. Holds no secret in any synced trait."""

    _esm = asset("widget.js")
    _css = asset("widget.css")

    state = traitlets.Dict().tag(sync=True)
    busy = traitlets.Unicode("").tag(sync=True)
    action_error = traitlets.Unicode("").tag(sync=True)
    #: what the user opened (diffs by path, the whole feed): every view of it shows the same
    view_state = traitlets.Dict().tag(sync=True)
    #: a browser notification and a mark in the tab's title when it ends or waits for the
    #: user while the tab is hidden (the ``notify`` setting)
    notify = traitlets.Bool(False).tag(sync=True)

    def __init__(self, conversation: Conversation, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conversation = conversation
        self._lock = threading.Lock()
        self._started_ms = time.time() * 1000
        self._ended_ms: float | None = None
        if conversation.status in st.FINAL:
            # attached after its end: it ended when the server last changed it (when that
            # time has a zone; a naive one says nothing about how long ago)
            self._ended_ms = epoch_ms(conversation.updated_at)
        self._on_final: list[Any] = []
        self._marks = 0
        # the feed stays here; the browser gets what is new as messages (see _on_snapshot)
        self._feed: list[dict[str, Any]] = []
        # the browser's views of this widget on screen, by the ids they report
        self._views: set[str] = set()
        self._viewed = False
        self._closed = False
        self.state = comm_safe(self._state(conversation.snapshot()))
        self.on_msg(self._handle_custom)
        # watched until the browser says otherwise, or says nothing for VIEW_GRACE seconds
        # (no frontend renders it: a terminal, a script, a notebook run headless)
        self._visible = True
        self._unsubscribe = conversation.subscribe(self._on_snapshot, visible=True)
        conversation.watch_changes(True)
        conversation.later(VIEW_GRACE, self._no_view_yet)

    @property
    def feed(self) -> list[dict[str, Any]]:
        """The feed as the browser shows it (the newest ``FEED_LIMIT`` items)."""
        with self._lock:
            return list(self._feed)

    @property
    def on_screen(self) -> bool:
        """Whether it counts as seen: a view is on screen, or none has reported yet."""
        return self._visible

    # -- views ----------------------------------------------------------------------------------
    def _view(self, shown: bool, view_id: str) -> None:
        with self._lock:
            if shown:
                self._views.add(view_id)
                self._viewed = True
                feed = list(self._feed)
            else:
                self._views.discard(view_id)
            on_screen = bool(self._views)
        if shown:
            # a new view starts from the whole feed (the others already have it)
            self.send({"feed": feed, "reset": True, "limit": FEED_LIMIT})
        self._watch(on_screen)

    def _no_view_yet(self) -> None:
        if not self._viewed:
            self._watch(False)

    def _watch(self, visible: bool) -> None:
        """Count as a widget on screen (the conversation is watched: live feed, events read)
        or not (its status is still followed, at the slower pace of what nobody looks at)."""
        with self._lock:
            if self._closed or visible == self._visible:
                return
            self._visible = visible
            self._unsubscribe()
            self._unsubscribe = self.conversation.subscribe(self._on_snapshot, visible=visible)

    # -- state from snapshots -------------------------------------------------------------------
    def _state(self, snap: Snapshot) -> dict[str, Any]:
        conv = self.conversation
        # a naive server time has no zone: measure from when this client saw it start
        # a server clock ahead of this one must not make the elapsed time negative (blank)
        started = min(epoch_ms(conv.created_at) or self._started_ms, time.time() * 1000)
        if snap.status not in st.ACTIVE and snap.status not in (st.RUNNING, st.WAITING):
            if self._ended_ms is None:
                self._ended_ms = time.time() * 1000
        else:
            self._ended_ms = None
        url = snap.url or ""
        return {
            "status": snap.status,
            "rules": st.rules(snap.status).state(),
            "phase": snap.start_phase or "",
            "task": _excerpt(conv.task, 300),
            "title": snap.title or "",
            "repository": snap.repository or "",
            "branch": snap.branch or "",
            "conversation_id": snap.conversation_id or "",
            "cost": snap.cost,
            "tokens": tokens_state(snap),
            "changes": changes_state(snap),
            "pending": [a.to_dict() for a in snap.pending],
            # what a notification says when it needs the user (the notify setting)
            "attention": attention(snap),
            "plan": [item.to_dict() for item in snap.plan],
            # the command under way until the server confirms it, and the buttons to draw
            "doing": snap.doing or "",
            "command_note": snap.command_note or "",
            "store_note": snap.store_note or "",
            "buttons": list(snap.buttons),
            "activity": snap.activity,
            "activity_note": snap.activity_note or "",
            "prs": pr_links(snap.pr_numbers, snap.repository, snap.git_provider),
            "url": url if url.startswith(("http://", "https://")) else "",
            # what it said before asking for approval is not its answer
            "result": (snap.result or "")[:20000] if snap.status != st.WAITING else "",
            "phase_line": phase_line(snap),
            # why it failed, or why it waits in the queue
            # or why this client stopped it (its cost cap)
            "detail": (snap.detail or "")
            if snap.status in (st.ERROR, st.QUEUED)
            else (snap.stopped_why or ""),
            "max_cost": snap.max_cost,
            "max_cost_text": money(snap.max_cost) if snap.max_cost is not None else "",
            "error": snap.last_error or "",
            "retry_at": snap.retry_at * 1000 if snap.retry_at else None,
            "queue_position": snap.queue_position,
            "started_at": started,
            "ended_at": self._ended_ms,
            "tracking": snap.tracking,
            "untracked_note": ""
            if snap.tracking
            else "No longer followed: this widget has stopped updating. "
            + (
                f"%openhands --attach {snap.conversation_id} follows it again."
                if snap.conversation_id
                else ""
            ),
        }

    def _on_snapshot(self, snap: Snapshot) -> None:
        with self._lock:
            before = self.state.get("status")
            self.state = comm_safe(self._state(snap))
            new = [comm_safe(e.to_dict()) for e in snap.new_events]
            new.extend(self._pause_marks(before, snap, new))
            added: list[dict[str, Any]] = []
            if new:
                known = {e["id"] for e in self._feed}
                merged = _merged(self._feed, new)
                added = [e for e in merged if e["id"] not in known]
                self._feed = merged[-FEED_LIMIT:]
        if added:
            self.send({"feed": added, "limit": FEED_LIMIT})
        if snap.status in st.FINAL and before not in st.FINAL:
            for callback in list(self._on_final):
                callback(self)

    def _pause_marks(
        self, before: Any, snap: Snapshot, new: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """A feed line when the conversation is paused or resumed: servers send no event for a
        resume, and none for a pause of the whole sandbox."""
        if before is None or before == snap.status:
            return []
        if snap.status == st.PAUSED:
            text = "paused"
        elif before == st.PAUSED and snap.status not in st.FINAL:
            text = "resumed"
        else:
            return []
        self._marks += 1
        return [
            {
                "id": f"ohj-{text}-{self._marks}",
                "type": "state",
                "source": "client",
                "text": text,
                "exit_code": None,
                "timed_out": False,
                "time": None,
            }
        ]

    # -- actions from the browser ---------------------------------------------------------------
    def _handle_custom(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("view") in ("shown", "gone"):
            self._view(content["view"] == "shown", str(content.get("id") or ""))
            return
        if isinstance(content, dict) and isinstance(content.get("diff"), str):
            self._send_diff(content["diff"], bool(content.get("all")), content.get("seq"))
            return
        if isinstance(content, dict) and isinstance(content.get("view_file"), str):
            self._send_view(content["view_file"])
            return
        action = content.get("action") if isinstance(content, dict) else None
        if action not in LOCAL_ACTIONS and action not in COMMAND_NAMES:
            return
        assert isinstance(content, dict) and isinstance(action, str)
        conv = self.conversation
        if action == "untrack":
            conv.untrack()
            return
        self.busy = action
        self.action_error = ""
        coro: Any
        if action == "refresh":
            coro = conv.refresh_async()
        else:
            # the actions an answer is for: the ones this view drew
            ids = content.get("ids")
            shown = tuple(str(i) for i in ids) if isinstance(ids, list) else None
            text = str(content.get("text") or content.get("reason") or "")
            coro = conv.command_async(action, text, shown)
        conv.in_background(coro, functools.partial(self._done, action))

    def _send_diff(self, path: str, everything: bool, seq: Any = None) -> None:
        """Answer the browser's request for a file's diff: the one the tracker read last, else
        read now (off the kernel's thread), and any error as a line of text."""
        conv = self.conversation
        cached = conv.cached_diff(path)
        if cached is not None:
            self.send(diff_message(path, cached, everything, seq))
            return

        def done(f: Any) -> None:
            exc = None if f.cancelled() else f.exception()
            if f.cancelled() or exc is not None:
                why = str(exc) if isinstance(exc, OpenHandsError) else "the diff could not be read"
                self.send(diff_message(path, None, everything, seq, error=why))
            else:
                self.send(diff_message(path, f.result(), everything, seq))

        conv.in_background(conv.diff_async(path), done)

    def _send_view(self, path: str) -> None:
        """Answer the browser's request to show a changed file inline (read off the kernel's
        thread; an error as a line of text)."""

        def done(f: Any) -> None:
            exc = None if f.cancelled() else f.exception()
            if f.cancelled() or exc is not None:
                why = str(exc) if isinstance(exc, OpenHandsError) else "the file could not be read"
                self.send(view_message(path, None, error=why))
            else:
                self.send(view_message(path, f.result()))

        self.conversation.in_background(self.conversation.read_bytes_async(path), done)

    def _done(self, action: str, future: Any) -> None:
        error = ""
        if future.cancelled():
            error = f"{action} was cancelled"
        elif future.exception() is not None:
            exc = future.exception()
            error = str(exc) if isinstance(exc, OpenHandsError) else f"{action} failed: {exc}"
        self.action_error = error
        self.busy = ""

    # -- text fallbacks -------------------------------------------------------------------------
    def text_status(self) -> str:
        s = self.state
        ident = s.get("conversation_id") or "(not started yet)"
        label = s.get("title") or s.get("task") or ""
        return f"OpenHands conversation {ident}: {s.get('status')} — {_excerpt(label, 80)}"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            text = visible(self.text_status())
            data["text/plain"] = text
            data["text/html"] = f"<pre>{html.escape(text)}</pre>"
        return bundle

    def close(self) -> None:
        with self._lock:
            closed, self._closed = self._closed, True
            self._unsubscribe()
        if not closed:
            self.conversation.watch_changes(False)
        super().close()


#: what a notification says of a conversation that needs the user, by status
ATTENTION = {
    st.FINISHED: "finished",
    st.ERROR: "failed",
    st.STUCK: "is stuck",
    st.IDLE: "waits for your answer",
    st.WAITING: "waits for your approval",
}


def attention(snap: Snapshot) -> str:
    """Why the user may want to look now (``""``: no need): it ended, or it waits for them
    (for an approval once the actions that wait are known)."""
    if snap.status == st.WAITING and not snap.pending:
        return ""
    return ATTENTION.get(snap.status, "")

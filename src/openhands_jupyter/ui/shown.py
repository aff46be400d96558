"""Showing a conversation's widget under a cell, and the handle the magic returns."""

from __future__ import annotations

from typing import Any

from IPython.display import display

from ..handles.conversation import Conversation
from .shared import setting
from .widget import ConversationWidget


class ShownConversation(Conversation):
    """A handle whose widget is already on screen; showing it again displays a new view."""

    widget: ConversationWidget | None = None
    _suppress_next_display = False

    def _ipython_display_(self) -> None:
        if self._suppress_next_display:
            self._suppress_next_display = False
            return
        display(self.widget or ConversationWidget(self))


def show(conv: Conversation, shell: Any = None) -> ShownConversation:
    """Display a live widget for ``conv`` and return a handle that will not display it twice."""
    shown = ShownConversation.of(conv)
    widget = shown.widget = ConversationWidget(shown, notify=bool(setting("notify")))
    handle = display(widget, display_id=True)
    if handle is not None:
        # when it ends, refresh the output so a saved notebook's text says how it ended
        widget._on_final.append(lambda w: handle.update(w))
    shown._suppress_next_display = True
    if shell is not None:

        def clear(*_: Any) -> None:
            shown._suppress_next_display = False
            shell.events.unregister("post_run_cell", clear)

        shell.events.register("post_run_cell", clear)
    return shown

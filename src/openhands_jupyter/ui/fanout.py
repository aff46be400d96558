"""A fan-out's conversations (``oh.map``) shown in a notebook: a live table of them alone."""

from __future__ import annotations

from typing import Any

from IPython.display import display

from ..handles.fanout import ConversationSet
from .panel import Panel


def fanout_table(conversations: ConversationSet) -> Panel:
    """The live table of these conversations: status, cost, pull requests, changed files and
    the start of each answer, with a Stop all button."""
    return Panel(conversations.client, conversations=list(conversations))


def show(conversations: Any) -> None:
    """IPython's display of a :class:`ConversationSet`."""
    display(fanout_table(conversations))  # type: ignore[no-untyped-call]


def register(ip: Any) -> None:
    """Have ``ip`` show every ConversationSet as its table."""
    ip.display_formatter.ipython_display_formatter.for_type_by_name(
        "openhands_jupyter.handles.fanout", "ConversationSet", show
    )

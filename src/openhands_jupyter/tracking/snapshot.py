"""What subscribers (widgets, text printers) receive each time a tracked conversation changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api.actions import PendingAction
from ..api.models import Event, PlanItem
from ..api.workspace import FileChange


@dataclass(frozen=True)
class Snapshot:
    """A read-only picture of one tracked conversation. Holds no secret."""

    key: int
    status: str
    conversation_id: str | None = None
    start_task_id: str | None = None
    start_phase: str | None = None
    title: str | None = None
    repository: str | None = None
    branch: str | None = None
    cost: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    pr_numbers: tuple[int, ...] = ()
    detail: str | None = None
    result: str | None = None
    new_events: tuple[Event, ...] = field(default=(), repr=False)
    last_error: str | None = None
    retry_at: float | None = None
    """Wall-clock time (``time.time()``) of the next attempt while retrying, else ``None``."""
    queue_position: int | None = None
    url: str | None = None
    tracking: bool = True
    activity: str = ""
    """``live`` (straight from the agent server), ``delayed`` (the app server's batched event
    store, seconds behind), or ``""`` (not watched)."""
    activity_note: str | None = None
    """Why activity is delayed, when it is."""
    changes: tuple[FileChange, ...] = ()
    """The files the agent changed, as last read (only while a widget shows them)."""
    changes_read: bool = False
    changes_counted: int | None = None
    """When more files changed than are counted: how many are (the first, by path)."""
    changes_error: str | None = None
    """Why the changes could not be read (paused, not offered, retrying)."""
    edited: tuple[str, ...] = ()
    """The files the events showed the agent editing (the newest few), whatever git says."""
    pending: tuple[PendingAction, ...] = ()
    """The actions waiting for the user's approval, while the status is waiting."""
    stopped_why: str | None = None
    """Why the client stopped it (its cost cap), until it runs again."""
    doing: str | None = None
    """The command under way until the server confirms it (``stopping…``), else ``None``."""
    command_note: str | None = None
    """What the last command left to say (the server has not confirmed it)."""
    store_note: str | None = None
    """Where the app server's event store is behind what its agent server showed."""
    buttons: tuple[dict[str, Any], ...] = ()
    """The command buttons to draw: ``{command, label, place, style, enabled}`` each."""
    max_cost: float | None = None
    git_provider: str | None = None
    """Where the repository is hosted (``github``, ``gitlab``, ``bitbucket``...), if known."""
    plan: tuple[PlanItem, ...] = ()
    """The agent's plan, its task tracker's list as last written (empty: none)."""

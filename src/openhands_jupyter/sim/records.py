"""The simulator's records: its conversations, their events and start tasks, and its clock."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from . import scenarios as sc
from .tree import SimTree

#: a moment that never comes
NEVER = float("inf")


@dataclass
class SimEvent:
    seq: int
    id: str
    type: str
    source: str
    text: str
    exit_code: int | None
    at: datetime
    """When it happened, in UTC."""
    moment: float
    """When it happened, on the simulator's monotonic clock."""
    visible_at: float = NEVER
    """When the app server's event store has it (the agent server's webhook is batched)."""
    value: Any = None


@dataclass
class SimConversation:
    id: str
    task_id: str
    task: str
    scenario: str
    sandbox_id: str
    repository: str | None
    branch: str | None
    title: str | None
    session_api_key: str
    created: datetime
    ready_at: float
    sandbox_status: str = "STARTING"
    execution_status: str | None = None
    exec_ready_at: float = 0.0
    steps: deque[tuple[float, sc.Step]] = field(default_factory=deque)
    frozen: list[tuple[float, sc.Step]] = field(default_factory=list)
    resume_exec: str | None = None
    events: list[SimEvent] = field(default_factory=list)
    updated: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    cost: float = 0.0
    tokens: tuple[int, int] = (0, 0)
    visible_v1: bool = False
    deleted: bool = False
    start_error: bool = False
    #: its sandbox was made while another was (``port_clash``): its start ends in ERROR
    clashed: bool = False
    buffer: list[SimEvent] = field(default_factory=list)
    buffer_since: float | None = None
    agent_title: str | None = None
    title_due: float = NEVER
    agent_paused: list[tuple[float, sc.Step]] | None = None
    last_action_id: str | None = None
    tree: SimTree = field(default_factory=SimTree)
    #: confirmation mode (the agent server's policy is not NeverConfirm): each action waits
    confirm: bool = False
    #: the steps after an action that waits for confirmation
    held: list[tuple[float, sc.Step]] | None = None
    waiting_since: float = 0.0
    condenser_cost: float = 0.0
    held_edit: str | None = None
    #: fields its records carry instead of the simulated ones (malformed data for tests)
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimStartTask:
    id: str
    conversation: SimConversation
    phases: list[tuple[str, float]]
    request: dict[str, Any]
    created: datetime
    status: str = "WORKING"
    detail: str | None = None


class Now(Protocol):
    """A clock: ``time.monotonic``-like seconds."""

    def now(self) -> float: ...

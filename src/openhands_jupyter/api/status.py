"""The one status vocabulary for V1 and V0, and the mapping from each server's raw fields."""

from __future__ import annotations

QUEUED = "queued"
STARTING = "starting"
RUNNING = "running"
IDLE = "idle"
WAITING = "waiting"
PAUSED = "paused"
FINISHED = "finished"
ERROR = "error"
STUCK = "stuck"
ARCHIVED = "archived"

#: ``wait()`` returns once the status is none of these.
ACTIVE = frozenset({QUEUED, STARTING, RUNNING})
#: Nothing more will happen without a user action: polling stops after a final fetch.
FINAL = frozenset({FINISHED, ERROR, STUCK, ARCHIVED})

#: raw execution states (V1) and agent states (V0) that only exist once the agent has run:
#: the server's own evidence that a run happened (``idle`` is also the state before the first)
RAN_STATES = frozenset(
    {
        "running",
        "finished",
        "error",
        "stuck",
        "paused",
        "waiting_for_confirmation",
        "awaiting_user_input",
        "awaiting_user_confirmation",
        "rate_limited",
        "user_confirmed",
        "user_rejected",
        "stopped",
        "rejected",
    }
)

START_PHASES_READY = "READY"
START_PHASES_ERROR = "ERROR"


def v1_status(
    sandbox_status: str | None, execution_status: str | None, has_run: bool = False
) -> str:
    """Map V1 ``sandbox_status`` / ``execution_status`` onto the vocabulary (design.md §4)."""
    sandbox = (sandbox_status or "MISSING").upper()
    execution = execution_status.lower() if execution_status else None
    if sandbox == "STARTING":
        return STARTING
    if sandbox == "PAUSED":
        return PAUSED
    if sandbox == "ERROR":
        return ERROR
    if sandbox == "MISSING":
        return ARCHIVED
    if sandbox != "RUNNING":
        return sandbox.lower()
    if execution is None:
        return STARTING
    if execution == "idle":
        return IDLE if has_run else RUNNING
    return {
        "running": RUNNING,
        "paused": PAUSED,
        "waiting_for_confirmation": WAITING,
        "finished": FINISHED,
        "error": ERROR,
        "stuck": STUCK,
        "deleting": ARCHIVED,
    }.get(execution, execution)


_V0_AGENT = {
    "loading": STARTING,
    "init": STARTING,
    "running": RUNNING,
    "rate_limited": RUNNING,
    "user_confirmed": RUNNING,
    "user_rejected": RUNNING,
    "awaiting_user_input": IDLE,
    "stopped": IDLE,
    "awaiting_user_confirmation": WAITING,
    "paused": PAUSED,
    "finished": FINISHED,
    "error": ERROR,
    "rejected": ERROR,
}


def v0_status(status: str | None, agent_state: str | None) -> str:
    """Map V0 ``status`` plus the latest ``agent_state`` onto the vocabulary."""
    runtime = (status or "").upper()
    if runtime == "STARTING":
        return STARTING
    if runtime == "STOPPED":
        return PAUSED
    if runtime == "ERROR":
        return ERROR
    if runtime == "ARCHIVED":
        return ARCHIVED
    if agent_state:
        return _V0_AGENT.get(agent_state.lower(), agent_state.lower())
    return STARTING if runtime in ("RUNNING", "") else runtime.lower()

"""The one status vocabulary for V1 and V0, what each status allows, and the mapping from each
server's raw fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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


@dataclass(frozen=True)
class Rules:
    """What a status means and allows; the widget, the panel and the progress lines only draw
    what this says (it is sent to the browser as it is)."""

    label: str
    #: ``wait()`` keeps waiting and the answer is not final yet
    active: bool = False
    #: nothing more will happen without a user action: polling stops after a final fetch
    ended: bool = False
    stop: bool = False
    resume: bool = False
    send: bool = False
    #: actions wait for the user's approval: approve or reject them
    answer: bool = False
    #: a launch still in this client's queue: Stop becomes Cancel
    cancel: bool = False
    #: the style class suffix (``ohj-s-<style>``)
    style: str = ""

    def state(self) -> dict[str, Any]:
        return asdict(self)


RULES: dict[str, Rules] = {
    QUEUED: Rules("queued", active=True, stop=True, cancel=True),
    STARTING: Rules("starting", active=True, stop=True),
    RUNNING: Rules("running", active=True, stop=True, send=True),
    IDLE: Rules("idle", stop=True, send=True),
    # as the OpenHands web UI: no Stop while an action waits (the agent server would ignore
    # it); Reject stops the agent
    WAITING: Rules("waiting", send=True, answer=True),
    PAUSED: Rules("paused", resume=True),
    FINISHED: Rules("finished", ended=True, send=True),
    ERROR: Rules("error", ended=True, send=True),
    STUCK: Rules("stuck", ended=True, send=True),
    ARCHIVED: Rules("archived", ended=True),
}


def rules(status: str) -> Rules:
    """The rules of a status; one this client does not know allows nothing and is shown as is."""
    known = RULES.get(status)
    if known is not None:
        return Rules(**{**asdict(known), "style": known.style or status})
    return Rules(status or "unknown", style="unknown")


#: ``wait()`` returns once the status is none of these.
ACTIVE = frozenset(name for name, r in RULES.items() if r.active)
#: Nothing more will happen without a user action: polling stops after a final fetch.
FINAL = frozenset(name for name, r in RULES.items() if r.ended)

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
